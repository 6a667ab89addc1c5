"""The plain steps of a campaign run; `pipeline.flows` orchestrates them with Prefect."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from models.registry import ModelManifest, manifest_load, pipeline_load
from pipeline.config import PipelineConfig
from pipeline.errors import ModelPinError, PipelineError
from pipeline.finalize import Signing, asset_finalize
from pipeline.generate import images_generate
from pipeline.renditions import WATERMARK_MIN_SIDE
from pipeline.signing import reader_context, signer_create, signing_files_check
from pipeline.storage import LocalStorage
from prompt_library.models import PromptVersion
from prompt_library.selectors import CampaignPlan
from prompt_library.specs import GenerationParams, Variant, template_from_dict
from review.services import GeneratedFile

logger = logging.getLogger("greenlight.pipeline")


@dataclass
class RunSummary:
    """What a campaign run did; printed by the command and returned by the flow."""

    campaign: str
    variants: int
    already_done: int = 0
    generated: int = 0
    failed: int = 0
    batches: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    label: str = ""  # what ran, when it is not a whole campaign

    def line(self) -> str:
        rate = self.generated / self.seconds if self.seconds else 0.0
        return (
            f"{self.label or 'campaign ' + self.campaign}: {self.variants} variants, {self.generated} generated, "
            f"{self.already_done} already done, {self.failed} failed, in {self.seconds:.1f} s "
            f"({rate:.1f} assets/s)"
        )


def campaign_preflight(plan: CampaignPlan, config: PipelineConfig) -> ModelManifest:
    """`version_preflight` for a campaign's pinned template version."""
    return version_preflight(plan.version, config)


def version_preflight(version: PromptVersion, config: PipelineConfig) -> ModelManifest:
    """Everything that can be checked before any generation starts, each failure naming its file:
    the template's model pin, the signing files, the sizes, and last the model folder against its
    manifest's hashes (verified as the worker loads it, once per process)."""
    template = template_from_dict(version.spec)
    params = GenerationParams(**version.params)
    manifest = manifest_load(version.model_name, manifests_dir=config.models_dir)
    if manifest.manifest_hash != version.model_manifest_hash:
        raise ModelPinError(
            template.name, version.number, manifest.name, version.model_manifest_hash, manifest.manifest_hash
        )
    if manifest.role != "generator":
        raise PipelineError(
            f"template '{template.name}' v{version.number}: model '{manifest.name}' has role "
            f"{manifest.role!r}; image variants need a model with role 'generator'"
        )
    signing_files_check(config.signing)
    factor = manifest.size_multiple
    if params.width % factor or params.height % factor:
        raise PipelineError(
            f"template '{template.name}' v{version.number}: generation size "
            f"{params.width}x{params.height} is not divisible by model '{manifest.name}''s factor {factor}"
        )
    out = template.output
    if min(out.width, out.height) < WATERMARK_MIN_SIDE:
        raise PipelineError(
            f"template '{template.name}' v{version.number}: output {out.width}x{out.height} is smaller "
            f"than {WATERMARK_MIN_SIDE} px on a side, too small to carry the watermark"
        )
    pipeline_load(manifest)
    return manifest


def batch_generate(manifest: ModelManifest, variants: Sequence[Variant]) -> list[Image.Image]:
    """Generate a batch with the model loaded once per worker process."""
    pipe = pipeline_load(manifest)
    return images_generate(pipe, manifest, variants)


def batch_finalize(
    variants: Sequence[Variant], serials: Sequence[int], images: Sequence[Image.Image], config: PipelineConfig
) -> tuple[list[GeneratedFile], list[tuple[str, str]]]:
    """Watermark, sign and store each image of a batch. A failure is returned with its variant,
    not raised, so one bad file does not lose the rest of the batch."""
    storage = LocalStorage(config.storage_root)
    done: list[GeneratedFile] = []
    failed: list[tuple[str, str]] = []
    with signer_create(config.signing) as signer, reader_context(config.signing) as context:
        signing = Signing(signer=signer, context=context)
        for variant, serial, image in zip(variants, serials, images, strict=True):
            try:
                done.append(asset_finalize(variant, serial=serial, image=image, signing=signing, storage=storage))
            except Exception as exc:  # recorded on the asset row by the caller
                logger.exception("finalising asset %s failed", serial)
                failed.append((variant.key, error_text(exc)))
    return done, failed


def error_text(exc: BaseException) -> str:
    """How a failure is recorded on its asset row: the message first, then the traceback's end."""
    return f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc))[-4000:]

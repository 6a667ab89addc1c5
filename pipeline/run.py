"""The plain steps of a campaign run; `pipeline.flows` orchestrates them with Prefect."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from PIL import Image

from models import VIDEO_ROLE, ModelManifest, manifest_load, pipeline_load
from models.captioner import alt_text_compose, captioner_load
from pipeline.config import PipelineConfig
from pipeline.errors import GenerationError, ModelPinError, PipelineError
from pipeline.finalize import Signing, asset_finalize, clip_finalize
from pipeline.generate import images_generate
from pipeline.video import clips_generate, video_request_build, video_request_check
from prompt_library.models import PromptVersion
from prompt_library.parsing import template_from_dict
from prompt_library.selectors import CampaignPlan
from prompt_library.specs import GenerationParams, Variant
from provenance.credentials import reader_context
from provenance.keys import signer_create, signing_files_check
from provenance.media import WATERMARK_MIN_SIDE
from provenance.mp4 import Clip
from provenance.storage import LocalStorage
from review.intake import GeneratedFile

logger = logging.getLogger("greenlight.pipeline")

# What a batch makes: one image per variant, or one clip per variant of a video template.
Media = Image.Image | Clip


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
    the template's model pin, the model's role against the output (an image needs an image
    model; a clip either an image model, drawn as keyframes, or a video model), the signing
    files, the sizes and a clip's timing, the captioner if one is set, and last the model folder
    against its manifest's hashes (verified as the worker loads it, once per process)."""
    template = template_from_dict(version.spec)
    params = GenerationParams(**version.params)
    manifest = manifest_load(version.model_name, manifests_dir=config.models_dir)
    if manifest.manifest_hash != version.model_manifest_hash:
        raise ModelPinError(
            template.name, version.number, manifest.name, version.model_manifest_hash, manifest.manifest_hash
        )
    out = template.output
    roles = ("generator", VIDEO_ROLE) if out.is_video else ("generator",)
    if manifest.role not in roles:
        made = "a video output" if out.is_video else f"an image output ({out.format})"
        raise PipelineError(
            f"template '{template.name}' v{version.number}: model '{manifest.name}' has role "
            f"{manifest.role!r}; {made} needs a model with role {' or '.join(map(repr, roles))}"
            + (f" ({VIDEO_ROLE} models make mp4 outputs)" if manifest.role == VIDEO_ROLE else "")
        )
    signing_files_check(config.signing)
    factor = manifest.size_multiple
    if params.width % factor or params.height % factor:
        raise PipelineError(
            f"template '{template.name}' v{version.number}: generation size "
            f"{params.width}x{params.height} is not divisible by model '{manifest.name}''s factor {factor}"
        )
    if min(out.width, out.height) < WATERMARK_MIN_SIDE:
        raise PipelineError(
            f"template '{template.name}' v{version.number}: output {out.width}x{out.height} is smaller "
            f"than {WATERMARK_MIN_SIDE} px on a side, too small to carry the watermark"
        )
    if out.is_video:
        try:
            # The template's own prompt (placeholders and all) stands in for the variants' prompts,
            # which are checked as each clip is made.
            probe = video_request_build(
                prompt=template.prompt,
                negative_prompt=template.negative_prompt,
                seed=0,
                params=params,
                output=out,
                manifest=manifest,
            )
            video_request_check(manifest, probe)
        except GenerationError as exc:
            raise PipelineError(
                f"template '{template.name}' v{version.number}, model '{manifest.name}': {exc}"
            ) from exc
    if config.captioner:  # an unknown or changed captioner is refused now, not after generation
        captioner_load(config.captioner, manifests_dir=config.models_dir)
    pipeline_load(manifest)
    return manifest


def batch_generate(manifest: ModelManifest, variants: Sequence[Variant]) -> list[Media]:
    """Generate a batch with the model loaded once per worker process: one image per variant
    (one pipeline call), or one clip per variant when the template's output is a video."""
    pipe = pipeline_load(manifest)
    if variants and variants[0].output.is_video:
        return list(clips_generate(pipe, manifest, variants))
    return list(images_generate(pipe, manifest, variants))


def batch_finalize(
    variants: Sequence[Variant], serials: Sequence[int], media: Sequence[Media], config: PipelineConfig
) -> tuple[list[GeneratedFile], list[tuple[str, str]]]:
    """Watermark, sign and store each image or clip of a batch. A failure is returned with its
    variant, not raised, so one bad file does not lose the rest of the batch."""
    storage = LocalStorage(config.storage_root)
    done: list[GeneratedFile] = []
    failed: list[tuple[str, str]] = []
    captions = batch_captions(media, config)
    with signer_create(config.signing) as signer, reader_context(config.signing) as context:
        signing = Signing(signer=signer, context=context)
        for variant, serial, item, caption in zip(variants, serials, media, captions, strict=True):
            try:
                if isinstance(item, Clip):
                    file = clip_finalize(variant, serial=serial, clip=item, signing=signing, storage=storage)
                else:
                    file = asset_finalize(variant, serial=serial, image=item, signing=signing, storage=storage)
                done.append(replace(file, alt_text=alt_text_compose(variant.alt_text, caption)) if caption else file)
            except Exception as exc:  # recorded on the asset row by the caller
                logger.exception("finalising asset %s failed", serial)
                failed.append((variant.key, error_text(exc)))
    return done, failed


def batch_captions(media: Sequence[Media], config: PipelineConfig) -> list[str]:
    """The captioning model's caption of each image (a clip's first frame), in one batch; empty
    strings when no captioner is configured or it fails (the template's alt text then stands)."""
    if not config.captioner:
        return [""] * len(media)
    stills = [item.frames[0] if isinstance(item, Clip) else item for item in media]
    try:
        return captioner_load(config.captioner, manifests_dir=config.models_dir).captions(stills)
    except Exception:  # alt text falls back to the template's; the asset is not lost over a caption
        logger.exception("captioner %r failed; alt text stays the template's", config.captioner)
        return [""] * len(media)


def error_text(exc: BaseException) -> str:
    """How a failure is recorded on its asset row: the message first, then the traceback's end."""
    return f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc))[-4000:]

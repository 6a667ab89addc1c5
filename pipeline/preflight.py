"""Everything a run checks before it generates anything, so a bad pin, a missing signing file or
an impossible size stops the run before a single asset is registered or stored."""

from __future__ import annotations

from models import VIDEO_ROLE, ModelError, ModelManifest, manifest_load
from models.adapters import adapter_verify
from models.captioner import captioner_load
from models.families import source_mode_refusal
from models.loading import pipeline_load
from models.safety import safety_classifier_load
from models.upscaling import upscaler_manifest_load
from pipeline.config import PipelineConfig
from pipeline.errors import GenerationError, ModelPinError, PipelineError
from pipeline.sources import variant_adapters, variant_embeddings
from pipeline.video import video_request_build, video_request_check
from prompt_library.errors import SourceImageError
from prompt_library.models import PromptVersion
from prompt_library.parsing import template_from_dict
from prompt_library.sources import ALPHA_MASK, source_image_bytes
from prompt_library.specs import TEXT_TO_IMAGE, GenerationParams, TemplateSpec, Variant
from provenance.errors import StorageError
from provenance.keys import signing_files_check
from provenance.media import WATERMARK_MIN_SIDE
from provenance.watermark_keys import watermark_keys_load


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
    watermark_keys_load(config.watermark_keys)  # no batch is generated that could not be marked
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
    if template.mode != TEXT_TO_IMAGE:  # the source photo (and mask) are where the variants need them
        refusal = source_mode_refusal(manifest.family, template.mode)
        if refusal:
            raise PipelineError(
                f"template '{template.name}' v{version.number}: mode {template.mode!r}, but model "
                f"'{manifest.name}' ({manifest.family}) {refusal}"
            )
        for name in ("source_image", "mask"):
            value = getattr(template, name)
            if value and value != ALPHA_MASK:
                try:
                    source_image_bytes(sha256=value, field=name)
                except (SourceImageError, StorageError) as exc:
                    raise PipelineError(f"template '{template.name}' v{version.number}: {exc}") from exc
    try:  # each adapter and embedding still pinned as the version was loaded, and its files unchanged
        stand_in = probe_variant(template, version, params)
        for adapter, _ in variant_adapters(manifest, stand_in):
            adapter_verify(adapter)
        for embedding in variant_embeddings(manifest, stand_in):
            adapter_verify(embedding)
        if params.safety:  # the classifier, pinned as the version was loaded, verified and loaded now
            safety_classifier_load(params.safety[0], manifests_dir=manifest.path.parent, pinned=params.safety[1])
        if params.upscaler:
            name, pinned = params.upscaler
            adapter_verify(upscaler_manifest_load(name, manifests_dir=manifest.path.parent, pinned=pinned))
    except (GenerationError, ModelError) as exc:
        raise PipelineError(f"template '{template.name}' v{version.number}: {exc}") from exc
    if config.captioner:  # an unknown or changed captioner is refused now, not after generation
        captioner_load(config.captioner, manifests_dir=config.models_dir)
    pipeline_load(manifest)
    return manifest


def probe_variant(template: TemplateSpec, version: PromptVersion, params: GenerationParams) -> Variant:
    """A stand-in variant of the version (its template's text, seed 0) for checks made before any
    variant is registered."""
    return Variant(
        campaign="",
        template=template.name,
        template_version=version.number,
        template_hash=version.content_hash,
        variables=(),
        prompt=template.prompt,
        negative_prompt=template.negative_prompt,
        seed=0,
        params=params,
        output=template.output,
        model_name=version.model_name,
        model_manifest_hash=version.model_manifest_hash,
    )

"""One batch of a run: generate it (one model call for images, one clip per variant for video),
then watermark, sign and store each file, with captions for the alt text when a captioner is set."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import replace

from PIL import Image

from models import ModelManifest
from models.captioner import alt_text_compose, captioner_load
from models.loading import pipeline_load
from pipeline.config import PipelineConfig
from pipeline.finalize import Signing, clip_finalize, image_finalize
from pipeline.generate import images_generate
from pipeline.video import clips_generate
from prompt_library.specs import Variant
from provenance.credentials import reader_context
from provenance.keys import signer_create
from provenance.mp4 import Clip
from provenance.storage import LocalStorage
from review.intake import GeneratedFile

logger = logging.getLogger("greenlight.pipeline")

# What a batch makes: one image per variant, or one clip per variant of a video template.
Media = Image.Image | Clip


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
                    file = image_finalize(variant, serial=serial, image=item, signing=signing, storage=storage)
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

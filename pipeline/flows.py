"""Prefect flow and tasks: thin wrappers over `pipeline.run`.

One task is one batch, never one image (Prefect's per-task cost is paid once per batch). The
GPU batch runs in the flow's thread while the previous batch is watermarked, signed and stored
in a worker thread, so generation does not wait for the CPU work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

import infra.django_boot  # noqa: F401  (sets up Django before the models below are imported)
from models import ModelManifest
from pipeline.config import PipelineConfig, config_from_settings
from pipeline.run import (
    Media,
    RunSummary,
    batch_finalize,
    batch_generate,
    campaign_preflight,
    error_text,
    version_preflight,
)
from prompt_library.selectors import campaign_plan_get, prompt_version_get
from prompt_library.specs import Variant, chunked
from review.intake import (
    GeneratedFile,
    asset_generation_fail,
    assets_hand_over,
    assets_pending_variants,
    assets_register,
    keys_to_generate,
)


class CampaignRunParams(BaseModel):
    """Parameters of the campaign-run flow; Prefect refuses a run whose parameters do not fit."""

    campaign: str = Field(min_length=1, max_length=100, pattern=r"^[-a-zA-Z0-9_]+$")
    batch_size: int = Field(default=8, ge=1, le=64)


class AssetsGenerateParams(BaseModel):
    """Parameters of the assets-generate flow: registered assets (by serial) to generate."""

    serials: list[int] = Field(min_length=1, max_length=1000)
    batch_size: int = Field(default=8, ge=1, le=64)


# Inputs are images, clips and model records: never hash them for a cache key (FIELD-NOTES).
@task(name="generate-batch", cache_policy=NO_CACHE, persist_result=False)
def generate_batch(manifest: ModelManifest, variants: Sequence[Variant]) -> list[Media]:
    return batch_generate(manifest, variants)


@task(name="finalize-batch", cache_policy=NO_CACHE, persist_result=False)
def finalize_batch(
    variants: Sequence[Variant], serials: Sequence[int], media: Sequence[Media], config: PipelineConfig
) -> tuple[list[GeneratedFile], list[tuple[str, str]]]:
    return batch_finalize(variants, serials, media, config)


@flow(name="campaign-run", task_runner=cast(Any, ThreadPoolTaskRunner(max_workers=2)), validate_parameters=True)
def campaign_run(params: CampaignRunParams) -> dict[str, object]:
    """Expand a campaign, generate what is missing in batches, sign it and queue it for review."""
    logger = get_run_logger()
    started = time.perf_counter()
    config = config_from_settings()
    # 1. Expand the campaign into variants from its pinned template version.
    plan = campaign_plan_get(name=params.campaign)
    summary = RunSummary(campaign=params.campaign, variants=len(plan.variants))
    # 2. What is left: variants never registered, or registered and not generated yet.
    left = keys_to_generate(keys=[v.key for v in plan.variants])
    todo = [v for v in plan.variants if v.key in left]
    summary.already_done = len(plan.variants) - len(todo)
    if not todo:
        return _run_end(summary, started)
    # 3. Check the pin, the signing files, the sizes and the model folder before writing anything.
    manifest = campaign_preflight(plan, config)
    # 4. Register the variants (each row's id is its watermark serial).
    refs = assets_register(variants=todo)
    # Another run may have generated some of them since step 2.
    todo = [v for v in todo if refs[v.key].to_generate]
    summary.already_done = len(plan.variants) - len(todo)
    batches = chunked(todo, params.batch_size)
    summary.batches = len(batches)
    logger.info(
        "campaign %s: %d variants, %d already done, %d to generate in %d batch(es) of up to %d on %s",
        plan.campaign.name,
        len(plan.variants),
        summary.already_done,
        len(todo),
        len(batches),
        params.batch_size,
        manifest.name,
    )
    # 5. Generate, watermark, sign, store and hand over, batch by batch.
    serials = {v.key: refs[v.key].serial for v in todo}
    label = f"campaign {plan.campaign.name}"
    _batches_run(
        batches, serials=serials, manifest=manifest, config=config, summary=summary, label=label, started=started
    )
    return _run_end(summary, started)


@flow(name="assets-generate", task_runner=cast(Any, ThreadPoolTaskRunner(max_workers=2)), validate_parameters=True)
def assets_generate(params: AssetsGenerateParams) -> dict[str, object]:
    """Generate registered assets that are still pending or failed (regenerations, retries),
    each from its own template version, and queue them for review."""
    logger = get_run_logger()
    started = time.perf_counter()
    config = config_from_settings()
    # 1. Rebuild each asset's variant; those already generated are left alone.
    found = assets_pending_variants(serials=params.serials)
    summary = RunSummary(
        campaign="",
        label=f"assets {', '.join(map(str, params.serials[:5]))}{' …' if len(params.serials) > 5 else ''}",
        variants=len(params.serials),
        already_done=len(params.serials) - len(found),
    )
    # 2. One preflight and one run of batches per template version (a batch shares its parameters).
    by_version: dict[tuple[str, int], list[tuple[int, Variant]]] = {}
    for serial, variant in found:
        by_version.setdefault((variant.template, variant.template_version), []).append((serial, variant))
    for (template, number), items in by_version.items():
        manifest = version_preflight(prompt_version_get(template=template, number=number), config)
        variants = [v for _, v in items]
        batches = chunked(variants, params.batch_size)
        summary.batches += len(batches)
        logger.info(
            "%s v%d: %d asset(s) to generate in %d batch(es) on %s",
            template,
            number,
            len(variants),
            len(batches),
            manifest.name,
        )
        serials = {v.key: serial for serial, v in items}
        label = f"{len(variants)} asset(s) of {template} v{number}"
        _batches_run(
            batches, serials=serials, manifest=manifest, config=config, summary=summary, label=label, started=started
        )
    return _run_end(summary, started)


def _run_end(summary: RunSummary, started: float) -> dict[str, object]:
    """Log the run's summary; a run with failures ends Failed in Prefect, naming the first."""
    summary.seconds = time.perf_counter() - started
    get_run_logger().info(summary.line())
    if summary.failed:
        raise RuntimeError(f"{summary.line()}; first failure: {summary.failures[0]}")
    return summary.__dict__


def _batches_run(
    batches: Sequence[Sequence[Variant]],
    *,
    serials: dict[str, int],
    manifest: ModelManifest,
    config: PipelineConfig,
    summary: RunSummary,
    label: str,
    started: float,
) -> None:
    """Generate batch i while batch i-1 is watermarked, signed and stored; hand each over to
    review as it is done, recording failures on their assets. Progress goes to the log and to a
    Prefect progress artifact."""
    logger = get_run_logger()
    progress = cast(UUID, create_progress_artifact(progress=0.0, description=label))

    def hand_over(future: PrefectFuture[tuple[list[GeneratedFile], list[tuple[str, str]]]], index: int) -> None:
        files, failures = future.result()
        handed = assets_hand_over(files=files)
        for key, error in failures:
            asset_generation_fail(key=key, error=error)
        summary.generated += len(handed)
        summary.failed += len(failures)
        summary.failures.extend(error.splitlines()[0] for _, error in failures)
        logger.info(
            "batch %d/%d: %d in review, %d failed (%.1f s elapsed)",
            index + 1,
            len(batches),
            len(handed),
            len(failures),
            time.perf_counter() - started,
        )
        update_progress_artifact(progress, progress=100.0 * (index + 1) / len(batches))

    pending: tuple[PrefectFuture[tuple[list[GeneratedFile], list[tuple[str, str]]]], int] | None = None
    for index, batch in enumerate(batches):
        try:
            media = generate_batch(manifest, batch)
        except Exception as exc:
            for variant in batch:
                asset_generation_fail(key=variant.key, error=error_text(exc))
            summary.failed += len(batch)
            summary.failures.append(f"batch {index + 1}: {type(exc).__name__}: {exc}")
            logger.error("batch %d/%d failed to generate: %s", index + 1, len(batches), exc)
            continue
        future = finalize_batch.submit(batch, [serials[v.key] for v in batch], media, config)
        if pending is not None:
            hand_over(*pending)
        pending = (future, index)
    if pending is not None:
        hand_over(*pending)

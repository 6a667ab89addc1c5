"""A run from start to end as plain functions, with no Prefect: find what is left to make, check
it, register it, then generate it batch by batch and hand it over to review.

`campaign_run` makes a campaign's missing variants; `assets_generate` makes registered assets
(regenerations, retries). Both go through one skeleton, `_run`. Batches are generated in the
caller's thread; how their post-processing (watermark, sign, store) shares the machine is the
plan of ``pipeline.batches.finalize_plan``: batch i-1 is finalised while batch i generates, on
the cores an accelerator's model does not need or a CPU model does not use, or, on a CPU whose
cores all run the model, on one core that batch i's generation gives up until it is done
(``pipeline.generate.Beside``), so that neither waits for the other; on one core, each batch is
finalised between two batches. A failed batch or file is
recorded on its assets and the run goes on; the summary counts it. Progress goes to an optional
callback, called in the caller's thread as each batch is done, or without one to the
``greenlight.pipeline`` log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from models import ModelManifest
from models.loading import pipeline_load
from pipeline.batches import (
    FinalizePlan,
    Judged,
    Media,
    batch_finalize,
    batch_generate,
    batch_judge,
    model_finalize_plan,
    thread_priority_lower,
)
from pipeline.config import PipelineConfig
from pipeline.errors import RunRequestError, error_text
from pipeline.generate import Beside
from pipeline.preflight import version_preflight
from pipeline.summary import RunProgress, RunSummary
from prompt_library.models import PromptVersion
from prompt_library.selectors import campaign_plan_get, prompt_version_get
from prompt_library.specs import Variant
from review.intake import (
    GeneratedFile,
    asset_generation_fail,
    assets_hand_over,
    assets_pending_variants,
    assets_register,
    keys_to_generate,
)

logger = logging.getLogger("greenlight.pipeline")

ProgressCallback = Callable[[RunProgress], None]
_Finalized = tuple[list[GeneratedFile], list[tuple[str, str]]]  # stored files, (key, error) of failures
_T = TypeVar("_T")


def campaign_run(
    *,
    campaign: str,
    batch_size: int,
    config: PipelineConfig,
    progress: ProgressCallback | None = None,
    finalize: FinalizePlan | None = None,
) -> RunSummary:
    """Expand a campaign from its pinned template version and make the variants not made yet:
    generated in batches, signed and queued for review. A second run finds nothing left to make."""
    plan = campaign_plan_get(name=campaign)
    left = keys_to_generate(keys=[v.key for v in plan.variants])
    todo = [v for v in plan.variants if v.key in left]
    work = _Work(
        label=f"campaign {campaign}",
        campaign=campaign,
        asked=len(plan.variants),
        groups=[(plan.version, todo)] if todo else [],
    )
    return _run(work, batch_size=batch_size, config=config, progress=progress, finalize=finalize)


def campaign_warm(*, campaign: str, config: PipelineConfig) -> bool:
    """Load the model of a campaign's pinned template version in this thread, the one its run
    then generates in, when the campaign has variants left to make; say whether it did. What a
    run started from a fresh process pays before its first batch, done ahead while something
    else starts (``infra.orchestration.campaign_run_local``). Best effort: a campaign or a model
    that cannot be had is left to the run, which refuses it with its own error."""
    try:
        plan = campaign_plan_get(name=campaign)
        if not keys_to_generate(keys=[v.key for v in plan.variants]):
            return False
        pipeline_load(version_preflight(plan.version, config))
    except Exception:
        logger.debug("campaign %s: the model was not loaded ahead of the run", campaign, exc_info=True)
        return False
    return True


def assets_generate(
    *, serials: Sequence[int], batch_size: int, config: PipelineConfig, progress: ProgressCallback | None = None
) -> RunSummary:
    """Make registered assets that are still pending or failed (regenerations, retries), each from
    its own template version, and queue them for review; assets already made are left alone."""
    by_version: dict[tuple[str, int], list[Variant]] = {}
    for _, variant in assets_pending_variants(serials=serials):
        by_version.setdefault((variant.template, variant.template_version), []).append(variant)
    shown = ", ".join(map(str, serials[:5])) + (" …" if len(serials) > 5 else "")
    work = _Work(
        label=f"assets {shown}",
        asked=len(serials),
        groups=[(prompt_version_get(template=t, number=n), vs) for (t, n), vs in by_version.items()],
    )
    return _run(work, batch_size=batch_size, config=config, progress=progress)


@dataclass(frozen=True)
class _Work:
    """What a run was asked for, and what of it is left to make by template version (a batch
    shares its version's model and parameters)."""

    label: str
    asked: int
    groups: Sequence[tuple[PromptVersion, Sequence[Variant]]]
    campaign: str = ""


@dataclass(frozen=True)
class _Batch:
    manifest: ModelManifest
    variants: Sequence[Variant]
    serials: Sequence[int]
    mark_ids: Sequence[int]  # what each asset's watermark carries (`Asset.mark_id`)


@dataclass
class _Tally:
    """What the batches have done so far (kept in the caller's thread only)."""

    batches_done: int = 0
    generated: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


def _run(
    work: _Work,
    *,
    batch_size: int,
    config: PipelineConfig,
    progress: ProgressCallback | None,
    finalize: FinalizePlan | None = None,
) -> RunSummary:
    """The skeleton both runs share: preflight, register, batches, summary."""
    if batch_size < 1:
        raise RunRequestError(
            f"batch_size = {batch_size}: a batch holds at least one variant", field_name="batch_size", value=batch_size
        )
    started = time.perf_counter()
    batches: list[_Batch] = []
    if work.groups:
        # 1. Check every pin, the signing files, the sizes and the model folders before writing anything.
        manifests = [version_preflight(version, config) for version, _ in work.groups]
        # 2. Register (idempotent; each row gets its serial and its random watermark mark id). Another
        # run may have made some of them since they were looked up: those are left out.
        refs = assets_register(variants=[v for _, variants in work.groups for v in variants])
        for manifest, (_, variants) in zip(manifests, work.groups, strict=True):
            todo = [v for v in variants if refs[v.key].to_generate]
            for chunk in _chunked(todo, batch_size):
                batches.append(
                    _Batch(manifest, chunk, [refs[v.key].serial for v in chunk], [refs[v.key].mark_id for v in chunk])
                )
        logger.info(
            "%s: %d variants, %d to generate in %d batch(es) of up to %d on %s",
            work.label,
            work.asked,
            sum(len(b.variants) for b in batches),
            len(batches),
            batch_size,
            ", ".join(sorted({m.name for m in manifests})),
        )
    # 3. Generate, watermark, sign, store and hand over, batch by batch.
    tally = _batches_run(
        batches, config=config, label=work.label, progress=progress, started=started, finalize=finalize
    )
    summary = RunSummary(
        label=work.label,
        campaign=work.campaign,
        variants=work.asked,
        already_done=work.asked - sum(len(b.variants) for b in batches),
        generated=tally.generated,
        failed=tally.failed,
        batches=len(batches),
        seconds=time.perf_counter() - started,
        failures=tuple(tally.failures),
    )
    # Returned to the caller, who reports it: logged here only for a run nobody is watching.
    logger.log(logging.INFO if progress is None else logging.DEBUG, summary.line())
    return summary


def _batches_run(
    batches: Sequence[_Batch],
    *,
    config: PipelineConfig,
    label: str,
    progress: ProgressCallback | None,
    started: float,
    finalize: FinalizePlan | None = None,
) -> _Tally:
    """Generate batch i while batch i-1 is finalised in the worker, or finalise each batch right
    after it is generated, as the post-processing plan says (``finalize``, else
    ``pipeline.batches.finalize_plan`` for the model's device); hand each over to review as it
    is done, recording failures on their assets, and report progress after each batch."""
    tally = _Tally()
    total = len(batches)

    def done(
        files: Sequence[GeneratedFile],
        failures: Sequence[tuple[str, str]],
        *,
        batch_error: str = "",
        generation_seconds: float | None = None,
    ) -> None:
        handed = assets_hand_over(files=files, generation_seconds=generation_seconds) if files else []
        for key, error in failures:
            asset_generation_fail(key=key, error=error)
        tally.batches_done += 1
        tally.generated += len(handed)
        tally.failed += len(failures)
        if batch_error:
            tally.failures.append(f"batch {tally.batches_done}/{total}: {batch_error}")
        else:
            tally.failures.extend(error.splitlines()[0] for _, error in failures)
        report = RunProgress(
            label=label,
            batches_done=tally.batches_done,
            batches_total=total,
            generated=tally.generated,
            failed=tally.failed,
            seconds=time.perf_counter() - started,
        )
        if progress is None:
            logger.info(report.line())
        else:  # the caller reports it (a flow run's log and progress artifact)
            logger.debug(report.line())
            progress(report)

    def collect(batch: _Batch, future: Future[_Finalized], seconds_each: float | None = None) -> None:
        try:
            files, failures = future.result()
        except Exception as exc:  # the batch as a whole (a signer that would not open): all its assets
            logger.exception("%s: finalising a batch of %d failed", label, len(batch.variants))
            error = error_text(exc)
            done([], [(v.key, error) for v in batch.variants], batch_error=error.splitlines()[0])
            return
        done(files, failures, generation_seconds=seconds_each)

    if not batches:
        return tally
    plan = finalize or model_finalize_plan(batches[0].manifest)
    logger.info("%s: post-processing plan: %s", label, plan.reason or plan)

    def finalize_batch(batch: _Batch, media: list[Media], judged: Judged, threads: int) -> _Finalized:
        return batch_finalize(
            batch.variants, batch.serials, media, config, mark_ids=batch.mark_ids, threads=threads, judged=judged
        )

    # The worker thread (and the asset threads it starts, which inherit it) at the plan's priority.
    nice = plan.nice if plan.overlap else 0
    with ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="batch-finalize", initializer=thread_priority_lower, initargs=(nice,)
    ) as worker:
        pending: tuple[_Batch, Future[_Finalized], float] | None = None
        for index, batch in enumerate(batches):
            generate_started = time.perf_counter()
            # The batch before, finalised meanwhile (on the cores the model gives up: plan.yields).
            beside = Beside(pending[1], plan.yields) if pending is not None else None
            try:
                media = batch_generate(batch.manifest, batch.variants, beside=beside)
            except Exception as exc:
                logger.exception("%s: batch %d/%d failed to generate", label, index + 1, total)
                if pending is not None:  # batches are reported in order
                    collect(*pending)
                    pending = None
                error = error_text(exc)
                done([], [(v.key, error) for v in batch.variants], batch_error=error.splitlines()[0])
                continue
            # Each asset's share of the batch's generation time, for the dashboard's cost figures.
            seconds_each = (time.perf_counter() - generate_started) / max(1, len(batch.variants))
            judged = batch_judge(batch.variants, media, config)  # model work: on this thread
            if not plan.overlap:  # the model had the machine; now the batch has it
                collect(batch, _now(finalize_batch, batch, media, judged, plan.threads), seconds_each)
                continue
            # The last batch has the machine to itself: nothing generates beside it.
            threads = plan.alone if index == total - 1 else plan.threads
            future = worker.submit(finalize_batch, batch, media, judged, threads)
            if pending is not None:
                collect(*pending)
            pending = (batch, future, seconds_each)
        if pending is not None:
            collect(*pending)
    return tally


def _now(function: Callable[..., _T], *args: object) -> Future[_T]:
    """``function(*args)`` run in this thread, its result or exception in a done Future."""
    future: Future[_T] = Future()
    try:
        future.set_result(function(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _chunked(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    """``items`` in consecutive runs of at most ``size`` (the last one may be shorter)."""
    return [items[start : start + size] for start in range(0, len(items), size)]

"""The Prefect task a campaign run's batches travel as: submitted with `.delay()` by the run's
coordinator, executed by whichever task worker (`infra.workers`) serves the batch's model.

Each model has its own task key (`batch_task(model)`), so a worker subscribes only to the models
it is started for: batches go to workers that hold their model (model affinity on Prefect's own
task queues). The task's parameters are small (a run id and serials); the model stays in the
worker process. This module imports no torch: the coordinator submits from a process that
generates nothing.

A deferred task run carries, beside its parameters, the context it was submitted in
(`prefect.context.serialize_context`): its parent flow run (the Prefect UI shows each batch under
its coordinator), tags, and the submitter's whole Prefect settings, which the task worker rebuilds
before every run (`hydrated_context`: pydantic-settings reads the environment, dotenv and TOML
files again). Measured on 2 cores that rebuild took 30-50 ms of the worker's CPU per batch (1.6 s
of a 256-variant campaign, taken from the generation beside it), and the settings' serialisation
15 ms of the coordinator's. Here the worker runs under its own settings (its API address, home and
storage are its machine's, not the submitter's), so importing this module makes deferred task
runs submitted from this process carry the rest of the context without the settings
(`_context_for_task_workers`); the flow run, tags and asset context travel as before.
"""

from __future__ import annotations

import re
from typing import Any

import prefect.tasks
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.context import serialize_context

TASK_KEY_PREFIX = "greenlight-batch"
MODEL_QUEUE = "model:"  # a worker's heartbeat lists a queue "model:<name>" for each model it serves
# The worker process's warm state (pipeline.work.Warm), set by infra.workers before it serves.
WARM: dict[str, Any] = {}


def batch_make(run_id: int, serials: list[int], chunk: int = 0) -> dict[str, object]:
    """Make a task's batches of a run on this worker's warm model, ``chunk`` serials at a time
    (0: all in one batch), each a batch of its own: its lease, generation, finalising and
    hand-over (pipeline.work.batch_work)."""
    from pipeline.work import batch_work
    from review.intake import serials_chunked

    warm = WARM.get("warm")
    if warm is None:
        raise RuntimeError("batch-make runs only in a generation worker (python -m infra.workers worker)")
    # In the worker's model thread, where its model was loaded: the task runner's thread only waits.
    outcomes = [
        warm.on_model_thread(batch_work, run_id=run_id, serials=list(part), warm=warm)
        for part in serials_chunked(serials, chunk)
    ]
    return {
        "taken": sum(o.taken for o in outcomes),
        "handed": sum(o.handed for o in outcomes),
        "failed": sum(o.failed for o in outcomes),
        "line": "; ".join(o.line() for o in outcomes),
    }


def model_queues(models: list[str]) -> list[str]:
    """The queues a worker serving ``models`` lists in its heartbeat (the Campaigns page shows them)."""
    return [f"{MODEL_QUEUE}{model}" for model in models]


def models_served(queues: list[str]) -> list[str]:
    """The models a worker serves, from the queues its heartbeat lists (``model_queues``)."""
    return [q.removeprefix(MODEL_QUEUE) for q in queues if q.startswith(MODEL_QUEUE)]


def batch_task_key(model: str) -> str:
    """The name `model`'s batch function carries, which Prefect's task key starts with: the task
    queue on the server that `model`'s workers subscribe to."""
    return f"{TASK_KEY_PREFIX}-{re.sub(r'[^A-Za-z0-9_]', '_', model)}"


_TASKS: dict[str, Task[..., dict[str, object]]] = {}


def batch_task(model: str) -> Task[..., dict[str, object]]:
    """The batch task of `model`: `batch_make` under a name of its own. Prefect derives a task's
    key from its function's name and code (and task workers rebuild their tasks from the
    function), so each model gets a function object of its own name."""
    made = _TASKS.get(model)
    if made is None:

        def make(run_id: int, serials: list[int], chunk: int = 0) -> dict[str, object]:
            return batch_make(run_id, serials, chunk)

        make.__name__ = make.__qualname__ = batch_task_key(model)
        decorate = task(name=f"batch-make[{model}]", cache_policy=NO_CACHE, persist_result=False, retries=0)
        made = decorate(make)
        _TASKS[model] = made
    return made


_serialize_context = serialize_context


def _context_for_task_workers(asset_ctx_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The context a deferred task run is stored with (see the module): Prefect's, less the
    submitter's settings, which the task worker would otherwise rebuild before every run."""
    context = _serialize_context(asset_ctx_kwargs)
    context["settings_context"] = {}
    return context


# `Task.create_run` and `Task.create_local_run`, its only callers in prefect.tasks, store what it
# returns with each deferred run's parameters; other users of `prefect.context.serialize_context`
# (task runners, bundles) are left as they are.
prefect.tasks.serialize_context = _context_for_task_workers

"""infra.batch_tasks: the batch task's key per model, and the context its deferred runs carry."""

from __future__ import annotations

import prefect.tasks
from prefect import tags
from prefect.context import serialize_context

from infra.batch_tasks import batch_task, batch_task_key, model_queues, models_served


def test_each_model_has_a_task_of_its_own_whose_key_names_it() -> None:
    assert batch_task_key("sd-turbo v2") == "greenlight-batch-sd_turbo_v2"
    assert batch_task("embedded") is batch_task("embedded")
    assert batch_task("embedded").task_key.startswith(batch_task_key("embedded"))
    assert not batch_task("other").task_key.startswith(batch_task_key("embedded"))
    assert models_served([*model_queues(["embedded", "other"]), "local"]) == ["embedded", "other"]


def test_a_deferred_run_carries_the_submitters_context_but_not_its_settings() -> None:
    with tags("campaign-spring"):
        stored = prefect.tasks.serialize_context()  # what Task.create_run stores with a deferred run
        full = serialize_context()
    assert stored["settings_context"] == {}
    assert full["settings_context"]["settings"], "Prefect's own function is unchanged for its other callers"
    assert "campaign-spring" in stored["tags_context"]["current_tags"]
    assert {k: v for k, v in stored.items() if k != "settings_context"} == {
        k: v for k, v in full.items() if k != "settings_context"
    }

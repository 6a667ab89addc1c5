"""Templates, versions, campaigns and runs through the API: the prompt library's own checks, a run
registered and followed to its end as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from prompt_library.models import Campaign, PromptVersion
from prompt_library.services import library_load
from review.models import Asset, Run
from review.states import AssetState
from tests.api.conftest import ApiClient, problem_of
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db

VERSION_YAML = """
name: catalog-hero
description: Catalog hero shot of one product in a scene.
prompt: "a {product} on {scene}, {style}, soft light"
negative_prompt: "blurry, text"
variables: [product, scene, style]
model: embedded-tiny
params: {steps: 4, guidance: 1.0}
output: {width: 512, height: 512, format: png, renditions: [{name: web, format: jpeg, width: 384, height: 384}]}
"""


@pytest.fixture
def library(library_dir: Path, greenlight_settings: SettingsWrapper) -> Path:
    library_load()
    return library_dir


def test_templates_and_versions_are_listed_and_read(library: Path, api_as: Callable[..., ApiClient]) -> None:
    client = api_as("reviewer")
    names = [t["name"] for t in json.loads(client.get("/templates").content)["items"]]
    assert names == sorted(names) and "catalog-hero" in names
    detail = json.loads(client.get("/templates/catalog-hero").content)
    assert detail["latest"] == 1 and [v["number"] for v in detail["version_list"]] == [1]
    version = json.loads(client.get("/templates/catalog-hero/versions/1").content)
    assert version["prompt"] == "a {product} on {scene}, {style}" and version["model_name"] == "embedded-tiny"
    assert problem_of(client.get("/templates/catalog-hero/versions/9"), 404)["field"] == "path.number"
    assert problem_of(client.get("/templates/nope"), 404)


def test_a_new_version_from_yaml_or_json_is_immutable_and_diffed(
    library: Path, api_as: Callable[..., ApiClient]
) -> None:
    operator = api_as("operator", username="olga")
    assert problem_of(
        api_as("reviewer").post("/templates/catalog-hero/versions", {"format": "yaml", "text": VERSION_YAML}), 403
    )
    made = operator.post("/templates/catalog-hero/versions", {"format": "yaml", "text": VERSION_YAML})
    assert made.status_code == 201, made.content
    v2 = json.loads(made.content)
    assert v2["number"] == 2 and v2["created_by"] == "olga"
    import yaml

    same = operator.post(
        "/templates/catalog-hero/versions", {"format": "json", "text": json.dumps(yaml.safe_load(VERSION_YAML))}
    )
    assert json.loads(same.content)["number"] == 2  # identical content: the existing version
    assert PromptVersion.objects.filter(template__name="catalog-hero").count() == 2
    broken = problem_of(
        operator.post(
            "/templates/catalog-hero/versions", {"format": "yaml", "text": "name: catalog-hero\nprompt: 3\n"}
        ),
        422,
    )
    assert "prompt" in broken["detail"]
    diff = json.loads(operator.get("/templates/catalog-hero/diff", old=1, new=2).content)
    assert "prompt" in diff["changed"] and "negative_prompt" in diff["changed"]
    assert problem_of(operator.get("/templates/catalog-hero/diff", old=1, new=7), 404)["field"] == "query.new"


CAMPAIGN = {
    "name": "summer-api",
    "title": "Summer, from the API",
    "kind": "request",
    "template": "catalog-hero",
    "template_version": 1,
    "variables": {"product": ["red mug"], "scene": ["a wooden table"], "style": ["product photo"]},
    "seeds": [7, 8],
    "deadline": "2030-06-01T12:00:00Z",
    "review": {"approvals": 2, "on_reject": "return"},
    "priority": 3,
    "schedule": {"cron": "0 6 * * 1", "timezone": "Europe/Paris"},
    "active": False,
}


def test_a_campaign_is_created_with_every_field_and_checked_like_a_file(
    library: Path, api_as: Callable[..., ApiClient]
) -> None:
    operator = api_as("operator", username="olga")
    assert problem_of(api_as("reviewer").post("/campaigns", CAMPAIGN), 403)
    made = operator.post("/campaigns", CAMPAIGN, headers={"Idempotency-Key": "c-1"})
    assert made.status_code == 201, made.content
    body = json.loads(made.content)
    assert body["approvals_required"] == 2 and body["on_reject"] == "return" and body["requested_by"] == "olga"
    assert body["deadline"].startswith("2030-06-01T12:00:00") and body["schedule_timezone"] == "Europe/Paris"
    row = Campaign.objects.get(name="summer-api")
    assert row.priority == 3 and row.schedule_cron == "0 6 * * 1" and not row.schedule_active
    assert json.loads(operator.post("/campaigns", CAMPAIGN, headers={"Idempotency-Key": "c-1"}).content) == body
    assert problem_of(operator.post("/campaigns", CAMPAIGN), 409)["field"] == "body.name"
    missing = problem_of(
        operator.post("/campaigns", {**CAMPAIGN, "name": "x2", "variables": {"product": ["mug"]}}), 422
    )
    assert "needs variable 'scene'" in missing["detail"]
    unknown = problem_of(operator.post("/campaigns", {**CAMPAIGN, "name": "x3", "template_version": 9}), 422)
    assert unknown["field"] == "template_version" and unknown["value"] == 9
    cron = problem_of(operator.post("/campaigns", {**CAMPAIGN, "name": "x4", "schedule": {"cron": "every day"}}), 422)
    assert "schedule.cron" in cron["detail"]
    assert problem_of(operator.post("/campaigns", {**CAMPAIGN, "name": "x5", "seeds": [1, 1]}), 422)
    listed = [c["name"] for c in json.loads(operator.get("/campaigns").content)["items"]]
    assert "summer-api" in listed and "demo-spring" in listed


def test_a_campaign_run_is_followed_to_its_end(
    library: Path, api_as: Callable[..., ApiClient], settings: SettingsWrapper
) -> None:
    settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT = "tests.api.test_library_and_runs.run_recorder"
    RUNS.clear()
    operator = api_as("operator", username="olga")
    assert problem_of(api_as("reviewer").post("/campaigns/demo-spring/runs", {}), 403)
    started = operator.post("/campaigns/demo-spring/runs", {"priority": 2}, headers={"Idempotency-Key": "run-1"})
    assert started.status_code == 202, started.content
    run = json.loads(started.content)
    assert run["state"] == "queued" and run["total"] == 12 and run["started_by"] == "olga" and run["priority"] == 2
    assert [run["id"]] == RUNS
    again = operator.post("/campaigns/demo-spring/runs", {"priority": 2}, headers={"Idempotency-Key": "run-1"})
    assert json.loads(again.content)["id"] == run["id"] and [run["id"]] == RUNS
    assert problem_of(operator.post("/campaigns/demo-spring/runs", {}), 409)  # one open run per campaign
    detail = json.loads(operator.get("/campaigns/demo-spring").content)
    assert detail["counts"]["pending"] == 12 and detail["runs"] == [run["id"]]
    assert [r["id"] for r in json.loads(operator.get("/runs", campaign="demo-spring").content)["items"]] == [run["id"]]
    assert json.loads(operator.get(f"/runs/{run['id']}").content)["left"] == 12
    paused = json.loads(operator.post(f"/runs/{run['id']}/pause").content)
    assert paused["state"] == "paused"
    cancelled = json.loads(operator.post(f"/runs/{run['id']}/cancel").content)
    assert cancelled["state"] == "cancelled" and cancelled["cancelled"] == 12
    assert problem_of(operator.post(f"/runs/{run['id']}/cancel"), 409)["type"].endswith("refused")
    assert Asset.objects.filter(run_id=run["id"], state=AssetState.CANCELLED).count() == 12
    stream = operator.get(f"/runs/{run['id']}/events", interval=0.2)
    assert stream["Content-Type"] == "text/event-stream"
    events = b"".join(stream.streaming_content).decode()
    assert events.startswith("event: end\n")
    assert json.loads(events.split("data: ", 1)[1])["state"] == "cancelled"
    assert problem_of(operator.get("/runs/999999"), 404)


def test_a_run_s_events_report_progress_until_it_closes(library: Path, api_as: Callable[..., ApiClient]) -> None:
    from api.routers.campaigns import run_event_stream

    run = Run.objects.create(campaign=Campaign.objects.get(name="demo-spring"), total=2, state=Run.State.RUNNING)
    stream = run_event_stream(run.pk, interval=0.01, max_seconds=60)
    first = next(stream)
    assert first.startswith("event: progress\n") and json.loads(first.split("data: ")[1])["left"] == 2
    Run.objects.filter(pk=run.pk).update(done=2, state=Run.State.SUCCEEDED)
    last = next(stream)
    assert last.startswith("event: end\n") and json.loads(last.split("data: ")[1])["done"] == 2
    assert list(stream) == []
    timeout = list(
        run_event_stream(Run.objects.create(total=1, state=Run.State.QUEUED).pk, interval=0.01, max_seconds=0)
    )
    assert timeout[-1].startswith("event: timeout\n")


RUNS: list[int] = []


def run_recorder(*, run_id: int, priority: int) -> str:
    """The orchestrator's run submit, for tests: records which run it was asked to start."""
    RUNS.append(run_id)
    return "recorded"

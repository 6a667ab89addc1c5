"""Fixtures for asset requests: the shipped library loaded, signing files in place, a requester
and a reviewer, and an orchestrator that records the runs it is asked to start (the orchestrator
is another system: what it does with a run is tested in tests/infra)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from prompt_library.services import library_load
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

SUBMITTED: list[int] = []


def submit_record(*, run_id: int, priority: int) -> str:
    """An orchestrator that only remembers which runs it was given (and starts nothing)."""
    SUBMITTED.append(run_id)
    return f"recorded run {run_id} at priority {priority}"


@pytest.fixture
def submitted(settings: SettingsWrapper) -> list[int]:
    SUBMITTED.clear()
    settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT = "tests.review.requests.conftest.submit_record"
    return SUBMITTED


@pytest.fixture
def library(greenlight_settings: SettingsWrapper, library_dir: Path, submitted: list[int]) -> Path:
    """The shipped prompt library loaded, with signing files and a recording orchestrator."""
    library_load()
    return library_dir


@pytest.fixture
def requester() -> User:
    return make_user(username="maria", roles=("requester",), email="maria@example.com")


@pytest.fixture
def reviewer() -> User:
    return make_user(username="vera", roles=("reviewer",), email="vera@example.com")


def run_made(run_id: int) -> None:
    """Make a recorded run the way a coordinator does without a Prefect server: its batches in
    this process, on the real (tiny) model, watermarked, signed, stored and handed over."""
    from infra.coordinator import coordinate, local_dispatch

    coordinate(run_id=run_id, batch_size=8, dispatch=local_dispatch(), max_in_flight=2, poll_seconds=0.05)


@pytest.fixture
def made_request(library: Path, requester: User, submitted: list[int]) -> object:
    """A request of three variants of catalog-hero (embedded-tiny), generated and in review."""
    from datetime import timedelta

    from django.utils import timezone

    from review.requests.services import request_create

    made = request_create(
        requester=requester,
        template="catalog-hero",
        values={"product": ["mug"], "scene": ["a table"], "style": ["studio light"]},
        variants_per_combination=3,
        renditions=["web", "thumb"],
        deadline=timezone.now() + timedelta(days=1),
        notes="Keep the label readable.",
        title="Three mugs",
    )
    run_made(submitted[-1])
    return made

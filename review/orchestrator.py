"""The one small adapter through which review asks for generation (a regeneration, a retry).

Review never imports the pipeline or the flows: the function that starts a run is named by the
`GREENLIGHT_RUN_SUBMIT` setting (a dotted path, like Django's own backends) and imported when it
is first called, so the web process loads no generation code until it actually starts a run, and
a test or another deployment can put its own in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class RunSubmit(Protocol):
    def __call__(self, *, serials: Sequence[int]) -> str: ...


class CampaignRunSubmit(Protocol):
    def __call__(self, *, run_id: int, priority: int) -> str: ...


def assets_generate_submit(*, serials: Sequence[int]) -> str:
    """Start generating registered assets without waiting; returns a line saying where it runs.
    The assets stay pending until then, so nothing is lost if the run never starts."""
    submit: RunSubmit = import_string(settings.GREENLIGHT_RUN_SUBMIT)
    return submit(serials=list(serials))


def run_submit(*, run_id: int, priority: int) -> str:
    """Start (or resume) a campaign run's coordinator without waiting, through the function named
    by the `GREENLIGHT_CAMPAIGN_RUN_SUBMIT` setting; returns a line saying where it runs. The run
    stays queued until a coordinator begins it, so nothing is lost if it never starts."""
    submit: CampaignRunSubmit = import_string(settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT)
    return submit(run_id=run_id, priority=priority)

"""The Campaigns page: every campaign with its template version, priority, schedule and next run,
its last runs with outcome and counts, Run now / Pause / Resume / Cancel, each open run's progress
(done / failed / left, images per second, per worker), and the workers' heartbeats.

Views stay thin: the changes go through `review.services.runs` (which checks the operator role
and writes the audit log), the reads through `review.selectors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from prompt_library.models import Campaign
from review import selectors
from review.errors import ReviewError, RoleRequiredError
from review.models import Run
from review.services.runs import campaign_run_start, run_cancel, run_pause, run_resume

RUNS_SHOWN = 3


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    next_run: datetime | None
    runs: list[tuple[Run, selectors.RunProgressView]]
    open_run: Run | None

    @property
    def next_run_text(self) -> str:
        """The next run in the schedule's own time zone, as the campaign file states it."""
        if self.next_run is None:
            return ""
        return f"{self.next_run:%Y-%m-%d %H:%M} {self.campaign.schedule_timezone or 'UTC'}"


def schedule_next(campaign: Campaign, now: datetime | None = None) -> datetime | None:
    """When the campaign's schedule fires next (in its time zone); None without an active one."""
    if not campaign.schedule_cron or not campaign.schedule_active:
        return None
    from cronsim import CronSim, CronSimError

    zone = ZoneInfo(campaign.schedule_timezone or "UTC")
    start = (now or timezone.now()).astimezone(zone)
    try:
        return next(CronSim(campaign.schedule_cron, start))
    except (CronSimError, StopIteration):
        return None


@require_GET
@permission_required("review.view_asset", raise_exception=True)
def campaign_list(request: HttpRequest) -> HttpResponse:
    """Every campaign, its schedule and last runs, and the workers."""
    rows = []
    for campaign in Campaign.objects.select_related("prompt_version__template").order_by("priority", "name"):
        runs = list(selectors.run_list(campaign=campaign.name, limit=RUNS_SHOWN))
        rows.append(
            CampaignRow(
                campaign=campaign,
                next_run=schedule_next(campaign),
                runs=[(run, selectors.run_progress(run=run)) for run in runs],
                open_run=next((run for run in runs if run.is_open), None),
            )
        )
    return render(
        request,
        "review/campaigns.html",
        {"rows": rows, "workers": selectors.worker_list(), "can_run": request.user.has_perm("review.run_campaign")},
    )


@require_GET
@permission_required("review.view_asset", raise_exception=True)
def run_progress_json(request: HttpRequest, run_id: int) -> JsonResponse:
    """One run's progress, for the page to refresh while the run goes on."""
    run = Run.objects.select_related("started_by").filter(pk=run_id).first()
    if run is None:
        raise Http404(f"run {run_id} does not exist")
    p = selectors.run_progress(run=run)
    return JsonResponse(
        {
            "run": p.run_id,
            "state": p.state,
            "total": p.total,
            "done": p.done,
            "failed": p.failed,
            "cancelled": p.cancelled,
            "left": p.left,
            "percent": p.percent,
            "images_per_second": round(p.images_per_second, 3) if p.images_per_second is not None else None,
            "per_worker": p.per_worker,
            "error": run.error,
        }
    )


@require_POST
@permission_required("review.view_asset", raise_exception=True)
def campaign_run_now(request: HttpRequest, name: str) -> HttpResponse:
    campaign = Campaign.objects.filter(name=name).first()
    if campaign is None:
        raise Http404(f"campaign {name!r} does not exist")
    user = request.user
    assert isinstance(user, User)
    try:
        run = campaign_run_start(campaign=campaign, actor=user)
    except RoleRequiredError as exc:
        return HttpResponse(str(exc), status=403)
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:campaigns")
    messages.success(request, f"Run {run.pk} of {name} started: {run.total} asset(s) to make.")
    return redirect("review:campaigns")


@require_POST
@permission_required("review.view_asset", raise_exception=True)
def run_action(request: HttpRequest, run_id: int, action: str) -> HttpResponse:
    services = {"pause": run_pause, "resume": run_resume, "cancel": run_cancel}
    service = services.get(action)
    run = Run.objects.filter(pk=run_id).first()
    if service is None or run is None:
        raise Http404(f"no action {action!r} on run {run_id}")
    user = request.user
    assert isinstance(user, User)
    try:
        changed = service(run=run, actor=user)
    except RoleRequiredError as exc:
        return HttpResponse(str(exc), status=403)
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:campaigns")
    messages.success(request, f"Run {changed.pk} is {changed.get_state_display().lower()}.")
    return redirect("review:campaigns")


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The web app's health for a load balancer or `make up`: the database answers (503 if
    not), and how many generation workers sent a heartbeat lately. No login, nothing secret."""
    from django.db import DatabaseError

    try:
        alive = sum(1 for w in selectors.worker_list() if w.alive)
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": False}, status=503)
    return JsonResponse({"status": "ok", "database": True, "workers_alive": alive})

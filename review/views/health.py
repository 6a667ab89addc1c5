"""The health page: what the last sweeps of crash leftovers found, and what stands now.

For staff and admins: stored files no asset referenced (removed), flow runs whose process had
died (marked crashed), publications a dead process left writing (rolled back), each sweep's
errors; and the counts of assets pending for more than a day, failed assets and publications
still being written. The sweeps run outside the web process (`manage.py sweep`); each records
its report as an audit event, which is all this page reads.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from review import selectors
from review.roles import ROLES

SWEEPS_SHOWN = 10


def health_allowed(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Staff, and holders of the admin role's permissions, may read the health page."""
    if not isinstance(user, PermissionsMixin) or not user.is_active:
        return False
    return bool(getattr(user, "is_staff", False)) or user.has_perms(ROLES["admin"])


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    """The last sweep's findings, the sweeps before it, and the counts that stand now."""
    if not health_allowed(request.user):
        raise PermissionDenied("The health page is for staff and admins.")
    sweeps = selectors.sweep_reports(limit=SWEEPS_SHOWN)
    return render(
        request,
        "review/health.html",
        {
            "counts": selectors.health_counts(),
            "last": sweeps[0] if sweeps else None,
            "report": sweeps[0].detail if sweeps else None,
            "sweeps": [(event, _summary(event.detail)) for event in sweeps],
        },
    )


def _summary(detail: dict[str, Any]) -> dict[str, Any]:
    """One sweep in a row: how many files removed, runs marked crashed, publications rolled
    back, and which parts failed. A part that did not run counts as nothing."""
    files = detail.get("files") or {}
    runs = detail.get("runs") or {}
    publications = detail.get("publications") or {}
    return {
        "files": int(files.get("removed_count", 0)) + int(files.get("temporary_count", 0)),
        "runs": sum(1 for run in runs.get("crashed", ()) if run.get("marked")),
        "publications": len(publications.get("rolled_back", ())),
        "errors": ", ".join(sorted(detail.get("errors") or {})),
    }

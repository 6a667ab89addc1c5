"""Permission checks of the API: the same roles as the pages, through the same check
(`review.roles.role_require`, whose refusal names the role needed and becomes a 403 problem)."""

from __future__ import annotations

from django.http import HttpRequest

from api.auth import actor
from review.roles import role_require


def permission_require(request: HttpRequest, permission: str) -> None:
    """Refuse (403, naming the role) unless the caller has `permission`."""
    role_require(actor(request), permission)

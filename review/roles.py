"""Roles as Django groups: which permissions each one grants, kept in sync after every migrate."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission, User

from review.errors import RoleRequiredError

VIEW = "review.view_asset"
REVIEW = "review.review_asset"
PUBLISH = "review.publish_asset"
REQUEST = "review.request_asset"

AUDIT = "review.view_auditevent"
RUN = "review.run_campaign"

ROLES: dict[str, tuple[str, ...]] = {
    "reviewer": (VIEW, REVIEW, AUDIT),
    "publisher": (VIEW, PUBLISH, AUDIT),
    "requester": (VIEW, REQUEST),
    "operator": (VIEW, RUN, AUDIT),
    "admin": (VIEW, REVIEW, PUBLISH, REQUEST, AUDIT, RUN),
}
ROLE_OF = {
    REVIEW: "reviewer",
    PUBLISH: "publisher",
    REQUEST: "requester",
    VIEW: "reviewer",
    AUDIT: "reviewer",
    RUN: "operator",
}


def roles_sync(**_: Any) -> None:
    """Create the role groups and give them exactly their permissions (idempotent)."""
    for role, perms in ROLES.items():
        group = Group.objects.get_or_create(name=role)[0]
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)


def role_require(user: User, perm: str) -> None:
    """Refuse, naming the role needed, unless the user has `perm`."""
    if not user.has_perm(perm):
        raise RoleRequiredError(user.get_username(), perm, ROLE_OF.get(perm, "admin"))

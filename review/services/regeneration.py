"""Regeneration: new variants of a rejected asset (new seeds, optionally edited variable values),
registered linked to it; the caller asks the orchestrator to generate them."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import User
from django.db import transaction

from prompt_library.errors import VariablesError
from prompt_library.selectors import VALUE_MAX, variants_build
from review.audit import AuditAction
from review.errors import RegenerateRefusedError, ReviewInputError, RoleRequiredError
from review.events import audit_event_unmoved
from review.intake import assets_register
from review.models import Asset
from review.roles import REQUEST, REVIEW
from review.states import AssetState

REGENERATE_MAX = 8  # new variants per request


@transaction.atomic
def asset_regenerate(*, asset: Asset, user: User, count: int, variables: dict[str, str] | None = None) -> list[int]:
    """Ask for `count` new variants of a rejected asset: new seeds, and optionally edited
    variable values. They are registered as pending assets linked to the original (the caller
    hands their serials to the orchestrator) and the request is recorded in its history.

    Seeds follow from the asset's serial and how many variants were asked for before, so the
    same request made twice does not repeat an image, and a run can be reproduced.
    """
    if not (user.has_perm(REVIEW) or user.has_perm(REQUEST)):
        raise RoleRequiredError(user.get_username(), REVIEW, "reviewer or requester")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= REGENERATE_MAX:
        raise ReviewInputError("count", count, f"must be 1 to {REGENERATE_MAX} new variants")
    locked = Asset.objects.select_for_update(of=("self",)).select_related("campaign", "prompt_version").get(pk=asset.pk)
    if locked.state != AssetState.REJECTED:
        raise RegenerateRefusedError(locked.pk, locked.state)
    values = {**locked.variables, **(variables or {})}
    earlier = Asset.objects.filter(regenerated_from=locked).count()
    seeds = [_regeneration_seed(locked.pk, earlier + i) for i in range(count)]
    try:
        variants = variants_build(
            campaign=locked.campaign.name, version=locked.prompt_version, values=values, seeds=seeds
        )
    except VariablesError as exc:
        raise _variables_refusal(exc) from exc
    refs = assets_register(variants=variants, regenerated_from=locked)
    serials = [refs[v.key].serial for v in variants]
    changed = {k: v for k, v in values.items() if locked.variables.get(k) != v}
    audit_event_unmoved(
        locked,
        AuditAction.REGENERATION_REQUESTED,
        actor=user,
        serials=serials,
        seeds=seeds,
        variables=changed,
    ).save()
    return serials


def _regeneration_seed(serial: int, index: int) -> int:
    """The `index`-th regeneration seed of asset `serial`: 31 bits of a hash of both."""
    digest = hashlib.sha256(f"greenlight-regenerate:{serial}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _variables_refusal(exc: VariablesError) -> ReviewInputError:
    """The prompt library's refusal of edited variable values, as the review input it was."""
    if exc.bad is not None:
        name, value = exc.bad
        return ReviewInputError(f"variable '{name}'", value, f"needs 1 to {VALUE_MAX} characters of text")
    return ReviewInputError(
        "variables",
        exc.given,
        f"do not fit template '{exc.template}' v{exc.number}, which needs variables {', '.join(exc.declared)}",
    )

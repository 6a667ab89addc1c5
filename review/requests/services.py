"""Services that write asset requests: create one from a brief, ask more of it, cancel it.

A brief is checked whole before anything is written (`review.requests.briefs.brief_check`); the
request's campaign, its first brief and its audit event are written in one transaction; then the
run starts through `review.services.runs` (which registers the variants and hands them to the
orchestrator once its own transaction commits). Nothing here generates.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from prompt_library.models import Campaign
from prompt_library.sources import source_image_store
from prompt_library.specs import canonical_hash
from review.audit import AuditAction
from review.events import audit_event_build
from review.models import Run
from review.requests.briefs import CheckedBrief, brief_check, variants_max
from review.requests.errors import BriefProblem, BriefRefusedError, RequestClosedError, RequestForbiddenError
from review.requests.models import AssetRequest, Brief
from review.roles import REQUEST, role_require
from review.services.runs import campaign_run_start, run_cancel


def request_create(
    *,
    requester: User,
    template: str,
    values: Mapping[str, Any],
    variants_per_combination: int,
    renditions: Sequence[str],
    deadline: datetime | None,
    notes: str,
    title: str = "",
    version: int | None = None,
    reference_image: bytes | None = None,
    reference_image_name: str = "",
) -> AssetRequest:
    """Ask for assets: check the brief, store it unchanged (who, when, the pinned template
    version), create the request's campaign with its deadline, and start its run.

    A reference image (image-to-image, inpainting and image-to-video templates) is stored once as a source image
    and the campaign draws from it instead of the template's own: the template version stays
    pinned and unchanged, the variants' keys, generation records and credits name the photo.

    Every bad field is refused together, before anything is registered (`BriefRefusedError`).
    """
    role_require(requester, REQUEST)
    checked = brief_check(
        template=template,
        version=version,
        values=values,
        variants_per_combination=variants_per_combination,
        renditions=renditions,
        deadline=deadline,
        notes=notes,
        title=title,
        reference_image=reference_image,
    )
    name = _campaign_name()
    source = ""
    if checked.reference_image is not None:
        # Stored under its sha256 before the transaction: the same bytes again are the same row
        # and file, so a refused or repeated request leaves nothing extra behind.
        source = source_image_store(
            data=checked.reference_image,
            name=reference_image_name or "reference-image",
            created_by=requester,
            field="reference_image",
        ).sha256
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            title=checked.title or f"Request by {requester.get_username()}",
            kind=Campaign.Kind.REQUEST,
            prompt_version=checked.version,
            variables=checked.values,
            seeds=request_seeds(name_seed=name, start=0, count=checked.variants_per_combination),
            deadline=checked.deadline,
            requested_by=requester,
            source_image=source,
        )
        request = AssetRequest.objects.create(
            campaign=campaign,
            requester=requester,
            prompt_version=checked.version,
            title=checked.title,
            deadline=checked.deadline,
            notes=checked.notes,
            renditions=checked.renditions,
        )
        brief = _brief_store(
            request=request, number=1, user=requester, checked=checked, reference_image=reference_image
        )
        _request_event(
            request, AuditAction.REQUEST_CREATED, requester, brief=brief.number, variants=checked.variant_count
        )
    from review.notifications import request_arrived_notify

    request_arrived_notify(request=request)
    campaign_run_start(campaign=campaign, actor=requester)
    return request


def request_more(
    *,
    request: AssetRequest,
    user: User,
    more_seeds: int = 0,
    values: Mapping[str, Sequence[str]] | None = None,
) -> AssetRequest:
    """Ask more of a request: `more_seeds` new variants of every combination, and/or new values
    of its variables (every combination with them); the new variants join the same request,
    pinned to its template version, and a new run makes them. Refused while its run is open."""
    request_access_check(request=request, user=user, change=True)
    current = AssetRequest.objects.select_related("campaign", "prompt_version__template").get(pk=request.pk)
    if current.cancelled_at is not None:
        raise RequestClosedError(current.pk, "is cancelled: start a new request instead")
    if Run.objects.filter(campaign_id=current.campaign_id, state__in=OPEN_RUNS).exists():
        raise RequestClosedError(current.pk, "is still generating: ask for more once its run has finished")
    problems: list[BriefProblem] = []
    added: dict[str, list[str]] = {}
    for name, new in (values or {}).items():
        if isinstance(new, str) or not isinstance(new, Sequence):
            problems.append(BriefProblem(f"values.{name}", new, "must list the new values"))
        elif new:
            added[str(name)] = list(new)
    if isinstance(more_seeds, bool) or not isinstance(more_seeds, int) or not 0 <= more_seeds <= variants_max():
        problems.append(BriefProblem("more_seeds", more_seeds, f"must be a whole number from 0 to {variants_max()}"))
    elif more_seeds == 0 and not added:
        problems.append(BriefProblem("more_seeds", more_seeds, "or a new variable value is needed to ask for more"))
    if problems:
        raise BriefRefusedError(problems)
    campaign = current.campaign
    merged = {name: list(vals) for name, vals in campaign.variables.items()}
    for name, new in added.items():
        merged[name] = merged.get(name, []) + [
            v for v in new if not isinstance(v, str) or v.strip() not in merged.get(name, [])
        ]
    seeds = list(campaign.seeds) + request_seeds(name_seed=campaign.name, start=len(campaign.seeds), count=more_seeds)
    before = math.prod(len(v) for v in campaign.variables.values()) * len(campaign.seeds)
    checked = brief_check(
        template=current.prompt_version.template.name,
        version=current.prompt_version.number,
        values=merged,
        variants_per_combination=len(seeds),
        renditions=current.renditions,
        deadline=current.deadline,
        notes=current.notes,
        title=current.title,
        already=before,
        require_deadline_future=False,
    )
    if checked.variant_count == before:
        raise BriefRefusedError(
            [BriefProblem("values", added, "adds no new variants: each value is already asked for")]
        )
    with transaction.atomic():
        locked = AssetRequest.objects.select_for_update().get(pk=current.pk)
        if locked.cancelled_at is not None:
            raise RequestClosedError(locked.pk, "is cancelled: start a new request instead")
        Campaign.objects.filter(pk=campaign.pk).update(variables=checked.values, seeds=seeds, updated_at=timezone.now())
        content = {"more_seeds": more_seeds, "values": added, "variants": checked.variant_count - before}
        brief = Brief.objects.create(
            request=locked,
            number=locked.briefs.count() + 1,
            submitted_by=user,
            prompt_version=locked.prompt_version,
            content=content,
            content_hash=canonical_hash(content),
        )
        _request_event(current, AuditAction.REQUEST_EXTENDED, user, brief=brief.number, variants=content["variants"])
    campaign.refresh_from_db()
    campaign_run_start(campaign=campaign, actor=user)
    return current


def request_cancel(*, request: AssetRequest, user: User) -> AssetRequest:
    """Cancel a request: its open run is cancelled (variants not made yet become `cancelled`; a
    batch being made hands nothing over and removes its files), and the request is closed."""
    request_access_check(request=request, user=user, change=True)
    with transaction.atomic():
        locked = AssetRequest.objects.select_for_update().get(pk=request.pk)
        if locked.cancelled_at is not None:
            raise RequestClosedError(locked.pk, "is already cancelled")
        locked.cancelled_at = timezone.now()
        locked.cancelled_by = user
        locked.save(update_fields=["cancelled_at", "cancelled_by"])
        open_runs = list(Run.objects.filter(campaign_id=locked.campaign_id, state__in=OPEN_RUNS))
        for run in open_runs:
            run_cancel(run=run, actor=user)
        _request_event(locked, AuditAction.REQUEST_CANCELLED, user, runs=[r.pk for r in open_runs])
    return locked


def request_download_record(*, request: AssetRequest, user: User) -> None:
    """Record in the audit log that `user` took the request's approved files away."""
    request_access_check(request=request, user=user)
    _request_event(request, AuditAction.REQUEST_DOWNLOADED, user)


OPEN_RUNS = (Run.State.QUEUED, Run.State.RUNNING, Run.State.PAUSED)


def request_access_check(*, request: AssetRequest, user: User, change: bool = False) -> None:
    """A requester sees and changes only their own requests; an admin (or a superuser) any.
    Reviewers may see a request (its notes and deadline) but not change it."""
    if user.is_superuser or user.groups.filter(name="admin").exists():
        return
    if request.requester_id == user.pk:
        role_require(user, REQUEST)
        return
    if not change and user.has_perm("review.review_asset"):
        return
    raise RequestForbiddenError(request.pk, user.get_username())


def request_seeds(*, name_seed: str, start: int, count: int) -> list[int]:
    """`count` seeds for a request, the `start`-th on: 31 bits of a hash of its name and index,
    so asking for more never repeats a seed and a request can be reproduced."""
    return [
        int.from_bytes(hashlib.sha256(f"greenlight-request:{name_seed}:{i}".encode()).digest()[:4], "big") & 0x7FFFFFFF
        for i in range(start, start + count)
    ]


def _campaign_name() -> str:
    return f"request-{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _brief_store(
    *, request: AssetRequest, number: int, user: User, checked: CheckedBrief, reference_image: bytes | None
) -> Brief:
    content: dict[str, Any] = {
        "template": checked.version.template.name,
        "version": checked.version.number,
        "title": checked.title,
        "values": checked.values,
        "variants_per_combination": checked.variants_per_combination,
        "renditions": checked.renditions,
        "deadline": checked.deadline.isoformat() if checked.deadline else None,
        "notes": checked.notes,
        "variants": checked.variant_count,
    }
    if reference_image is not None:
        content["reference_image_sha256"] = hashlib.sha256(reference_image).hexdigest()
    return Brief.objects.create(
        request=request,
        number=number,
        submitted_by=user,
        prompt_version=checked.version,
        content=content,
        content_hash=canonical_hash(content),
    )


def _request_event(request: AssetRequest, action: AuditAction, actor: User | None, **detail: Any) -> None:
    audit_event_build(None, action, actor=actor, request=request.pk, campaign=request.campaign.name, **detail).save()

"""What reviewers and publishers do to an asset: claim and release it, approve or reject it (one
or a selection), ask for new variants, publish, revoke, and comment."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from provenance.errors import ProvenanceError, SigningError, StorageError
from review import orchestrator, services
from review.errors import ReviewError
from review.forms import (
    ApproveForm,
    BulkDecisionForm,
    CommentForm,
    RegenerateForm,
    RejectForm,
    RevokeForm,
    form_problems,
)
from review.models import ReviewDecision
from review.views import asset_or_404

logger = logging.getLogger("greenlight.review")


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def task_claim(request: HttpRequest) -> HttpResponse:
    """Claim the next asset to review (leased to this reviewer) and open it."""
    asset = services.review_task_claim(reviewer=request.user)  # type: ignore[arg-type]
    if asset is None:
        messages.info(request, "Nothing is waiting for your review.")
        return redirect("review:queue")
    return redirect("review:asset", serial=asset.pk)


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def task_release(request: HttpRequest, serial: int) -> HttpResponse:
    services.review_task_release(asset=asset_or_404(serial), reviewer=request.user)  # type: ignore[arg-type]
    messages.info(request, f"Released asset {serial} back to the queue.")
    return redirect("review:queue")


def _after_decision(request: HttpRequest) -> HttpResponse:
    """Keep the reviewer moving: claim the next asset for them."""
    return task_claim(request)


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def asset_approve(request: HttpRequest, serial: int) -> HttpResponse:
    asset = asset_or_404(serial)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Asset {serial} not approved: {form_problems(form)}")
        return redirect("review:asset", serial=serial)
    try:
        services.asset_approve(asset=asset, reviewer=request.user, comment=form.cleaned_data["comment"])  # type: ignore[arg-type]
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:asset", serial=serial)
    messages.success(request, f"Approved asset {serial}.")
    return _after_decision(request)


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def asset_reject(request: HttpRequest, serial: int) -> HttpResponse:
    asset = asset_or_404(serial)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Asset {serial} not rejected: choose a reason ({form_problems(form)})")
        return redirect("review:asset", serial=serial)
    try:
        services.asset_reject(
            asset=asset,
            reviewer=request.user,  # type: ignore[arg-type]
            reason=form.cleaned_data["reason"],
            comment=form.cleaned_data["comment"],
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:asset", serial=serial)
    messages.success(request, f"Rejected asset {serial}.")
    return _after_decision(request)


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def assets_bulk(request: HttpRequest) -> HttpResponse:
    """Approve or reject the assets selected in the grid."""
    form = BulkDecisionForm(request.POST)
    if not request.POST.getlist("serials"):
        messages.error(request, "Select at least one asset first.")
    elif not form.is_valid():
        messages.error(request, f"Nothing decided: {form_problems(form)}")
    else:
        try:
            result = services.assets_decide_bulk(
                serials=form.cleaned_data["serials"],
                reviewer=request.user,  # type: ignore[arg-type]
                decision=form.cleaned_data["decision"],
                reason=form.cleaned_data["reason"],
                comment=form.cleaned_data["comment"],
            )
        except ReviewError as exc:
            messages.error(request, f"Nothing decided: {exc}")
        else:
            verb = "Approved" if form.cleaned_data["decision"] == ReviewDecision.Decision.APPROVE else "Rejected"
            if result.decided:
                decided = ", ".join(map(str, result.decided))
                messages.success(request, f"{verb} {len(result.decided)} asset(s): {decided}.")
            for _, problem in result.refused:
                messages.error(request, problem)
    return redirect(f"{reverse('review:queue')}?state=in_review")


@permission_required("review.view_asset", raise_exception=True)
@require_POST
def asset_regenerate(request: HttpRequest, serial: int) -> HttpResponse:
    """Ask for new variants of a rejected asset; they come back to the queue when generated."""
    asset = asset_or_404(serial)
    form = RegenerateForm(request.POST, variables=asset.variables)
    if not form.is_valid():
        messages.error(request, f"Nothing regenerated: {form_problems(form)}")
        return redirect("review:asset", serial=serial)
    try:
        serials = services.asset_regenerate(
            asset=asset,
            user=request.user,  # type: ignore[arg-type]
            count=form.cleaned_data["count"],
            variables=form.variables(),
        )
    except ReviewError as exc:
        messages.error(request, f"Nothing regenerated: {exc}")
        return redirect("review:asset", serial=serial)
    try:
        where = orchestrator.assets_generate_submit(serials=serials)
    except Exception as exc:  # the assets stay pending; say so rather than fail the page
        messages.warning(
            request,
            f"Registered asset(s) {', '.join(map(str, serials))}, but generation could not start ({exc}); "
            "they stay pending until `manage.py assets_generate --pending` runs.",
        )
    else:
        messages.success(
            request,
            f"Asked for {len(serials)} new variant(s) of asset {serial}: {', '.join(map(str, serials))} "
            f"({where}). They join the review queue when generated.",
        )
    return redirect("review:asset", serial=serial)


@permission_required("review.publish_asset", raise_exception=True)
@require_POST
def asset_publish(request: HttpRequest, serial: int) -> HttpResponse:
    asset = asset_or_404(serial)
    try:
        publications = services.asset_publish(asset=asset, user=request.user)  # type: ignore[arg-type]
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:asset", serial=serial)
    except ProvenanceError as exc:  # its master missing from storage, signing files unusable, ...
        messages.error(request, _provenance_failure(serial, "published", exc))
        return redirect("review:asset", serial=serial)
    messages.success(request, f"Published asset {serial}: {', '.join(p.path for p in publications)}")
    return redirect("review:asset", serial=serial)


@permission_required("review.publish_asset", raise_exception=True)
@require_POST
def asset_revoke(request: HttpRequest, serial: int) -> HttpResponse:
    form = RevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Give a reason to revoke the asset ({form_problems(form)}).")
        return redirect("review:asset", serial=serial)
    try:
        services.asset_revoke(asset=asset_or_404(serial), user=request.user, reason=form.cleaned_data["reason"])  # type: ignore[arg-type]
    except ReviewError as exc:
        messages.error(request, str(exc))
    except ProvenanceError as exc:  # the publish target could not be written to
        messages.error(request, _provenance_failure(serial, "revoked", exc))
    else:
        messages.success(request, f"Revoked asset {serial}: its published files were removed.")
    return redirect("review:asset", serial=serial)


# What a provenance failure is, in a message a publisher reads; the details (paths on the
# server, the signing files) go to the log, which the people who can fix them read.
PROVENANCE_FAILURES: dict[type[ProvenanceError], str] = {
    StorageError: "a stored or published file could not be read or written",
    SigningError: "the signing files could not be used",
}


def _provenance_failure(serial: int, verb: str, exc: ProvenanceError) -> str:
    logger.error("asset %s not %s: %s", serial, verb, exc, exc_info=exc)
    problem = next((text for kind, text in PROVENANCE_FAILURES.items() if isinstance(exc, kind)), str(exc))
    return f"Asset {serial} not {verb}: {problem} (the server log has the details)."


@permission_required("review.view_asset", raise_exception=True)
@require_POST
def asset_comment(request: HttpRequest, serial: int) -> HttpResponse:
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Comment not saved: {form_problems(form)}")
        return redirect("review:asset", serial=serial)
    try:
        services.asset_comment(asset=asset_or_404(serial), user=request.user, text=form.cleaned_data["text"])  # type: ignore[arg-type]
    except ReviewError as exc:
        messages.error(request, f"Comment not saved: {exc}")
    return redirect("review:asset", serial=serial)

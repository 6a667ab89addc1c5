"""Asset requests in the dashboard (role requester): the new-request form, a requester's list,
a request's page with live progress (its JSON polled by requests.js), cancel, ask for more,
the approved assets' zip, and the notifications inbox."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from review import notifications
from review.delivery import delivery_filename, delivery_stream
from review.errors import ReviewError
from review.forms import form_problems
from review.requests import selectors, services
from review.requests.briefs import variants_max
from review.requests.errors import BriefRefusedError, RequestForbiddenError
from review.requests.forms import BriefForm, MoreForm
from review.requests.models import AssetRequest, Notification

REQUEST = "review.request_asset"


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _request_or_404(request: HttpRequest, pk: int, *, change: bool = False) -> AssetRequest:
    """The asset request, if this user may see it (404 otherwise: another requester's request
    is not even confirmed to exist)."""
    try:
        found = selectors.request_get(pk=pk)
        services.request_access_check(request=found, user=_user(request), change=change)
    except (AssetRequest.DoesNotExist, RequestForbiddenError) as exc:
        raise Http404(f"No request {pk}") from exc
    return found


@permission_required(REQUEST, raise_exception=True)
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    """The user's requests (an admin: every request), newest first, with counts per state."""
    return render(request, "review/requests/list.html", {"requests": list(selectors.request_list(user=_user(request)))})


@permission_required(REQUEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    """Pick a template, fill its brief, see the variant count, submit. A refused brief answers
    400 with every bad field named with its value, and the form as it was filled."""
    cards = selectors.template_cards()
    chosen = request.POST.get("template") or request.GET.get("template") or (cards[0].name if cards else "")
    card = next((c for c in cards if c.name == chosen), None)
    status = 200
    problems: list[str] = []
    if card is None and chosen:
        problems.append(f"template {chosen[:60]!r}: not a template here")
        status = 400
        card = cards[0] if cards else None
    form = BriefForm(request.POST or None, request.FILES or None, card=card) if card else None
    if request.method == "POST" and form is not None and card is not None and not problems:
        if form.is_valid():
            reference, reference_name = form.reference()
            try:
                created = services.request_create(
                    requester=_user(request),
                    template=card.name,
                    version=card.number,
                    values=form.values(),
                    variants_per_combination=form.cleaned_data["variants_per_combination"],
                    renditions=form.cleaned_data["renditions"],
                    deadline=form.cleaned_data["deadline"],
                    notes=form.cleaned_data["notes"],
                    title=form.cleaned_data["title"],
                    reference_image=reference,
                    reference_image_name=reference_name,
                )
            except BriefRefusedError as exc:
                problems += [str(p) for p in exc.problems]
            except ReviewError as exc:
                problems.append(str(exc))
            else:
                messages.success(request, f"Request {created.pk} submitted: its variants are being generated.")
                return redirect("review:request", pk=created.pk)
        else:
            problems.append(form_problems(form))
        status = 400
    return render(
        request,
        "review/requests/new.html",
        {"cards": cards, "card": card, "form": form, "problems": problems, "variants_max": variants_max()},
        status=status,
    )


@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A request: its brief(s), live progress, thumbnails, decisions, and what it may do next."""
    found = _request_or_404(request, pk)
    progress = selectors.request_progress(request=found)
    mine = found.requester_id == request.user.pk or selectors.user_is_admin(_user(request))
    return render(
        request,
        "review/requests/detail.html",
        {
            "req": found,
            "briefs": list(found.briefs.select_related("submitted_by").order_by("number")),
            "progress": progress,
            "can_change": mine and found.cancelled_at is None,
            "more_form": MoreForm(),
            "variables": list(found.campaign.variables),
            "approved": progress.counts.get("approved", 0) + progress.counts.get("published", 0),
        },
    )


@require_GET
def request_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """The request's progress as JSON, polled by the request page."""
    found = _request_or_404(request, pk)
    response = JsonResponse(selectors.request_progress(request=found).to_dict())
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def request_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    found = _request_or_404(request, pk, change=True)
    try:
        services.request_cancel(request=found, user=_user(request))
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Request {pk} cancelled: variants not made yet will not be made.")
    return redirect("review:request", pk=pk)


@require_POST
def request_more(request: HttpRequest, pk: int) -> HttpResponse:
    found = _request_or_404(request, pk, change=True)
    form = MoreForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing asked: {form_problems(form)}")
        return redirect("review:request", pk=pk)
    try:
        services.request_more(
            request=found, user=_user(request), more_seeds=form.cleaned_data["more_seeds"] or 0, values=form.values()
        )
    except ReviewError as exc:
        messages.error(request, f"Nothing asked: {exc}")
    else:
        messages.success(request, f"More variants asked of request {pk}: they are being generated.")
    return redirect("review:request", pk=pk)


@require_GET
def request_download(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The approved assets' signed files, manifest.csv and a README, as a zip streamed as it is
    written."""
    found = _request_or_404(request, pk)
    services.request_download_record(request=found, user=_user(request))
    response = StreamingHttpResponse(delivery_stream(request=found), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{delivery_filename(found)}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """The user's notifications, newest first."""
    return render(request, "review/requests/inbox.html", {"items": selectors.notification_list(user=_user(request))})


@require_GET
def inbox_count(request: HttpRequest) -> JsonResponse:
    """How many notifications the user has not read (the bell's number)."""
    response = JsonResponse({"unread": selectors.notifications_unread_count(user=_user(request))})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def inbox_read(request: HttpRequest) -> HttpResponse:
    """Mark one notification (`id`) or all of them read."""
    raw = request.POST.get("id", "")
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        item = Notification.objects.filter(pk=int(raw), recipient=_user(request)).first()
        if item is not None:
            notifications.notification_read(notification=item, user=_user(request))
            if item.url:
                return redirect(item.url)
    elif raw:
        messages.error(request, f"id {raw[:40]!r}: must be a notification number")
    else:
        notifications.notifications_read_all(user=_user(request))
    return redirect("review:inbox")

"""The audit log: filterable, a page at a time, and the same filters exported as CSV."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from review import selectors
from review.audit import AuditAction
from review.exports import csv_writer
from review.forms import AuditFilterForm, form_problems
from review.models import AuditEvent

AUDIT_PAGE = 100
AUDIT_CSV_FIELDS = ["time", "asset", "action", "actor", "from_state", "to_state", "reason", "comment", "detail"]


def _audit_rows(request: HttpRequest) -> tuple[AuditFilterForm, str, QuerySet[AuditEvent]]:
    """The filter form, the action it filters on (today's name), and the events it selects:
    none when a filter cannot be read, rather than the whole log as if it were filtered."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return form, "", AuditEvent.objects.none()
    filters = form.cleaned_data
    action = filters.get("action") or ""
    events = selectors.audit_event_list(action=action, actor=filters.get("actor") or "", serial=filters.get("serial"))
    return form, action, events


@permission_required("review.view_auditevent", raise_exception=True)
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log, filterable, a page at a time; the same filters export as CSV. A filter it
    cannot read (a serial or page that is not a number) answers 400 naming it, and no rows."""
    form, action, events = _audit_rows(request)
    understood = not form.errors
    page = Paginator(events, AUDIT_PAGE).get_page(form.cleaned_data.get("page") or 1)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "review/audit.html",
        {
            "form": form,
            "page": page,
            "actions": AuditAction.choices,
            "action": action,
            "query": query.urlencode(),
            "filter_problems": "" if understood else form_problems(form),
        },
        status=200 if understood else 400,
    )


@permission_required("review.view_auditevent", raise_exception=True)
@require_GET
def audit_csv(request: HttpRequest) -> HttpResponseBase:
    """The filtered log as CSV, streamed; each action under today's name (`action_name`). Text a
    person typed (a comment, a reason) that a spreadsheet would run as a formula is written with
    a quote in front (`csv_writer`). A filter it cannot read answers 400 naming it."""
    form, _, events = _audit_rows(request)
    if form.errors:
        return HttpResponseBadRequest(
            f"Filter not understood: {form_problems(form)}\n", content_type="text/plain; charset=utf-8"
        )

    return audit_csv_response(events)


def audit_csv_response(events: QuerySet[AuditEvent]) -> StreamingHttpResponse:
    """`events` as the audit CSV, streamed (the dashboard's export and the API's)."""

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        writer.writerow(AUDIT_CSV_FIELDS)
        for e in events.iterator(chunk_size=2000):
            detail = dict(e.detail)
            writer.writerow(
                [
                    e.created_at.isoformat(),
                    e.asset_id or "",
                    e.action_name,
                    e.actor.get_username() if e.actor else "pipeline",
                    e.from_state,
                    e.to_state,
                    detail.pop("reason", ""),
                    detail.pop("comment", ""),
                    json.dumps(detail, sort_keys=True),
                ]
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="greenlight-audit.csv"'
    return response

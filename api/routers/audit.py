"""The audit log: events filtered by action, actor and asset, a page at a time or as CSV."""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest, HttpResponseBase
from ninja import Query, Router, Schema
from pydantic import Field, StringConstraints

from api.pagination import Page, PageParams, keyset_page
from api.permissions import permission_require
from api.responses import ERRORS_READ
from api.schemas import EventOut, event_out
from review import selectors
from review.audit import audit_action_current
from review.roles import AUDIT
from review.views.audit import audit_csv_response

router = Router(tags=["audit"])


class AuditFilters(Schema):
    action: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        None, description="an action (today's name or an older spelling)"
    )
    actor: Annotated[str, StringConstraints(max_length=150)] | None = Field(None, description="username")
    serial: int | None = Field(None, ge=1, le=10**18 - 1, description="asset serial")


def _events(filters: AuditFilters) -> Any:
    return selectors.audit_event_list(
        action=audit_action_current(filters.action or ""), actor=filters.actor or "", serial=filters.serial
    )


@router.get("/audit-events", response={200: Page[EventOut], **ERRORS_READ}, summary="Audit events")
def audit_events(request: HttpRequest, filters: Query[AuditFilters], page: Query[PageParams]) -> dict[str, Any]:
    """The audit log, newest first."""
    permission_require(request, AUDIT)
    return keyset_page(_events(filters), page=page, field="id", dated=False, item=event_out)


@router.get(
    "/audit-events.csv",
    response={200: None, **ERRORS_READ},
    summary="Audit events as CSV",
    openapi_extra={"responses": {200: {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}}},
)
def audit_events_csv(request: HttpRequest, filters: Query[AuditFilters]) -> HttpResponseBase:
    """The same filters as CSV, streamed (the dashboard's export: formula cells neutralised)."""
    permission_require(request, AUDIT)
    return audit_csv_response(_events(filters))

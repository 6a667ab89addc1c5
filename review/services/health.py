"""The health of the system as review keeps it: a sweep's report, recorded for the dashboard.

A sweep of crash leftovers (stored files no asset references, flow runs whose process died,
publications a dead process left writing) runs outside the web process; review records its
report as an audit event, which the health page reads (`review.selectors.sweep_reports`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from review.audit import AuditAction
from review.events import audit_event_build
from review.models import AuditEvent


@transaction.atomic
def sweep_record(*, detail: Mapping[str, Any]) -> AuditEvent:
    """Record one sweep's report (JSON) as a `swept` audit event, of no asset and no person."""
    event = audit_event_build(None, AuditAction.SWEPT, **dict(detail))
    event.save()
    return event

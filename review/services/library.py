"""The prompt library's authoring in the audit log: each version and part made in the browser or
through the API is recorded with who made it, in the transaction that made it (the receivers of
`prompt_library.authoring`'s signals, connected in `review.apps`)."""

from __future__ import annotations

from typing import Any

from review.audit import AuditAction
from review.models import AuditEvent


def version_audited(sender: type, version: Any, actor: Any, **kwargs: Any) -> None:
    """A prompt version was created: record the template, number, hash and included parts."""
    AuditEvent.objects.create(
        actor=actor,
        action=AuditAction.PROMPT_VERSION_CREATED,
        detail={
            "template": version.template.name,
            "number": version.number,
            "content_hash": version.content_hash,
            "parts": version.parts,
        },
    )


def part_audited(sender: type, part: Any, actor: Any, **kwargs: Any) -> None:
    """A style or negative preset version was created."""
    AuditEvent.objects.create(
        actor=actor,
        action=AuditAction.PROMPT_PART_CREATED,
        detail={"kind": part.kind, "name": part.name, "number": part.number},
    )


def matrix_audited(sender: type, campaign: Any, actor: Any, before: Any, **kwargs: Any) -> None:
    """A campaign's variable values (and linked rows, in the rows layout) were imported from a CSV."""
    AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=AuditAction.CAMPAIGN_VARIABLES_IMPORTED,
        detail={
            "campaign": campaign.name,
            "before": before,
            "after": campaign.variables,
            "rows_before": kwargs.get("rows_before", []),
            "rows_after": campaign.variable_rows,
        },
    )

"""The dashboard's filters, and the SQL they add to a query over the summary views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

APPROVED_STATES = ("approved", "published", "revoked")  # passed review (revoked after publication)
DECIDED_STATES = (*APPROVED_STATES, "rejected")


@dataclass(frozen=True)
class InsightFilters:
    """A date range (inclusive, UTC days), a campaign and a template; None is "any"."""

    date_from: date | None = None
    date_to: date | None = None
    campaign_id: int | None = None
    template_id: int | None = None

    def where(self, alias: str = "m", *, dates: bool = True) -> tuple[str, list[object]]:
        """` AND ...` conditions over a view with day, campaign_id and prompt_version_id."""
        sql: list[str] = []
        params: list[object] = []
        if dates and self.date_from is not None:
            sql.append(f"{alias}.day >= %s")
            params.append(self.date_from)
        if dates and self.date_to is not None:
            sql.append(f"{alias}.day <= %s")
            params.append(self.date_to)
        if self.campaign_id is not None:
            sql.append(f"{alias}.campaign_id = %s")
            params.append(self.campaign_id)
        if self.template_id is not None:
            sql.append(
                f"{alias}.prompt_version_id IN (SELECT id FROM prompt_library_promptversion WHERE template_id = %s)"
            )
            params.append(self.template_id)
        return "".join(f" AND {s}" for s in sql), params

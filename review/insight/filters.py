"""The dashboard's filters, and the SQL they add to a query over the summary views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

APPROVED_STATES = ("approved", "published", "revoked")  # passed review (revoked after publication)
DECIDED_STATES = (*APPROVED_STATES, "rejected")
# Each kind of summary: its per-day view and its all-time total (review/migrations/0016).
SUMMARY_VIEWS = {
    "asset": ("insight_asset_day", "insight_asset_total"),
    "variable": ("insight_variable_day", "insight_variable_total"),
    "combination": ("insight_combination", "insight_combination_total"),
}


@dataclass(frozen=True)
class InsightFilters:
    """A date range (inclusive, UTC days), a campaign and a template; None is "any"."""

    date_from: date | None = None
    date_to: date | None = None
    campaign_id: int | None = None
    template_id: int | None = None

    @property
    def dated(self) -> bool:
        return self.date_from is not None or self.date_to is not None

    def view(self, kind: str) -> str:
        """The summary view of `kind` ("asset", "variable" or "combination") to read: per day
        with a date range, else its all-time total (the same figures summed over the days, so a
        page without a date range costs the same whatever the length of the history)."""
        return SUMMARY_VIEWS[kind][0 if self.dated else 1]

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

"""A panel's figures as a table: what the page shows under each chart and what its CSV holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Table:
    """Column names and rows of plain values (text, int, float or None)."""

    key: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...] = field(default_factory=tuple)

    def column(self, name: str) -> list[Any]:
        index = self.headers.index(name)
        return [row[index] for row in self.rows]

    def row(self, label: object) -> tuple[Any, ...]:
        """The row whose first cell is `label` (KeyError naming it if none)."""
        for row in self.rows:
            if row[0] == label:
                return row
        raise KeyError(f"no row {label!r} in table {self.key!r}")

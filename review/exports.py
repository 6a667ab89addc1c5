"""CSV the product writes, safe to open in a spreadsheet.

A cell that starts with =, +, -, @, a tab or a carriage return is read by Excel, LibreOffice and
Google Sheets as a formula: a reviewer's comment "=HYPERLINK(...)" in an exported audit log would
run when the file is opened (CSV injection). Every such text cell is written with a single quote
in front, as OWASP recommends; spreadsheets show the text, and the quote says it was altered.
Every CSV writer of the project goes through `csv_writer`, so no export can forget it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def csv_cell(value: object) -> object:
    """`value`, with a single quote in front when it is text a spreadsheet would run as a
    formula. Numbers, dates and None are written as they are: they are not text a person typed."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class SafeCsvWriter:
    """csv.writer whose every row is passed through `csv_cell`."""

    def __init__(self, target: _Writable, **options: Any) -> None:
        self._writer = csv.writer(target, **options)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(target: _Writable, **options: Any) -> SafeCsvWriter:
    """A CSV writer onto `target` (csv.writer's options) that neutralises formula cells."""
    return SafeCsvWriter(target, **options)

"""CSV cells a spreadsheet would run as a formula are written quoted; everything else as it is."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from review.exports import FORMULA_STARTS, csv_cell, csv_writer


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_text_starting_like_a_formula_gets_a_quote_in_front(start: str) -> None:
    assert csv_cell(f"{start}cmd|' /C calc'!A0") == f"'{start}cmd|' /C calc'!A0"


@pytest.mark.parametrize("value", ["", "plain", "a=b", " =1", "'=1", "3-4", 42, -1, 1.5, None])
def test_other_values_are_kept(value: object) -> None:
    assert csv_cell(value) == value


def test_the_writer_quotes_every_formula_cell_of_a_row() -> None:
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    when = datetime(2025, 1, 2, tzinfo=UTC)
    writer.writerow(["=1+1", "ok", -5, when, "@x"])
    writer.writerows([["+a"], ["-b"]])
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows == [["'=1+1", "ok", "-5", str(when), "'@x"], ["'+a"], ["'-b"]]

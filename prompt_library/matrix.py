"""A campaign's variable values from a CSV file: the matrix import.

Two layouts:

- "columns": one column per variable, its values down the column (blank cells end a shorter
  column); the campaign makes every combination of the values.
- "rows": one row per product with its attributes (`product,colour,material`); the campaign
  makes those rows only, not every combination of their values. The header may name some of the
  template's variables: the others keep the campaign's values and are crossed with the rows
  (three products with their colours, times two scenes).

`layout="auto"` detects which (`layout_detect`, whose reason the preview shows). Nothing is saved
by `matrix_parse`: its preview says how many variants the file makes, and `campaign_variables_set`
saves exactly what was previewed. A refusal names each bad line, column and value.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.dispatch import Signal

from prompt_library.errors import LibraryFileError
from prompt_library.models import Campaign
from prompt_library.parsing import template_from_dict
from prompt_library.selectors import VALUE_MAX

CSV_MAX = 1024 * 1024  # characters of CSV
ROWS_MAX = 10_000
VARIANTS_MAX = 100_000  # variants one campaign may ask for
LAYOUTS = ("auto", "columns", "rows")
PROBLEMS_SHOWN = 10  # bad cells named in one refusal; the rest are counted

# Sent inside the saving transaction:
# (sender=Campaign, campaign=..., actor=..., before=<variables>, rows_before=<variable_rows>).
campaign_variables_saved = Signal()


@dataclass(frozen=True)
class Line:
    """One non-blank line of the CSV after the header: its number in the file and its cells."""

    number: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class MatrixPreview:
    """What a CSV gives the campaign, and how many variants that makes.

    `variables` holds every variable of the template with its values (in the rows layout, the
    distinct values of each column, and the campaign's own values for a variable the file does
    not name); `rows` holds the linked values of the rows layout (empty in the columns layout)."""

    layout: str
    reason: str  # why this layout was read ("" when the caller chose it)
    variables: tuple[tuple[str, tuple[str, ...]], ...]
    rows: tuple[tuple[tuple[str, str], ...], ...]
    lines: int  # lines of values read
    seeds: int

    @property
    def linked(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.rows[0]) if self.rows else ()

    @property
    def kept(self) -> tuple[str, ...]:
        """Variables the rows layout does not name: their values stay the campaign's."""
        return tuple(name for name, _ in self.variables if self.rows and name not in self.linked)

    @property
    def combinations(self) -> int:
        crossed = math.prod(len(values) for name, values in self.variables if name not in self.linked)
        return (len(self.rows) if self.rows else 1) * crossed

    @property
    def variant_count(self) -> int:
        return self.combinations * self.seeds

    def row_dicts(self) -> list[dict[str, str]]:
        return [dict(row) for row in self.rows]


def _refuse(where: str, problems: Sequence[str]) -> LibraryFileError:
    shown = "; ".join(problems[:PROBLEMS_SHOWN])
    more = len(problems) - PROBLEMS_SHOWN
    return LibraryFileError(where, shown + (f"; and {more} more" if more > 0 else ""))


def _cell(line: int, column: str, value: str, problem: str) -> str:
    shown = value if len(value) <= 40 else value[:40] + "…"
    return f"line {line}, column '{column}' ({shown!r}): {problem}"


def csv_read(text: str, *, where: str) -> tuple[list[str], list[Line]]:
    """The header and the non-blank lines of a CSV, each with its line number in the file."""
    if not isinstance(text, str) or not text.strip():
        raise LibraryFileError(where, "field 'file' is empty")
    if len(text) > CSV_MAX:
        raise LibraryFileError(where, f"field 'file' has {len(text)} characters; at most {CSV_MAX}")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), strict=True)
    table: list[Line] = []
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                table.append(Line(reader.line_num, tuple(cell.strip() for cell in cells)))
            if len(table) > ROWS_MAX + 1:
                raise LibraryFileError(where, f"field 'file' has more than {ROWS_MAX} lines of values")
    except csv.Error as exc:
        raise LibraryFileError(where, f"field 'file' is not valid CSV at line {reader.line_num}: {exc}") from exc
    if len(table) < 2:
        raise LibraryFileError(where, "field 'file' needs a header row and at least one row of values")
    return list(table[0].cells), table[1:]


def layout_detect(header: Sequence[str], lines: Sequence[Line], declared: Sequence[str]) -> tuple[str, str]:
    """Which layout a CSV is in, and why.

    A header naming only some of the template's variables can only be rows (the columns layout
    needs every variable); a blank or missing cell can only be columns (a product's row is
    complete); a column that repeats a value is rows (a column of values never needs one twice).
    A full table without repeats reads either way: it is read as rows, the layout that makes
    fewer variants, and the preview says so."""
    if set(header) < set(declared):
        return "rows", "the header names some of the template's variables; the others keep the campaign's values"
    for line in lines:
        if len(line.cells) < len(header) or any(not cell for cell in line.cells[: len(header)]):
            return "columns", f"line {line.number} has a blank cell, so each column is a list of values"
    for index, name in enumerate(header):
        seen: dict[str, int] = {}
        for line in lines:
            value = line.cells[index]
            if value in seen:
                return "rows", f"column '{name}' repeats {value!r} (lines {seen[value]} and {line.number})"
            seen[value] = line.number
    return (
        "rows",
        "every line is complete; read as one row per product (choose the columns layout for every combination)",
    )


def _check_header(header: list[str], declared: list[str], layout: str, campaign: Campaign, where: str) -> None:
    version = f"template '{campaign.prompt_version.template.name}' v{campaign.prompt_version.number}"
    problems = []
    for index, name in enumerate(header, start=1):
        if not name:
            problems.append(f"line 1, column {index}: the header is blank")
        elif name not in declared:
            problems.append(
                f"line 1, column {index} ({name!r}): not a variable of {version} "
                f"(its variables: {', '.join(declared) or 'none'})"
            )
        elif header.index(name) != index - 1:
            problems.append(f"line 1, column {index} ({name!r}): the header names it twice")
    if layout == "columns" and (problems or sorted(header) != sorted(declared)):
        raise LibraryFileError(
            where,
            f"field 'header' is {', '.join(header) or '(empty)'}; {version} needs exactly "
            f"{', '.join(declared) or 'no variables'} (one column per variable)",
        )
    if problems:
        raise _refuse(where, problems)
    lacking = [n for n in declared if n not in header and not campaign.variables.get(n)]
    if lacking:
        raise LibraryFileError(
            where,
            f"field 'header' does not name {', '.join(lacking)}, and the campaign has no values for "
            f"{'it' if len(lacking) == 1 else 'them'}: add {'a column' if len(lacking) == 1 else 'columns'}",
        )


def _columns(header: list[str], lines: list[Line]) -> tuple[dict[str, list[str]], list[str]]:
    values: dict[str, list[str]] = {name: [] for name in header}
    problems = []
    for line in lines:
        if len(line.cells) > len(header):
            extra = line.cells[len(header)]
            problems.append(_cell(line.number, f"#{len(header) + 1}", extra, f"the header has {len(header)} columns"))
            continue
        for name, cell in zip(header, line.cells, strict=False):
            if len(cell) > VALUE_MAX:
                problems.append(_cell(line.number, name, cell, f"{len(cell)} characters; at most {VALUE_MAX}"))
            elif cell and cell not in values[name]:
                values[name].append(cell)
    problems += [f"column '{name}' has no values" for name in header if not values[name]]
    return values, problems


def _rows(header: list[str], lines: list[Line]) -> tuple[list[tuple[str, ...]], list[str]]:
    rows: list[tuple[str, ...]] = []
    first: dict[tuple[str, ...], int] = {}
    problems = []
    for line in lines:
        cells = line.cells + ("",) * (len(header) - len(line.cells))
        bad = False
        if len(cells) > len(header):
            problems.append(
                _cell(line.number, f"#{len(header) + 1}", cells[len(header)], f"the header has {len(header)} columns")
            )
            continue
        for name, cell in zip(header, cells, strict=True):
            if not cell:
                problems.append(_cell(line.number, name, cell, "empty; every product needs each of its attributes"))
                bad = True
            elif len(cell) > VALUE_MAX:
                problems.append(_cell(line.number, name, cell, f"{len(cell)} characters; at most {VALUE_MAX}"))
                bad = True
        if bad:
            continue
        if cells in first:
            shown = ", ".join(f"{n}={v}" for n, v in zip(header, cells, strict=True))
            problems.append(f"line {line.number} repeats line {first[cells]} ({shown})")
            continue
        first[cells] = line.number
        rows.append(cells)
    return rows, problems


def matrix_parse(*, campaign: Campaign, text: str, layout: str = "auto") -> MatrixPreview:
    """Check a CSV against the campaign's template version and say what it makes; refusals name
    each bad line, column and value (at most PROBLEMS_SHOWN of them, then how many more)."""
    where = f"campaign '{campaign.name}' matrix"
    if layout not in LAYOUTS:
        raise LibraryFileError(where, f"field 'layout' must be one of {', '.join(LAYOUTS)} (got {layout!r})")
    header, lines = csv_read(text, where=where)
    declared = list(template_from_dict(campaign.prompt_version.spec).variables)
    reason = ""
    if layout == "auto":
        layout, reason = layout_detect(header, lines, declared)
    _check_header(header, declared, layout, campaign, where)
    linked: tuple[tuple[tuple[str, str], ...], ...] = ()
    if layout == "columns":
        values, problems = _columns(header, lines)
    else:
        rows, problems = _rows(header, lines)
        order = [name for name in declared if name in header]  # the rows name variables in the template's order
        linked = tuple(tuple((name, row[header.index(name)]) for name in order) for row in rows)
        values = {name: list(dict.fromkeys(row[header.index(name)] for row in rows)) for name in header}
        values.update({name: [str(v) for v in campaign.variables[name]] for name in declared if name not in header})
    if problems:
        raise _refuse(where, problems)
    preview = MatrixPreview(
        layout=layout,
        reason=reason,
        variables=tuple((name, tuple(values[name])) for name in declared),
        rows=linked,
        lines=len(lines),
        seeds=len(campaign.seeds),
    )
    if preview.variant_count > VARIANTS_MAX:
        raise LibraryFileError(
            where, f"field 'file' makes {preview.variant_count} variants; a campaign makes at most {VARIANTS_MAX}"
        )
    return preview


def campaign_variables_set(*, campaign: Campaign, preview: MatrixPreview, actor: object) -> Campaign:
    """Save the previewed values (and, in the rows layout, the rows) as the campaign's variables,
    audited by the review room in the same transaction."""
    with transaction.atomic():
        row = Campaign.objects.select_for_update().get(pk=campaign.pk)
        before, rows_before = row.variables, row.variable_rows
        row.variables = {name: list(values) for name, values in preview.variables}
        row.variable_rows = preview.row_dicts()
        row.save(update_fields=["variables", "variable_rows", "updated_at"])
        campaign_variables_saved.send(
            sender=Campaign, campaign=row, actor=actor, before=before, rows_before=rows_before
        )
    return row

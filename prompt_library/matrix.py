"""A campaign's variable values from a CSV file: the matrix import.

Two layouts: "columns" (one column per variable, its values down the column; blank cells end a
shorter column) and "rows" (one row per product with its attributes, one column per variable).
A campaign multiplies its values, so in the rows layout each variable takes the distinct values
of its column and the preview says how many variants that makes against the number of rows.
Nothing is saved by `matrix_parse`; `campaign_variables_set` saves checked values.
"""

from __future__ import annotations

import csv
import io
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
LAYOUTS = ("columns", "rows")

# Sent inside the saving transaction: (sender=Campaign, campaign=..., actor=..., before=...).
campaign_variables_saved = Signal()


@dataclass(frozen=True)
class MatrixPreview:
    """The values a CSV gives each variable, and what they make."""

    variables: tuple[tuple[str, tuple[str, ...]], ...]
    rows: int
    seeds: int

    @property
    def combinations(self) -> int:
        count = 1
        for _, values in self.variables:
            count *= len(values)
        return count

    @property
    def variant_count(self) -> int:
        return self.combinations * self.seeds


def matrix_parse(*, campaign: Campaign, text: str, layout: str) -> MatrixPreview:
    """Check a CSV against the campaign's template version; refusals name the field and value."""
    where = f"campaign '{campaign.name}' matrix"
    if layout not in LAYOUTS:
        raise LibraryFileError(where, f"field 'layout' must be 'columns' or 'rows' (got {layout!r})")
    if not isinstance(text, str) or not text.strip():
        raise LibraryFileError(where, "field 'file' is empty")
    if len(text) > CSV_MAX:
        raise LibraryFileError(where, f"field 'file' has {len(text)} characters; at most {CSV_MAX}")
    try:
        table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error as exc:
        raise LibraryFileError(where, f"field 'file' is not valid CSV: {exc}") from exc
    table = [row for row in table if any(cell.strip() for cell in row)]
    if len(table) < 2:
        raise LibraryFileError(where, "field 'file' needs a header row and at least one row of values")
    if len(table) - 1 > ROWS_MAX:
        raise LibraryFileError(where, f"field 'file' has {len(table) - 1} rows; at most {ROWS_MAX}")
    header = [cell.strip() for cell in table[0]]
    declared = list(template_from_dict(campaign.prompt_version.spec).variables)
    missing = [v for v in declared if v not in header]
    extra = [h for h in header if h not in declared]
    if missing or extra or len(set(header)) != len(header):
        raise LibraryFileError(
            where,
            f"field 'header' is {', '.join(header) or '(empty)'}; template "
            f"'{campaign.prompt_version.template.name}' v{campaign.prompt_version.number} needs exactly "
            f"{', '.join(declared) or 'no variables'}",
        )
    values: dict[str, list[str]] = {name: [] for name in header}
    for number, row in enumerate(table[1:], start=2):
        if len(row) > len(header):
            raise LibraryFileError(where, f"field 'row {number}' has {len(row)} cells; the header has {len(header)}")
        cells = [c.strip() for c in row] + [""] * (len(header) - len(row))
        for name, cell in zip(header, cells, strict=True):
            if not cell:
                if layout == "rows":
                    raise LibraryFileError(where, f"field 'row {number}.{name}' is empty")
                continue
            if len(cell) > VALUE_MAX:
                raise LibraryFileError(
                    where,
                    f"field 'row {number}.{name}' has {len(cell)} characters; at most {VALUE_MAX} ({cell[:40]!r}…)",
                )
            if cell not in values[name]:
                values[name].append(cell)
    for name in header:
        if not values[name]:
            raise LibraryFileError(where, f"field '{name}' has no values")
    preview = MatrixPreview(
        variables=tuple((name, tuple(values[name])) for name in declared),
        rows=len(table) - 1,
        seeds=len(campaign.seeds),
    )
    if preview.variant_count > VARIANTS_MAX:
        raise LibraryFileError(
            where, f"field 'file' makes {preview.variant_count} variants; a campaign makes at most {VARIANTS_MAX}"
        )
    return preview


def campaign_variables_set(*, campaign: Campaign, preview: MatrixPreview, actor: object) -> Campaign:
    """Save the previewed values as the campaign's variables (audited by the review room)."""
    with transaction.atomic():
        row = Campaign.objects.select_for_update().get(pk=campaign.pk)
        before = row.variables
        row.variables = {name: list(values) for name, values in preview.variables}
        row.save(update_fields=["variables", "updated_at"])
        campaign_variables_saved.send(sender=Campaign, campaign=row, actor=actor, before=before)
    return row

"""A campaign's variable values from a CSV (the matrix import of the prompt library's page, through
the same checks): a preview of what the file makes, and the same request with `save` to keep it."""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Path, Router, Schema
from pydantic import Field, StringConstraints

from api.auth import actor
from api.permissions import permission_require
from api.responses import ERRORS_WRITE
from api.routers.campaigns import campaign_found
from prompt_library.matrix import CSV_MAX, MatrixPreview, campaign_variables_set, matrix_parse
from review.roles import RUN

router = Router(tags=["campaigns and runs"])

CampaignName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,100}$", description="the campaign's name")]


class MatrixIn(Schema):
    csv: Annotated[str, StringConstraints(min_length=1, max_length=CSV_MAX)] = Field(
        description="the CSV text: a header row of variable names, then values"
    )
    layout: Literal["auto", "columns", "rows"] = Field(
        "auto",
        description="columns: one column per variable, every combination of the values; rows: one row per "
        "product with its attributes, those rows only (variables the header leaves out keep the campaign's "
        "values); auto: detected, and the answer says why",
    )
    save: bool = Field(False, description="false: only the preview; true: save what the preview shows")


class MatrixOut(Schema):
    campaign: str
    layout: Literal["columns", "rows"] = Field(description="the layout the file was read in")
    reason: str = Field(description="why that layout was detected (empty when it was chosen)")
    lines: int = Field(description="lines of values read")
    variables: dict[str, list[str]] = Field(description="every variable's values after the import")
    rows: list[dict[str, str]] = Field(description="rows layout: the linked values the campaign makes")
    kept: list[str] = Field(description="rows layout: variables the file leaves to the campaign's values")
    combinations: int
    seeds: int
    variants: int = Field(description="variants the campaign's next run makes: combinations x seeds")
    saved: bool


def matrix_out(campaign: str, preview: MatrixPreview, *, saved: bool) -> MatrixOut:
    return MatrixOut(
        campaign=campaign,
        layout=preview.layout,  # type: ignore[arg-type]
        reason=preview.reason,
        lines=preview.lines,
        variables={name: list(values) for name, values in preview.variables},
        rows=preview.row_dicts(),
        kept=list(preview.kept),
        combinations=preview.combinations,
        seeds=preview.seeds,
        variants=preview.variant_count,
        saved=saved,
    )


@router.post(
    "/campaigns/{name}/matrix", response={200: MatrixOut, **ERRORS_WRITE}, summary="Import variable values from CSV"
)
def campaign_matrix(request: HttpRequest, name: CampaignName, payload: MatrixIn) -> MatrixOut:
    """Check a CSV of variable values against the campaign's template version and say how many
    variants it makes; with `save`, make them the campaign's (audited). Saving the same file twice
    leaves the same values, so a retry is harmless. A refusal (422) names each bad line, column and
    value."""
    permission_require(request, RUN)  # as the library's page: operators
    campaign = campaign_found(name)
    preview = matrix_parse(campaign=campaign, text=payload.csv, layout=payload.layout)
    if payload.save:
        campaign_variables_set(campaign=campaign, preview=preview, actor=actor(request))
    return matrix_out(campaign.name, preview, saved=payload.save)

"""The prompt library: templates, their immutable versions, a new version from JSON or YAML text
(an edit is a new number), and what differs between two versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.db.models import Count, Max
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field, StringConstraints

from api.auth import actor
from api.idempotency import IdempotencyKey, idempotent
from api.pagination import Page, PageParams, keyset_page
from api.permissions import permission_require
from api.problems import ApiProblem
from api.responses import ERRORS_READ, ERRORS_WRITE
from prompt_library.authoring import TEXT_MAX, prompt_version_create, prompt_version_diff
from prompt_library.models import PromptTemplate, PromptVersion
from review.roles import RUN, VIEW

router = Router(tags=["templates"])

TemplateName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$", description="the template's name")]
Number = Annotated[int, Path(ge=1, le=1_000_000, description="the version number")]


class TemplateOut(Schema):
    name: str
    description: str
    versions: int
    latest: int | None
    created_at: datetime


class VersionOut(Schema):
    template: str
    number: int
    content_hash: str
    prompt: str
    negative_prompt: str
    model_name: str
    model_manifest_hash: str
    params: dict[str, Any]
    spec: dict[str, Any] = Field(description="the version as authored")
    parts: dict[str, Any]
    created_by: str | None
    created_at: datetime


def version_out(version: PromptVersion) -> VersionOut:
    """Needs `template` and `created_by` selected with the version."""
    return VersionOut(
        template=version.template.name,
        number=version.number,
        content_hash=version.content_hash,
        prompt=version.prompt,
        negative_prompt=version.negative_prompt,
        model_name=version.model_name,
        model_manifest_hash=version.model_manifest_hash,
        params=version.params,
        spec=version.spec,
        parts=version.parts,
        created_by=version.created_by.get_username() if version.created_by else None,
        created_at=version.created_at,
    )


def _template_out(template: PromptTemplate) -> TemplateOut:
    return TemplateOut(
        name=template.name,
        description=template.description,
        versions=template.n_versions,  # type: ignore[attr-defined]
        latest=template.latest,  # type: ignore[attr-defined]
        created_at=template.created_at,
    )


def version_found(template: str, number: int, *, field: str = "path.number") -> PromptVersion:
    version = PromptVersion.objects.select_related("template", "created_by").filter(
        template__name=template, number=number
    )
    found = version.first()
    if found is None:
        raise ApiProblem(404, "not-found", f"No version {number} of template {template!r}", field=field, value=number)
    return found


@router.get("/templates", response={200: Page[TemplateOut], **ERRORS_READ}, summary="List templates")
def templates_list(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    """Templates by name, with how many versions each has and the newest number."""
    permission_require(request, VIEW)
    qs = PromptTemplate.objects.annotate(n_versions=Count("versions"), latest=Max("versions__number"))
    return keyset_page(qs, page=page, field="name", descending=False, dated=False, item=_template_out)


class TemplateDetail(TemplateOut):
    version_list: list[VersionOut]


@router.get("/templates/{name}", response={200: TemplateDetail, **ERRORS_READ}, summary="One template")
def template_get(request: HttpRequest, name: TemplateName) -> TemplateDetail:
    """A template and every version of it, oldest first."""
    permission_require(request, VIEW)
    template = (
        PromptTemplate.objects.annotate(n_versions=Count("versions"), latest=Max("versions__number"))
        .filter(name=name)
        .first()
    )
    if template is None:
        raise ApiProblem(404, "not-found", f"No template {name!r}", field="path.name", value=name)
    versions = PromptVersion.objects.select_related("template", "created_by").filter(template=template)
    return TemplateDetail(
        **_template_out(template).model_dump(), version_list=[version_out(v) for v in versions.order_by("number")]
    )


@router.get("/templates/{name}/versions/{number}", response={200: VersionOut, **ERRORS_READ}, summary="One version")
def version_get(request: HttpRequest, name: TemplateName, number: Number) -> VersionOut:
    permission_require(request, VIEW)
    return version_out(version_found(name, number))


class VersionIn(Schema):
    format: Literal["yaml", "json"] = Field(description="the language of `text`")
    text: Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX)] = Field(
        description="the version as a library file holds it (name, prompt, variables, model, params, output)"
    )


@router.post("/templates/{name}/versions", response={201: VersionOut, **ERRORS_WRITE}, summary="New version")
def version_create(
    request: HttpRequest, name: TemplateName, payload: VersionIn, idempotency_key: str | None = IdempotencyKey
) -> Any:
    """A new version of the template (made if new) from YAML or JSON text, checked as the library
    loader checks a file. Versions are immutable: content identical to an existing version returns
    that version; anything else becomes the next number."""
    permission_require(request, RUN)  # as the library's page: operators

    def run() -> Status[VersionOut]:
        version = prompt_version_create(template=name, text=payload.text, fmt=payload.format, created_by=actor(request))
        return Status(201, version_out(version_found(name, version.number)))

    return idempotent(request, key=idempotency_key, body=payload, run=run)


class FieldChangeOut(Schema):
    field: str
    old: Any
    new: Any


class DiffOut(Schema):
    template: str
    old: int
    new: int
    changed: list[str] = Field(description="the fields that differ")
    fields: list[FieldChangeOut] = Field(description="every compared field")


class DiffQuery(Schema):
    old: int = Field(ge=1, le=1_000_000, description="the older version number")
    new: int = Field(ge=1, le=1_000_000, description="the newer version number")


@router.get("/templates/{name}/diff", response={200: DiffOut, **ERRORS_READ}, summary="Diff two versions")
def version_diff(request: HttpRequest, name: TemplateName, versions: Query[DiffQuery]) -> DiffOut:
    """Prompt, negative prompt, variables, model pin, parameters and output of two versions."""
    permission_require(request, VIEW)
    diff = prompt_version_diff(
        old=version_found(name, versions.old, field="query.old"),
        new=version_found(name, versions.new, field="query.new"),
    )
    return DiffOut(
        template=name,
        old=versions.old,
        new=versions.new,
        changed=list(diff.changed_fields),
        fields=[FieldChangeOut(field=f.field, old=f.old, new=f.new) for f in diff.fields],
    )

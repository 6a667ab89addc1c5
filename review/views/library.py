"""The prompt library pages: templates and their versions, a side-by-side diff of any two, a new
version from the browser (form or pasted YAML/JSON, checked as the library's files are), the
YAML export of a version, styles and negative presets, and a campaign's matrix import from CSV.

Reading needs the view role; writing needs the operator role (`review.run_campaign`)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from prompt_library.authoring import (
    prompt_part_create,
    prompt_version_create,
    prompt_version_diff,
    prompt_version_export,
)
from prompt_library.errors import PromptLibraryError
from prompt_library.matrix import campaign_variables_set, matrix_parse
from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from review.forms import form_problems
from review.insight import library as selectors
from review.insight.forms import DiffForm, MatrixForm, PartForm, VersionForm
from review.roles import RUN, VIEW

LAYOUT_NAMES = (
    ("auto", "detect from the file"),
    ("columns", "one column per variable (every combination)"),
    ("rows", "one row per product with its attributes (those rows only)"),
)
ROWS_SHOWN = 50  # rows of a preview on the page


def _version_or_404(template: PromptTemplate, number: int) -> PromptVersion:
    version = PromptVersion.objects.filter(template=template, number=number).select_related("template").first()
    if version is None:
        raise Http404(f"Template {template.name} has no version {number}")
    return version


@permission_required(VIEW, raise_exception=True)
@require_GET
def library_index(request: HttpRequest) -> HttpResponse:
    """Every template with its versions."""
    return render(request, "review/library/index.html", {"templates": selectors.template_list()})


@permission_required(VIEW, raise_exception=True)
@require_GET
def template_detail(request: HttpRequest, name: str) -> HttpResponse:
    """A template's versions with their full content and use, a diff picker and a contact sheet."""
    template = get_object_or_404(PromptTemplate, name=name)
    versions = selectors.template_versions(template=template)
    return render(
        request,
        "review/library/template.html",
        {"template": template, "versions": versions, "sheet": selectors.contact_sheet(template=template)},
    )


@permission_required(VIEW, raise_exception=True)
@require_GET
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """One version in full, with the prompts its campaigns resolve to before they run."""
    template = get_object_or_404(PromptTemplate, name=name)
    version = _version_or_404(template, number)
    view = next(v for v in selectors.template_versions(template=template) if v.version.pk == version.pk)
    return render(
        request,
        "review/library/version.html",
        {"template": template, "v": view, "resolved": selectors.resolved_prompts(version=version)},
    )


@permission_required(VIEW, raise_exception=True)
@require_GET
def version_export(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """The version as its library file, templates/<name>/v<N>.yaml."""
    version = _version_or_404(get_object_or_404(PromptTemplate, name=name), number)
    response = HttpResponse(prompt_version_export(version=version), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="v{version.number}.yaml"'
    return response


@permission_required(VIEW, raise_exception=True)
@require_GET
def version_diff(request: HttpRequest, name: str) -> HttpResponse:
    """Two versions side by side (?a=<number>&b=<number>), changed fields marked."""
    template = get_object_or_404(PromptTemplate, name=name)
    form = DiffForm(request.GET)
    if not form.is_valid():
        return render(
            request, "review/library/diff.html", {"template": template, "problem": form_problems(form)}, status=400
        )
    old = _version_or_404(template, form.cleaned_data["a"])
    new = _version_or_404(template, form.cleaned_data["b"])
    diff = prompt_version_diff(old=old, new=new)
    return render(request, "review/library/diff.html", {"template": template, "diff": diff})


@permission_required(RUN, raise_exception=True)
@require_http_methods(["GET", "POST"])
def version_new(request: HttpRequest) -> HttpResponse:
    """A new version from pasted YAML or JSON (GET ?template=<name>&from=<number> starts from an
    existing version's file). A refusal answers 400 naming the field and value; nothing is saved."""
    problem = ""
    if request.method == "POST":
        form = VersionForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                version = prompt_version_create(
                    template=data["template"], text=data["text"], fmt=data["fmt"], created_by=request.user
                )
            except PromptLibraryError as exc:
                problem = str(exc)
            else:
                messages.success(request, f"Saved {version.template.name} v{version.number}.")
                return redirect("review:library_version", name=version.template.name, number=version.number)
        else:
            problem = form_problems(form)
    else:
        form = VersionForm(initial=_start_from(request))
    return render(
        request, "review/library/new.html", {"form": form, "problem": problem}, status=400 if problem else 200
    )


def _start_from(request: HttpRequest) -> dict[str, str]:
    name = request.GET.get("template", "")[:100]
    number = request.GET.get("from", "")
    start = {"template": name, "fmt": "yaml"}
    if name and number.isascii() and number.isdigit() and len(number) < 10:
        version = PromptVersion.objects.filter(template__name=name, number=int(number)).first()
        if version is not None:
            start["text"] = prompt_version_export(version=version)
    return start


@permission_required(VIEW, raise_exception=True)
@require_http_methods(["GET", "POST"])
def parts(request: HttpRequest) -> HttpResponse:
    """Styles and negative presets: every version, and a form for a new one (operators)."""
    problem = ""
    form = PartForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm(RUN):
            return render(
                request, "review/error.html", {"message": "Writing parts needs the operator role."}, status=403
            )
        if form.is_valid():
            try:
                part = prompt_part_create(created_by=request.user, **form.cleaned_data)
            except PromptLibraryError as exc:
                problem = str(exc)
            else:
                messages.success(request, f"Saved {part.kind} {part.name} v{part.number}.")
                return redirect("review:library_parts")
        else:
            problem = form_problems(form)
    return render(
        request,
        "review/library/parts.html",
        {"form": form, "parts": selectors.parts_list(), "problem": problem},
        status=400 if problem else 200,
    )


@permission_required(RUN, raise_exception=True)
@require_http_methods(["GET", "POST"])
def campaign_matrix(request: HttpRequest, name: str) -> HttpResponse:
    """A campaign's variable values from a CSV (one column per variable, or one row per product
    with its attributes; detected unless chosen): a preview with the variant count, then save
    exactly what was previewed (the layout read is carried to the save)."""
    campaign = get_object_or_404(Campaign.objects.select_related("prompt_version__template"), name=name)
    context: dict[str, object] = {"campaign": campaign, "problem": ""}
    if request.method == "POST":
        form = MatrixForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                preview = matrix_parse(campaign=campaign, text=data["csv"], layout=data["layout"])
            except PromptLibraryError as exc:
                context["problem"] = str(exc)
            else:
                if data["action"] == "save":
                    campaign_variables_set(campaign=campaign, preview=preview, actor=request.user)
                    messages.success(
                        request, f"Saved {campaign.name}'s variables: {preview.variant_count} variants on its next run."
                    )
                    return redirect("review:library_matrix", name=campaign.name)
                context["preview"] = preview
                context["preview_rows"] = [[value for _, value in row] for row in preview.rows[:ROWS_SHOWN]]
                context["more_rows"] = max(0, len(preview.rows) - ROWS_SHOWN)
                context["chosen"] = data["layout"]
                form = MatrixForm(initial={"layout": preview.layout, "csv": data["csv"], "action": "save"})
        else:
            context["problem"] = form_problems(form)
        context.setdefault("chosen", request.POST.get("layout", "auto"))
    else:
        form = MatrixForm()
    context["form"] = form
    context["layouts"] = LAYOUT_NAMES
    return render(request, "review/library/matrix.html", context, status=400 if context["problem"] else 200)

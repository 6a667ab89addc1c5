"""The production dashboard: queue, approval rates with Wilson intervals, an A/B of two template
versions, rejection reasons, reviewers, time to decision and cost; every chart drawn as SVG on the
server with its table and a CSV of it, filtered by date range, campaign and template.

The figures come from summary views refreshed by `manage.py insight_refresh` (and the Refresh
button here); the page says when they were refreshed. Needs the audit permission (reviewers,
publishers, operators, admins)."""

from __future__ import annotations

import io
from collections.abc import Iterable

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from review.exports import csv_writer
from review.forms import form_problems
from review.insight.dashboard import TABLES, dashboard_get, table_get
from review.insight.forms import InsightFilterForm
from review.insight.panels import insight_available
from review.insight.refresh import insight_refresh
from review.roles import AUDIT, RUN


def _ab(form: InsightFilterForm) -> tuple[int, int, str, str] | None:
    a, b = form.cleaned_data.get("a"), form.cleaned_data.get("b")
    if a is None or b is None:
        return None
    versions = {v.pk: v for v in PromptVersion.objects.select_related("template").filter(pk__in=[a, b])}
    if a not in versions or b not in versions:
        return None
    return a, b, str(versions[a]), str(versions[b])


def _options(pairs: Iterable[tuple[int, str]], chosen: str) -> list[tuple[int, str, bool]]:
    """(value, label, selected) for a filter's <select>: compared here, once per option, rather
    than through template lookups (the page's options cost more than its cached figures)."""
    return [(pk, label, str(pk) == chosen) for pk, label in pairs]


@permission_required(AUDIT, raise_exception=True)
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard; a filter it cannot read answers 400 naming it, and no figures."""
    form = InsightFilterForm(request.GET)
    versions = [
        (pk, f"{name} v{number}")
        for pk, name, number in PromptVersion.objects.order_by("template__name", "number").values_list(
            "pk", "template__name", "number"
        )
    ]
    chosen = {name: request.GET.get(name, "") for name in ("campaign", "template", "a", "b")}
    context: dict[str, object] = {
        "form": form,
        "campaigns": _options(Campaign.objects.order_by("name").values_list("pk", "name"), chosen["campaign"]),
        "templates": _options(PromptTemplate.objects.order_by("name").values_list("pk", "name"), chosen["template"]),
        "versions_a": _options(versions, chosen["a"]),
        "versions_b": _options(versions, chosen["b"]),
        "available": insight_available(),
        "query": request.GET.urlencode(),
    }
    if not form.is_valid():
        context["problem"] = form_problems(form)
        return render(request, "review/insight.html", context, status=400)
    if context["available"]:
        context["board"] = dashboard_get(form.filters(), ab=_ab(form))
    return render(request, "review/insight.html", context)


@permission_required(AUDIT, raise_exception=True)
@require_GET
def dashboard_csv(request: HttpRequest, key: str) -> HttpResponse:
    """One chart's table as CSV, with the same filters."""
    if key not in TABLES:
        raise Http404(f"No dashboard table {key!r} (known: {', '.join(TABLES)})")
    form = InsightFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(f"Filter not understood: {form_problems(form)}\n", content_type="text/plain")
    if not insight_available():
        return HttpResponseBadRequest("The dashboard needs PostgreSQL.\n", content_type="text/plain")
    table = table_get(key, form.filters(), _ab(form))
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(table.headers)
    writer.writerows(table.rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{key}.csv"'
    return response


@permission_required(RUN, raise_exception=True)
@require_POST
def dashboard_refresh(request: HttpRequest) -> HttpResponse:
    """Refresh the summary views now (operators)."""
    seconds = insight_refresh()
    messages.success(request, f"Figures refreshed in {seconds:.1f} s.")
    return redirect("review:insight")

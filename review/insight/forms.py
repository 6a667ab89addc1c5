"""Forms of the prompt library pages and the dashboard: every value a person sends is read here."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from prompt_library.authoring import PART_MAX, TEXT_MAX
from prompt_library.matrix import CSV_MAX, LAYOUTS
from prompt_library.models import PromptPart
from review.forms import AsciiIntegerField
from review.insight.filters import InsightFilters

DAY_MIN, DAY_MAX = date(2000, 1, 1), date(2100, 12, 31)


class VersionForm(forms.Form):
    template = forms.CharField(max_length=100)
    fmt = forms.ChoiceField(choices=[("yaml", "YAML"), ("json", "JSON")], initial="yaml")
    text = forms.CharField(max_length=TEXT_MAX, widget=forms.Textarea(attrs={"rows": 22, "cols": 90}), strip=False)


class DiffForm(forms.Form):
    a = AsciiIntegerField()
    b = AsciiIntegerField()


class PartForm(forms.Form):
    kind = forms.ChoiceField(choices=PromptPart.Kind.choices)
    name = forms.CharField(max_length=100)
    text = forms.CharField(max_length=PART_MAX, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class MatrixForm(forms.Form):
    layout = forms.ChoiceField(choices=[(v, v) for v in LAYOUTS], initial="auto")
    file = forms.FileField(required=False)
    csv = forms.CharField(required=False, max_length=CSV_MAX, widget=forms.HiddenInput, strip=False)
    action = forms.ChoiceField(choices=[("preview", "Preview"), ("save", "Save")], initial="preview")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        upload = data.get("file")
        if upload is not None:
            if upload.size > CSV_MAX * 4:
                raise forms.ValidationError(f"file: {upload.size} bytes is too large (at most {CSV_MAX} characters)")
            try:
                data["csv"] = upload.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError(f"file: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        if not data.get("csv"):
            raise forms.ValidationError("file: choose a CSV file")
        return data


class InsightFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label="From")
    date_to = forms.DateField(required=False, label="To")
    campaign = AsciiIntegerField(required=False)
    template = AsciiIntegerField(required=False)
    a = AsciiIntegerField(required=False)
    b = AsciiIntegerField(required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        for name in ("date_from", "date_to"):
            day = data.get(name)
            if day is not None and not DAY_MIN <= day <= DAY_MAX:
                self.add_error(name, f"must be between {DAY_MIN} and {DAY_MAX}")
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "must not be before date_from")
        return data

    def filters(self) -> InsightFilters:
        data = self.cleaned_data
        return InsightFilters(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            campaign_id=data.get("campaign"),
            template_id=data.get("template"),
        )

"""The request pages' forms: a brief for one template version, "ask for more", and their parsing
(numbers through `review.forms.AsciiIntegerField`, never int() on raw text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms

from prompt_library.sources import SOURCE_MAX_BYTES, SOURCE_MAX_SIDE, SOURCE_MIN_SIDE
from review.forms import AsciiIntegerField
from review.requests.briefs import NOTES_MAX, TITLE_MAX, VALUES_MAX
from review.requests.selectors import TemplateCard

VALUES_TEXT_MAX = 4000


def values_split(text: str) -> list[str]:
    """One value per line; blank lines are dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


class BriefForm(forms.Form):
    """A brief for the chosen template: values for each variable (one per line, or ticked among
    its choices), variants per combination, renditions, deadline (UTC), notes for reviewers."""

    title = forms.CharField(required=False, max_length=TITLE_MAX)
    variants_per_combination = AsciiIntegerField(min_value=1, initial=2, label="Variants per combination")
    deadline = forms.DateTimeField(
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="UTC",
    )
    notes = forms.CharField(
        required=False, max_length=NOTES_MAX, widget=forms.Textarea(attrs={"rows": 3}), label="Notes for reviewers"
    )
    reference_image = forms.FileField(
        required=False,
        label="Reference image",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text=(
            f"PNG, JPEG or WebP, at most {SOURCE_MAX_BYTES // 2**20} MiB, {SOURCE_MIN_SIDE} to {SOURCE_MAX_SIDE} px "
            "a side: the variants are drawn from it (image-to-image, inpainting and image-to-video templates only)"
        ),
    )

    def __init__(self, *args: Any, card: TemplateCard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.card = card
        for name in card.variables:
            field_name = f"var_{name}"
            if name in card.choices:
                self.fields[field_name] = forms.MultipleChoiceField(
                    label=name,
                    choices=[(c, c) for c in card.choices[name]],
                    widget=forms.CheckboxSelectMultiple(attrs={"data-variable": name}),
                )
            else:
                self.fields[field_name] = forms.CharField(
                    label=name,
                    max_length=VALUES_TEXT_MAX,
                    widget=forms.Textarea(attrs={"rows": 3, "data-variable": name, "list": f"suggest-{name}"}),
                    help_text=f"one value per line (at most {VALUES_MAX})",
                )
        self.fields["renditions"] = forms.MultipleChoiceField(
            choices=[(r, r) for r in card.renditions],
            initial=list(card.renditions),
            widget=forms.CheckboxSelectMultiple,
        )
        self.order_fields(["title", *[f"var_{n}" for n in card.variables], "variants_per_combination"])

    def variable_fields(self) -> list[forms.BoundField]:
        return [self[f"var_{name}"] for name in self.card.variables]

    def values(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in self.card.variables:
            given = self.cleaned_data[f"var_{name}"]
            out[name] = list(given) if isinstance(given, list) else values_split(given)
        return out

    def reference(self) -> tuple[bytes | None, str]:
        """The uploaded reference image's bytes and file name (None when none was given); one
        larger than a source image may be is not read whole (its first bytes past the limit
        are enough for the brief check to refuse it by size)."""
        upload = self.cleaned_data.get("reference_image")
        if not upload:
            return None, ""
        return upload.read(SOURCE_MAX_BYTES + 1), str(upload.name or "")

    def clean_deadline(self) -> datetime | None:
        value: datetime | None = self.cleaned_data.get("deadline")
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class MoreForm(forms.Form):
    """Ask for more: new seeds of every combination, and/or new values of one variable."""

    more_seeds = AsciiIntegerField(required=False, min_value=0, initial=1, label="More variants per combination")
    variable = forms.CharField(required=False, max_length=100)
    new_values = forms.CharField(required=False, max_length=VALUES_TEXT_MAX, widget=forms.Textarea(attrs={"rows": 2}))

    def values(self) -> dict[str, list[str]]:
        name = self.cleaned_data.get("variable") or ""
        new = values_split(self.cleaned_data.get("new_values") or "")
        return {name: new} if name and new else {}

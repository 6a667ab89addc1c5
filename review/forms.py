"""The dashboard's forms: every value a person sends (a POST field, a GET filter) is parsed here
and nowhere else, so a view never calls int() on raw text.

Numbers are read as ASCII digits only. Python's int() and str.isdigit() accept far more: int("١")
(ARABIC-INDIC DIGIT ONE) is 1, "²".isdigit() is true but int("²") fails, and int() refuses more
than 4,300 digits. A serial or a page number is 1 to 18 digits 0-9 (18 fit PostgreSQL's bigint),
refused otherwise with a message naming the field and the value (`form_problems`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.validators import RegexValidator

from prompt_library.selectors import VALUE_MAX
from review.audit import audit_action_current
from review.models import ReviewDecision
from review.services.comments import COMMENT_MAX
from review.states import AssetState

DIGITS_MAX = 18  # 10**18 - 1 fits a bigint (and Django's BigAutoField serials)
BULK_MAX = 500  # serials in one bulk decision: a grid page holds 60
ascii_digits = RegexValidator(
    rf"^[0-9]{{1,{DIGITS_MAX}}}\Z",
    message=f"must be a whole number written with the digits 0-9 (at most {DIGITS_MAX} of them)",
    code="invalid",
)
SHOWN_MAX = 40  # characters of a refused value quoted back in a message


class AsciiIntegerField(forms.IntegerField):
    """A whole number written with the ASCII digits 0-9 alone (surrounding spaces are dropped):
    never a sign, a decimal point, an underscore or a digit of another script."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if not text:
            return None
        ascii_digits(text)
        return int(text)


class SerialListField(forms.Field):
    """Asset serials, one per repeated field (the grid's checkboxes), each read like
    `AsciiIntegerField`; at most `BULK_MAX` of them."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "select at least one asset first",
        "invalid": f"must each be an asset serial written with the digits 0-9 (at most {DIGITS_MAX} of them)",
        "too_many": "at most %(limit)d assets at once",
    }

    def to_python(self, value: Any) -> list[int]:
        if value in self.empty_values:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        texts = [str(v).strip() for v in values]
        if any(not _is_ascii_number(t) for t in texts):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if len(texts) > BULK_MAX:
            raise forms.ValidationError(self.error_messages["too_many"], code="too_many", params={"limit": BULK_MAX})
        return [int(t) for t in texts]


def _is_ascii_number(text: str) -> bool:
    try:
        ascii_digits(text)
    except forms.ValidationError:
        return False
    return True


def _shown(value: object) -> str:
    """A refused value as a message quotes it: repr() (a NUL byte shows as \\x00), cut short."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = list(value)
        if len(value) == 1:
            value = value[0]
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else f"{text[: SHOWN_MAX - 1]}…"


def form_problems(form: forms.Form) -> str:
    """A refused form's problems in one line, each naming the field and the value sent:
    "page '²': must be a whole number written with the digits 0-9 (at most 18 of them)"."""
    problems = [str(e) for e in form.non_field_errors()]
    for name, errors in form.errors.items():
        if name == NON_FIELD_ERRORS:
            continue
        data = form.data
        sent = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
        shown = "(nothing)" if sent in (None, "", []) else _shown(sent)
        problems.append(f"{name} {shown}: {' '.join(str(e).rstrip('.') for e in errors)}")
    return "; ".join(problems)


class ApproveForm(forms.Form):
    comment = forms.CharField(required=False, max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 2}))


class RejectForm(forms.Form):
    # No reason is pre-selected: a rejection names its reason on purpose, or is refused.
    reason = forms.ChoiceField(choices=[("", "Choose a reason…"), *ReviewDecision.Reason.choices])
    comment = forms.CharField(required=False, max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 2}))


class BulkDecisionForm(forms.Form):
    """Approve or reject the selected assets of the grid (`serials`, one per checkbox);
    rejecting needs a reason."""

    decision = forms.ChoiceField(choices=ReviewDecision.Decision.choices)
    reason = forms.ChoiceField(choices=[("", "Reason…"), *ReviewDecision.Reason.choices], required=False)
    comment = forms.CharField(required=False, max_length=COMMENT_MAX)
    serials = SerialListField()

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("decision") == ReviewDecision.Decision.REJECT and not data.get("reason"):
            raise forms.ValidationError("choose a reason to reject the selected assets")
        return data


class CommentForm(forms.Form):
    text = forms.CharField(
        max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Add a comment"})
    )


class RevokeForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"placeholder": "Why it is withdrawn"}))


class RegenerateForm(forms.Form):
    """New variants of a rejected asset: how many, and the variable values (prefilled with the
    asset's own; change one to edit it). The count is one of the offered choices, compared as
    text ("4"), so no other spelling of a number gets in."""

    count = forms.TypedChoiceField(choices=[(n, str(n)) for n in (1, 2, 4, 8)], coerce=int, initial=4)

    def __init__(self, *args: object, variables: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.variable_names = sorted(variables)
        for name in self.variable_names:
            self.fields[f"var_{name}"] = forms.CharField(
                label=name, max_length=VALUE_MAX, initial=variables[name], strip=True
            )

    def variables(self) -> dict[str, str]:
        return {name: self.cleaned_data[f"var_{name}"] for name in self.variable_names}


class QueueFilterForm(forms.Form):
    """The queue's tab (a state) and page."""

    state = forms.ChoiceField(choices=AssetState.choices, required=False)
    page = AsciiIntegerField(required=False, min_value=1)
    flagged = forms.BooleanField(required=False)  # only what the safety classifier flagged


class AuditFilterForm(forms.Form):
    """The audit log's filters and page."""

    action = forms.CharField(required=False, max_length=40)
    actor = forms.CharField(required=False, max_length=150)
    serial = AsciiIntegerField(required=False, min_value=1)
    page = AsciiIntegerField(required=False, min_value=1)

    def clean_action(self) -> str:
        """An older spelling ("approve", from a bookmarked link) filters as today's name."""
        return audit_action_current(self.cleaned_data["action"])

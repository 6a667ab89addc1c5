from __future__ import annotations

from django import forms

from prompt_library.selectors import VALUE_MAX
from review.audit import audit_action_current
from review.models import ReviewDecision
from review.services.comments import COMMENT_MAX


class ApproveForm(forms.Form):
    comment = forms.CharField(required=False, max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 2}))


class RejectForm(forms.Form):
    reason = forms.ChoiceField(choices=ReviewDecision.Reason.choices)
    comment = forms.CharField(required=False, max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 2}))


class BulkDecisionForm(forms.Form):
    """Approve or reject the selected assets of the grid; rejecting needs a reason."""

    decision = forms.ChoiceField(choices=ReviewDecision.Decision.choices)
    reason = forms.ChoiceField(choices=[("", "Reason…"), *ReviewDecision.Reason.choices], required=False)
    comment = forms.CharField(required=False, max_length=COMMENT_MAX)
    serials = forms.CharField(required=False)  # filled from the checkboxes by the view

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
    asset's own; change one to edit it)."""

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


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=40)
    actor = forms.CharField(required=False, max_length=150)
    serial = forms.IntegerField(required=False, min_value=1)

    def clean_action(self) -> str:
        """An older spelling ("approve", from a bookmarked link) filters as today's name."""
        return audit_action_current(self.cleaned_data["action"])

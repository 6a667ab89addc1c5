from __future__ import annotations

from django import forms

from review.models import ReviewDecision


class ApproveForm(forms.Form):
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class RejectForm(forms.Form):
    reason = forms.ChoiceField(choices=ReviewDecision.Reason.choices)
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

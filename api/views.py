"""The API tokens page: a user makes, sees and revokes their own personal API tokens. A new
token is shown once, on the page that made it."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from api.models import ApiToken
from api.tokens import DAYS_MAX, NAME_MAX, TokenInputError, api_token_create, api_token_list, api_token_revoke
from review.forms import AsciiIntegerField, form_problems


class TokenForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX, widget=forms.TextInput(attrs={"placeholder": "e.g. dam-sync"}))
    days = AsciiIntegerField(required=False, min_value=1, max_value=DAYS_MAX, help_text="empty: never expires")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """The user's tokens, and the form that makes one (its secret shown once, on this answer)."""
    user: User = request.user  # type: ignore[assignment]
    form = TokenForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created = api_token_create(user=user, name=form.cleaned_data["name"], days=form.cleaned_data["days"])
            except TokenInputError as exc:
                messages.error(request, f"No token made: {exc}")
                status = 400
            else:
                form = TokenForm()
        else:
            messages.error(request, f"No token made: {form_problems(form)}")
            status = 400
    return render(
        request,
        "api/tokens.html",
        {"form": form, "created": created, "tokens": api_token_list(user=user)},
        status=status,
    )


@require_POST
def token_revoke(request: HttpRequest, prefix: str) -> HttpResponse:
    """Revoke one of the user's tokens."""
    user: User = request.user  # type: ignore[assignment]
    token = ApiToken.objects.filter(prefix=prefix, user=user).first()
    if token is None:
        raise Http404(f"No token {prefix}")
    api_token_revoke(token=token, user=user)
    messages.success(request, f"Revoked token {token.name} ({token.prefix}).")
    return redirect("api_tokens")

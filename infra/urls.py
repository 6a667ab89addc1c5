"""URL routes: the review dashboard, login, the verify API and Django admin."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.decorators.cache import never_cache

from api import views as api_views
from api.urls import api_urls
from review.views import verify as verify_views

urlpatterns = [
    path(
        "login/",
        login_not_required(never_cache(auth_views.LoginView.as_view(template_name="review/login.html"))),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/verify", verify_views.verify_api, name="api_verify"),
    path("api/v1/", api_urls()),
    path("tokens/", api_views.tokens, name="api_tokens"),
    path("tokens/<str:prefix>/revoke", api_views.token_revoke, name="api_token_revoke"),
    path("", include("review.urls")),
]

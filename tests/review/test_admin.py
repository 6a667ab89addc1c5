"""The admin shows every model and changes no asset: assets come from the pipeline, and an
asset's record is kept."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from review.models import Asset
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_admin_lists_every_model(client: Client) -> None:
    client.force_login(make_user(username="admin", is_staff=True, is_superuser=True))
    html = client.get(reverse("admin:index")).content.decode()
    for model in [
        "assets",
        "audit events",
        "publications",
        "review decisions",
        "campaigns",
        "prompt templates",
        "prompt versions",
    ]:
        assert model in html.lower()


def test_the_admin_cannot_delete_or_add_assets(reviewable_assets: list[Asset]) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-for-tests"))
    asset = reviewable_assets[0]
    assert client.get(f"/admin/review/asset/{asset.pk}/delete/").status_code == 403
    assert client.get("/admin/review/asset/add/").status_code == 403
    assert Asset.objects.filter(pk=asset.pk).exists()

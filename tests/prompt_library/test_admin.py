"""The prompt library in the admin is shown, never written: versions and campaigns come only
from the services, so no admin page adds, changes or deletes them (and none answers 500)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from prompt_library.services import library_load
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client, library_dir: Path) -> Client:
    library_load()
    client.force_login(make_user(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", ["promptversion", "campaign", "prompttemplate"])
def test_the_admin_cannot_add_a_library_row(admin_client: Client, model: str) -> None:
    before = (PromptVersion.objects.count(), Campaign.objects.count(), PromptTemplate.objects.count())
    assert admin_client.get(f"/admin/prompt_library/{model}/add/").status_code == 403
    response = admin_client.post(f"/admin/prompt_library/{model}/add/", {"number": "1", "name": "x", "prompt": "x"})
    assert response.status_code == 403
    assert (PromptVersion.objects.count(), Campaign.objects.count(), PromptTemplate.objects.count()) == before


def test_a_version_and_a_campaign_cannot_be_deleted_or_changed_in_the_admin(admin_client: Client) -> None:
    campaign = Campaign.objects.get(name="demo-spring")
    version = campaign.prompt_version
    for model, pk in (("campaign", campaign.pk), ("promptversion", version.pk)):
        assert admin_client.post(f"/admin/prompt_library/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
        page = admin_client.get(f"/admin/prompt_library/{model}/{pk}/change/")
        assert page.status_code == 200  # shown read-only
        assert 'name="_save"' not in page.content.decode()
    changed = admin_client.post(
        f"/admin/prompt_library/campaign/{campaign.pk}/change/", {"name": campaign.name, "seeds": "[99]"}
    )
    assert changed.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).seeds == [1, 2]
    assert PromptVersion.objects.filter(pk=version.pk).exists()
    bulk = admin_client.post(
        "/admin/prompt_library/promptversion/",
        {"action": "delete_selected", "_selected_action": [version.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302, 403)
    assert PromptVersion.objects.filter(pk=version.pk).exists()

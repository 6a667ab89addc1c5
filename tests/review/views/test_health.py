"""The health page: the last sweeps' reports (read from their audit events), the counts that
stand now, and who may read it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import DjangoAssertNumQueries

from review.models import Asset, Publication
from review.services.health import sweep_record
from review.states import AssetState
from tests.factories import AssetFactory, make_user

pytestmark = pytest.mark.django_db

RUN_ID = "0b9c1f5e-4a51-4a0e-9f3c-1d2e3f4a5b6c"


def report(**overrides: Any) -> dict[str, Any]:
    """A sweep's report as `infra.sweep.SweepReport.detail` writes it."""
    detail: dict[str, Any] = {
        "started_at": "2026-01-02T03:04:05+00:00",
        "seconds": 0.42,
        "dry_run": False,
        "files": {
            "removed": ["masters/ab/abc.png", "thumbnails/ab/abc.jpg"],
            "removed_count": 2,
            "temporary": ["masters/cd/.cde.png.x1.part"],
            "temporary_count": 1,
            "freed_bytes": 123456,
            "referenced": 40,
            "young": 3,
            "busy": 0,
            "dry_run": False,
        },
        "runs": {
            "running": 2,
            "crashed": [
                {
                    "id": RUN_ID,
                    "name": "amber-otter",
                    "flow": "campaign-run",
                    "reason": "its process 4242 on gpu-1 is gone",
                    "marked": True,
                }
            ],
            "dry_run": False,
        },
        "publications": {"rolled_back": [7, 8], "assets": [3], "removed": ["a.png"], "busy": [], "failed": []},
        "errors": {},
    }
    detail.update(overrides)
    return detail


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(make_user(username="ada", roles=("admin",)))
    return client


def test_the_health_page_shows_the_last_sweep_and_the_counts(admin_client: Client) -> None:
    sweep_record(detail=report(files=None, runs=None, errors={"runs": "ConnectionError: no Prefect"}))
    sweep_record(detail=report())
    stale: Asset = AssetFactory.create(state=AssetState.PENDING)
    Asset.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=2))
    AssetFactory.create(state=AssetState.PENDING)  # registered a minute ago: a run may be making it
    AssetFactory.create_batch(3, state=AssetState.FAILED)
    approved: Asset = AssetFactory.create(state=AssetState.APPROVED)
    Publication.objects.create(
        asset=approved,
        rendition="web",
        path="web/x.png",
        mime="image/png",
        width=1,
        height=1,
        sha256="0" * 64,
        size=1,
        published_by=make_user(username="pat"),
        state=Publication.State.WRITING,
    )

    response = admin_client.get(reverse("review:health"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<dd id="pending-stale"><a href="/?state=pending">1</a></dd>' in html
    assert '<dd id="failed"><a href="/?state=failed">3</a></dd>' in html
    assert '<dd id="writing">1 (the oldest since' in html
    assert "2 no asset referenced, 1 partial writes (120.6\xa0KB)" in html
    assert "masters/ab/abc.png" in html and "masters/cd/.cde.png.x1.part" in html
    assert "its process 4242 on gpu-1 is gone" in html and RUN_ID in html
    assert "2 rolled back (1 asset, 1 file removed)" in html
    # The sweep before it, with the part that failed, in the list of sweeps.
    assert html.count("<tr><td><time") == 2
    assert "<td>runs</td>" in html


def test_before_any_sweep_the_page_says_how_to_run_one(admin_client: Client) -> None:
    html = admin_client.get(reverse("review:health")).content.decode()
    assert 'id="no-sweep"' in html and "manage.py sweep" in html


def test_the_health_page_query_count_is_fixed(
    admin_client: Client, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    for _ in range(12):
        sweep_record(detail=report())
    with django_assert_max_num_queries(10):
        assert admin_client.get(reverse("review:health")).status_code == 200


@pytest.mark.parametrize(
    ("roles", "staff", "status"),
    [
        (("reviewer",), False, 403),
        (("reviewer", "publisher"), False, 403),
        (("requester",), False, 403),
        (("admin",), False, 200),
        ((), True, 200),
    ],
)
def test_only_staff_and_admins_may_read_the_health_page(
    client: Client, roles: tuple[str, ...], staff: bool, status: int
) -> None:
    client.force_login(make_user(roles=roles, is_staff=staff))
    response = client.get(reverse("review:health"))
    assert response.status_code == status
    # The navigation links the page for exactly those who may read it.
    page = response if status == 200 else client.get(reverse("review:queue"))
    assert (f'href="{reverse("review:health")}"' in page.content.decode()) == (status == 200)


def test_an_anonymous_visitor_is_sent_to_sign_in(client: Client) -> None:
    response = client.get(reverse("review:health"))
    assert response.status_code == 302 and "login" in response["Location"]

"""The queue, an asset's page, its siblings side by side, and its files (whole or by byte range):
who may see them, what they show, and how many queries they cost."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import DjangoAssertNumQueries

from provenance.storage import LocalStorage
from review.models import Asset
from review.states import AssetState
from tests.factories import AssetFactory, make_user
from tests.fixture_types import SettingsWrapper
from tests.review.helpers import body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["review:queue", "review:asset", "review:file"])
def test_anonymous_visitors_are_sent_to_the_login_page(client: Client, name: str) -> None:
    routes: dict[str, list[object]] = {"review:queue": [], "review:asset": [1], "review:file": [1, "master"]}
    args = routes[name]
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_is_open_and_login_works(client: Client) -> None:
    make_user(username="lee")
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "lee", "password": "pw-for-tests"})
    assert response.status_code == 302 and response["Location"] == reverse("review:queue")


def test_queue_shows_thumbnails_of_assets_in_review(reviewer_client: Client, reviewable_assets: list[Asset]) -> None:
    response = reviewer_client.get(reverse("review:queue"))
    html = response.content.decode()
    assert response.status_code == 200
    for asset in reviewable_assets:
        assert reverse("review:file", args=[asset.pk, "thumbnail"]) in html
    assert html.count('class="tile ') == len(reviewable_assets)


def test_queue_query_count_does_not_grow_with_rows(
    reviewer_client: Client,
    reviewable_assets: list[Asset],
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    with django_assert_max_num_queries(6):
        assert reviewer_client.get(reverse("review:queue")).status_code == 200


def test_thumbnail_and_master_are_served_to_a_reviewer(reviewer_client: Client, reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    thumb = reviewer_client.get(reverse("review:file", args=[asset.pk, "thumbnail"]))
    master = reviewer_client.get(reverse("review:file", args=[asset.pk, "master"]))
    assert thumb["Content-Type"] == "image/jpeg" and body(thumb)[:2] == b"\xff\xd8"
    assert master["Content-Type"] == "image/png" and body(master)[:4] == b"\x89PNG"


def test_asset_page_shows_prompt_model_c2pa_state_and_watermark(
    reviewer_client: Client, reviewable_assets: list[Asset]
) -> None:
    asset = reviewable_assets[0]
    html = reviewer_client.get(reverse("review:asset", args=[asset.pk])).content.decode()
    assert asset.prompt in html
    assert asset.model_name in html
    assert "c2pa-trusted" in html
    assert f"mark id {asset.mark_id} ✓" in html
    assert "registered" in html and "submitted" in html


def test_prompt_text_is_escaped(reviewer_client: Client, reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    Asset.objects.filter(pk=asset.pk).update(prompt="<script>alert(1)</script>")
    html = reviewer_client.get(reverse("review:asset", args=[asset.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_user_without_a_role_sees_nothing(client: Client, reviewable_assets: list[Asset]) -> None:
    client.force_login(make_user(roles=()))
    assert client.get(reverse("review:queue")).status_code == 403
    assert client.get(reverse("review:asset", args=[reviewable_assets[0].pk])).status_code == 403
    assert client.get(reverse("review:file", args=[reviewable_assets[0].pk, "master"])).status_code == 403


def test_compare_shows_every_seed_of_one_prompt_and_nothing_else(
    reviewer_client: Client, reviewable_assets: list[Asset], django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    first = reviewable_assets[0]  # the demo's first two assets share a prompt (seeds 1 and 2)
    siblings = [a for a in reviewable_assets if a.prompt == first.prompt]
    assert len(siblings) == 2
    with django_assert_max_num_queries(6):
        html = reviewer_client.get(reverse("review:compare", args=[first.pk])).content.decode()
    assert html.count('class="tile ') == 2
    for asset in reviewable_assets:
        assert (f'data-serial="{asset.pk}"' in html) == (asset in siblings)


def test_asset_page_query_count_does_not_grow_with_its_history(
    reviewer_client: Client, reviewable_assets: list[Asset], django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    from review.services import asset_comment

    asset = reviewable_assets[0]
    for i in range(15):
        asset_comment(asset=asset, user=make_user(), text=f"note {i}")
    with django_assert_max_num_queries(12):
        assert reviewer_client.get(reverse("review:asset", args=[asset.pk])).status_code == 200


def test_every_state_a_person_can_find_an_asset_in_has_a_tab(reviewer_client: Client) -> None:
    from review.selectors import QUEUE_STATES

    assert set(QUEUE_STATES) == set(AssetState.values) - {AssetState.GENERATED}
    html = reviewer_client.get(reverse("review:queue")).content.decode()
    for state in QUEUE_STATES:
        assert f'data-state="{state}"' in html


def _queries(client: Client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("state", [AssetState.IN_REVIEW, AssetState.PUBLISHED])
def test_the_queue_and_asset_pages_use_as_many_queries_for_forty_rows_as_for_two(
    reviewer_client: Client, state: str
) -> None:
    from tests.factories import AssetFactory

    first = AssetFactory.create_batch(2, state=state)
    url = f"{reverse('review:queue')}?state={state}"
    few = _queries(reviewer_client, url)
    page_few = _queries(reviewer_client, reverse("review:asset", args=[first[0].pk]))
    more = AssetFactory.create_batch(40, state=state)
    for asset in [first[0], *more[:5]]:
        asset.events.create(action="commented", detail={"comment": "looks fine"})
    assert _queries(reviewer_client, url) == few
    assert _queries(reviewer_client, reverse("review:asset", args=[first[0].pk])) == page_few


def test_the_queue_pages_through_assets_in_claim_order(
    reviewer_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from review.views import queue
    from tests.factories import AssetFactory

    monkeypatch.setattr(queue, "PAGE_SIZE", 2)
    assets = AssetFactory.create_batch(5, state=AssetState.IN_REVIEW)
    seen = []
    for page in (1, 2, 3):
        html = reviewer_client.get(f"{reverse('review:queue')}?state=in_review&page={page}").content.decode()
        seen += [a.pk for a in assets if f'data-serial="{a.pk}"' in html]
        assert ('rel="next"' in html) == (page < 3)
        assert ('rel="prev"' in html) == (page > 1)
    assert seen == [a.pk for a in assets]
    html = reviewer_client.get(f"{reverse('review:queue')}?state=in_review&page=oops").content.decode()
    assert f'data-serial="{assets[0].pk}"' in html


# --- clips -----------------------------------------------------------------------------------


def test_a_clips_page_plays_it_with_its_poster_and_reads_its_credentials_and_watermark(
    reviewer_client: Client, reviewable_clip: Asset
) -> None:
    asset = reviewable_clip
    html = reviewer_client.get(reverse("review:asset", args=[asset.pk])).content.decode()
    master = reverse("review:file", args=[asset.pk, "master"])
    poster = reverse("review:file", args=[asset.pk, "thumbnail"])
    assert f'<video id="player" src="{master}" poster="{poster}"' in html
    for attribute in ("controls", "loop", "muted", "playsinline", f'aria-label="{asset.alt_text}"'):
        assert attribute in html.split('<video id="player"')[1].split(">")[0]
    assert f"<figcaption>{asset.alt_text}" in html
    assert "<img src=" + f'"{master}"' not in html
    assert "c2pa-trusted" in html  # the MP4's own credentials
    assert f"mark id {asset.mark_id} ✓" in html  # read over the decoded frames
    assert "1.0 s · 8 frames at 8 fps" in html


def test_the_queue_marks_a_clip_with_its_duration_and_compare_plays_it(
    reviewer_client: Client, reviewable_clip: Asset
) -> None:
    html = reviewer_client.get(reverse("review:queue")).content.decode()
    tile = html.split(f'data-serial="{reviewable_clip.pk}"')[1].split("</li>")[0]
    assert reverse("review:file", args=[reviewable_clip.pk, "thumbnail"]) in tile
    assert 'class="badge video"' in tile and "video · 1.0 s" in tile
    html = reviewer_client.get(reverse("review:compare", args=[reviewable_clip.pk])).content.decode()
    assert f'<video src="{reverse("review:file", args=[reviewable_clip.pk, "master"])}"' in html


def test_a_clip_is_served_as_mp4_whole_or_by_byte_range(reviewer_client: Client, reviewable_clip: Asset) -> None:
    url = reverse("review:file", args=[reviewable_clip.pk, "master"])
    whole = reviewer_client.get(url)
    data = body(whole)
    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4" and whole["Accept-Ranges"] == "bytes"
    assert data[4:8] == b"ftyp" and len(data) == reviewable_clip.file_size
    size = len(data)

    part = reviewer_client.get(url, headers={"Range": "bytes=100-299"})
    assert part.status_code == 206 and part["Content-Type"] == "video/mp4"
    assert part["Content-Range"] == f"bytes 100-299/{size}" and part["Content-Length"] == "200"
    assert body(part) == data[100:300]
    rest = reviewer_client.get(url, headers={"Range": "bytes=100-"})
    assert rest.status_code == 206 and body(rest) == data[100:]
    tail = reviewer_client.get(url, headers={"Range": "bytes=-50"})
    assert tail["Content-Range"] == f"bytes {size - 50}-{size - 1}/{size}" and body(tail) == data[-50:]
    beyond = reviewer_client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{size}"
    # Several ranges at once are not something players ask for: the whole file answers them.
    several = reviewer_client.get(url, headers={"Range": "bytes=0-1,5-9"})
    assert several.status_code == 200 and body(several) == data


# --- input it cannot read, files missing from storage -----------------------------------------


@pytest.mark.parametrize("page", ["١", "²", "0", "-1", "9" * 19, "9" * 5000, "1.5", "2\x00"])
def test_a_page_number_not_written_in_ascii_digits_is_refused_naming_it(reviewer_client: Client, page: str) -> None:
    AssetFactory.create()
    response = reviewer_client.get(reverse("review:queue"), {"page": page})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="filter-problems"' in html and "Not understood: page" in html
    assert repr(page)[1:-1][:18] in html
    assert "Showing page 1 of in review" in html


def test_an_unknown_state_is_refused_naming_it(reviewer_client: Client) -> None:
    response = reviewer_client.get(reverse("review:queue"), {"state": "lost"})
    assert response.status_code == 400 and "state &#x27;lost&#x27;" in response.content.decode()


def test_a_page_number_past_the_last_page_is_not_refused(reviewer_client: Client) -> None:
    response = reviewer_client.get(reverse("review:queue"), {"page": "9" * 18})
    assert response.status_code == 200 and 'id="filter-problems"' not in response.content.decode()


@pytest.fixture
def stored_files_gone(greenlight_settings: SettingsWrapper) -> Asset:
    """An asset in review whose master and thumbnail were recorded but are not in storage."""
    asset: Asset = AssetFactory.create(file_path="masters/gone.png", thumb_path="thumbs/gone.jpg", mime="image/png")
    return asset


def test_an_asset_whose_master_is_missing_from_storage_is_shown_as_such_and_logged(
    reviewer_client: Client, stored_files_gone: Asset, caplog: pytest.LogCaptureFixture
) -> None:
    asset = stored_files_gone
    with caplog.at_level(logging.WARNING, logger="greenlight.review"):
        response = reviewer_client.get(reverse("review:asset", args=[asset.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="master-problem"' in html and "master missing from storage" in html
    assert "thumbnail missing from storage" in html
    assert reverse("review:file", args=[asset.pk, "master"]) not in html  # no broken image
    assert asset.prompt in html and 'id="approve"' in html  # the rest of the page, and the decision
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"asset {asset.pk}: its master 'masters/gone.png' is missing from storage" in logged
    assert f"asset {asset.pk}: its thumbnail 'thumbs/gone.jpg' is missing from storage" in logged


@pytest.mark.parametrize("kind", ["master", "thumbnail"])
def test_a_file_missing_from_storage_answers_404(reviewer_client: Client, stored_files_gone: Asset, kind: str) -> None:
    response = reviewer_client.get(reverse("review:file", args=[stored_files_gone.pk, kind]))
    assert response.status_code == 404


def test_a_stored_path_outside_the_storage_root_answers_404_and_is_shown_as_such(
    reviewer_client: Client, greenlight_settings: SettingsWrapper
) -> None:
    asset = AssetFactory.create(file_path="../../etc/passwd", mime="image/png")
    assert reviewer_client.get(reverse("review:file", args=[asset.pk, "master"])).status_code == 404
    html = reviewer_client.get(reverse("review:asset", args=[asset.pk])).content.decode()
    assert "master outside the storage root" in html


@pytest.fixture
def stored_master(greenlight_settings: SettingsWrapper) -> tuple[Asset, bytes]:
    """An asset whose master is a stored file of 1,000 known bytes."""
    data = bytes(range(256)) * 3 + bytes(232)
    LocalStorage(Path(greenlight_settings.GREENLIGHT_STORAGE_ROOT)).write("masters/known.bin", data)
    asset: Asset = AssetFactory.create(file_path="masters/known.bin", mime="image/png")
    return asset, data


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=" + "9" * 5000 + "-", id="past-int-digit-limit"),  # int() raised: was a 500
        pytest.param("bytes=-" + "9" * 5000, id="suffix-past-int-digit-limit"),
        pytest.param("bytes=١٠-", id="arabic-indic"),  # int() reads it: was a 206 from byte 10
        pytest.param("bytes=1٠-2٠", id="mixed-digits"),
        pytest.param("bytes=10-20\n", id="trailing-newline"),
    ],
)
def test_a_range_not_written_in_ascii_digits_gets_the_whole_file(
    reviewer_client: Client, stored_master: tuple[Asset, bytes], header: str
) -> None:
    asset, data = stored_master
    response = reviewer_client.get(reverse("review:file", args=[asset.pk, "master"]), headers={"Range": header})
    assert response.status_code == 200 and body(response) == data

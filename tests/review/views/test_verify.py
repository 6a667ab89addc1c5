"""The verify page and API: login and permission, CSRF, reports, every kind of bad input
answered with a clear 4xx within 2 s, and bounded work: a few verifies at once (429 beyond), each
within a time budget (503 past it)."""

from __future__ import annotations

import http.client
import io
import json
import struct
import time
import zlib
from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image
from pytest_django.live_server_helper import LiveServer

from provenance.config import provenance_config_from_settings
from provenance.mp4 import mp4_encode
from provenance.storage import LocalStorage
from review.models import Asset
from review.verify import verify_slot
from review.verify.limits import verify_slots_in_use
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper
from tests.provenance.samples import product_shot, unknown_codec
from tests.review.verify.transplant import png_manifest_transplant

pytestmark = pytest.mark.django_db

API = "/api/verify"
BAD_INPUT_SECONDS = 2.0


def upload(data: bytes, name: str) -> dict[str, SimpleUploadedFile]:
    return {"file": SimpleUploadedFile(name, data, content_type="application/octet-stream")}


def encoded(fmt: str, size: tuple[int, int] = (512, 512)) -> bytes:
    buffer = io.BytesIO()
    product_shot(5).resize(size).save(buffer, fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header claims width x height RGB pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def viewer(client: Client, greenlight_settings: SettingsWrapper) -> Client:
    client.force_login(make_user(username="vic", roles=("reviewer",)))
    return client


# --- Who may verify ---------------------------------------------------------------------


def test_anonymous_visitors_get_the_login_page_or_401(client: Client) -> None:
    page = client.get(reverse("review:verify"))
    api = client.post(API, upload(b"x", "x.png"))

    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    assert api.status_code == 401 and api.json()["error"] == "unauthenticated"


def test_users_without_the_view_permission_are_refused(client: Client, greenlight_settings: SettingsWrapper) -> None:
    client.force_login(make_user(username="nobody", roles=()))

    assert client.get(reverse("review:verify")).status_code == 403
    api = client.post(API, upload(encoded("PNG"), "a.png"))
    assert api.status_code == 403 and api.json()["error"] == "forbidden"


def test_the_page_is_in_the_navigation_and_has_a_csrf_protected_upload_form(viewer: Client) -> None:
    html = viewer.get(reverse("review:verify")).content.decode()

    assert f'<a href="{reverse("review:verify")}">Verify a file</a>' in html
    assert 'enctype="multipart/form-data"' in html and 'name="csrfmiddlewaretoken"' in html
    assert 'type="file" name="file"' in html


def test_a_post_without_the_csrf_token_is_refused(greenlight_settings: SettingsWrapper) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(username="vic", roles=("reviewer",)))

    response = client.post(reverse("review:verify"), upload(encoded("PNG"), "a.png"))

    assert response.status_code == 403


def test_api_answers_only_post(viewer: Client) -> None:
    response = viewer.get(API)

    assert response.status_code == 405 and response["Allow"] == "POST"


# --- Reports ----------------------------------------------------------------------------


def test_page_shows_the_report_with_the_assets_thumbnail_and_links(
    reviewable_assets: list[Asset], greenlight_settings: SettingsWrapper
) -> None:
    asset = reviewable_assets[0]
    data = LocalStorage(provenance_config_from_settings().storage_root).read(asset.file_path)
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(username="vic", roles=("reviewer",)))
    client.get(reverse("review:verify"))
    token = client.cookies["csrftoken"].value

    response = client.post(reverse("review:verify"), {**upload(data, "master.png"), "csrfmiddlewaretoken": token})

    html = response.content.decode()
    assert response.status_code == 200
    assert f'<h2 id="verdict">Content Credentials trusted; asset #{asset.pk} found</h2>' in html
    assert 'data-outcome="authentic"' in html
    assert reverse("review:file", args=[asset.pk, "thumbnail"]) in html
    assert f'href="{reverse("review:asset", args=[asset.pk])}" id="asset-link"' in html
    assert asset.prompt in html and "demo-spring" in html and "catalog-hero v1" in html
    assert "found by this file's sha256 (the file is unchanged)" in html


def test_api_answers_the_report_as_json(viewer: Client, reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[1]
    data = LocalStorage(provenance_config_from_settings().storage_root).read(asset.thumb_path)

    response = viewer.post(API, upload(data, "thumb.jpg"))

    report = response.json()
    assert response.status_code == 200
    assert report["outcome"] == "authentic" and report["matched_by"] == "sha256"
    assert report["c2pa"]["state"] == "trusted"
    assert report["asset"]["serial"] == asset.pk and report["asset"]["campaign"] == "demo-spring"
    assert report["stored_manifest"]["kind"] == "thumbnail"


def test_page_names_a_copied_manifests_asset_apart_from_the_files(
    viewer: Client, reviewable_assets: list[Asset]
) -> None:
    donor, owner = reviewable_assets[0], reviewable_assets[1]
    storage = LocalStorage(provenance_config_from_settings().storage_root)
    data = png_manifest_transplant(donor=storage.read(donor.file_path), target=storage.read(owner.file_path))

    html = viewer.post(reverse("review:verify"), upload(data, "master.png")).content.decode()

    assert 'data-outcome="tampered"' in html
    assert f"this file carries asset #{owner.pk}&#x27;s watermark but asset #{donor.pk}&#x27;s manifest" in html
    assert f'href="{reverse("review:asset", args=[owner.pk])}" id="asset-link"' in html
    assert f'id="verify-manifest-asset"><a href="{reverse("review:asset", args=[donor.pk])}">' in html


def test_a_file_never_made_here_is_answered_nothing_found(viewer: Client) -> None:
    response = viewer.post(API, upload(encoded("WEBP"), "holiday.webp"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "nothing" and response.json()["asset"] is None


# --- Bad input: a clear 4xx, fast, nothing kept -----------------------------------------


BAD_INPUTS: list[tuple[str, Callable[[], bytes], str, int, str]] = [
    ("text", lambda: b"Quarterly numbers, not an image.\n" * 20, "notes.png", 415, "not_supported"),
    ("empty", lambda: b"", "empty.png", 400, "empty"),
    ("truncated-png", lambda: encoded("PNG")[: len(encoded("PNG")) // 2], "half.png", 400, "unreadable"),
    ("truncated-jpeg", lambda: encoded("JPEG")[:4000], "half.jpg", 400, "unreadable"),
    ("png-header-only", lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "broken.png", 400, "unreadable"),
    ("bomb-20000x20000", lambda: png_claiming(20_000, 20_000), "bomb.png", 400, "too_many_pixels"),
    ("bomb-8000x8000", lambda: png_claiming(8_000, 8_000), "bomb.png", 400, "too_many_pixels"),
    ("mp4-unknown-codec", lambda: unknown_codec(small_clip()), "clip.mp4", 400, "unreadable"),
    ("mp4-header-only", lambda: small_clip()[:300], "clip.mp4", 400, "unreadable"),
]


@pytest.mark.parametrize(
    ("make", "name", "status", "reason"), [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS]
)
def test_api_refuses_bad_input_quickly_with_a_clear_error(
    viewer: Client, make: Callable[[], bytes], name: str, status: int, reason: str
) -> None:
    data = make()
    started = time.perf_counter()

    response = viewer.post(API, upload(data, name))

    assert time.perf_counter() - started < BAD_INPUT_SECONDS
    assert response.status_code == status
    body = response.json()
    assert body["error"] == reason and name in body["detail"]


def test_bomb_is_refused_by_its_header_dimensions(viewer: Client) -> None:
    response = viewer.post(API, upload(png_claiming(20_000, 20_000), "bomb.png"))

    assert response.json()["detail"] == (
        "bomb.png: The image's header says more pixels than PIL allows; verify decodes at most 50 MP."
    )
    response = viewer.post(API, upload(png_claiming(8_000, 8_000), "big.png"))
    assert (
        response.json()["detail"] == "big.png: The image's header says 8000x8000 (64 MP); verify decodes at most 50 MP."
    )


def test_page_refuses_bad_input_with_the_message(viewer: Client) -> None:
    started = time.perf_counter()

    response = viewer.post(reverse("review:verify"), upload(b"hello", "hello.jpg"))

    assert time.perf_counter() - started < BAD_INPUT_SECONDS
    assert response.status_code == 415
    assert "hello.jpg: Not a PNG, JPEG, WebP or MP4 file" in response.content.decode()


def test_a_wrong_extension_is_verified_by_content(viewer: Client) -> None:
    started = time.perf_counter()

    response = viewer.post(API, upload(encoded("JPEG"), "picture.png"))

    assert time.perf_counter() - started < BAD_INPUT_SECONDS
    report = response.json()
    assert response.status_code == 200
    assert report["file"]["format"] == "jpeg" and report["file"]["extension_matches"] is False
    assert report["notes"] == ["The name says .png, but the content is JPEG: verified as JPEG."]


def test_a_missing_file_field_is_refused(viewer: Client) -> None:
    response = viewer.post(API, {"other": "value"})

    assert response.status_code == 400 and response.json()["error"] == "empty"


@pytest.mark.parametrize("url", [API, "/verify/"])
def test_a_200_mb_upload_is_refused_by_its_content_length_before_reading(viewer: Client, url: str) -> None:
    # The declared length is 200 MB; the body is small and is never read.
    started = time.perf_counter()

    response = viewer.post(url, upload(b"\x89PNG\r\n\x1a\n", "huge.png"), CONTENT_LENGTH=str(200 * 1024 * 1024))

    assert time.perf_counter() - started < BAD_INPUT_SECONDS
    assert response.status_code == 413
    if url == API:
        assert response.json() == {
            "error": "too_large",
            "detail": "The upload is 200.0 MB; verify takes files up to 50.0 MB.",
        }


def test_an_upload_over_the_limit_is_stopped_while_streaming(
    viewer: Client, greenlight_settings: SettingsWrapper
) -> None:
    # Within the Content-Length allowance, but the file itself is over the limit: the upload
    # handler stops it after the limit, in memory (never a temporary file).
    greenlight_settings.GREENLIGHT_VERIFY_MAX_BYTES = 100_000
    data = encoded("PNG") + b"\x00" * 150_000

    response = viewer.post(API, upload(data[:150_000], "over.png"))

    assert response.status_code == 413
    assert response.json() == {"error": "too_large", "detail": "The file is larger than 0.1 MB, the most verify takes."}


def test_a_small_real_image_is_answered_in_time(viewer: Client) -> None:
    started = time.perf_counter()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 40)).save(buffer, "PNG")

    response = viewer.post(API, upload(buffer.getvalue(), "tiny.png"))

    assert time.perf_counter() - started < BAD_INPUT_SECONDS
    assert response.json()["watermark"]["note"] == "not read: 64x64 is too small to carry it"


# --- Bounded work: a few verifies at once, each within a time budget ---------------------


def small_clip() -> bytes:
    """Half a second of a 256x256 product shot at 24 fps."""
    frame = product_shot(8).resize((256, 256))
    return mp4_encode([frame.rotate(i * 0.1) for i in range(12)], 24)


@pytest.mark.parametrize("url", [API, "/verify/"])
def test_a_verify_beyond_the_concurrency_limit_is_answered_429_with_retry_after(
    viewer: Client, greenlight_settings: SettingsWrapper, url: str
) -> None:
    greenlight_settings.GREENLIGHT_VERIFY_CONCURRENCY = 1
    started = time.perf_counter()

    with verify_slot():  # another request's verify, under way
        busy = viewer.post(url, upload(encoded("PNG"), "a.png"))

    assert time.perf_counter() - started < BAD_INPUT_SECONDS  # answered at once, not queued
    assert busy.status_code == 429 and busy["Retry-After"] == "2"
    message = "Verify is busy: this server verifies 1 file at a time and all are taken."
    if url == API:
        assert busy.json()["error"] == "busy" and busy.json()["detail"].startswith(message)
    else:
        assert message in busy.content.decode()
    assert verify_slots_in_use() == 0
    assert viewer.post(url, upload(encoded("PNG"), "a.png")).status_code == 200  # the slot is free again


def test_the_default_limit_lets_two_verifies_run_and_refuses_a_third(viewer: Client) -> None:
    with verify_slot():
        assert viewer.post(API, upload(encoded("PNG"), "a.png")).status_code == 200
        with verify_slot():
            assert viewer.post(API, upload(encoded("PNG"), "a.png")).status_code == 429


@pytest.mark.parametrize("url", [API, "/verify/"])
def test_a_verify_past_its_time_budget_is_answered_503_and_frees_its_slot(
    viewer: Client, greenlight_settings: SettingsWrapper, url: str
) -> None:
    greenlight_settings.GREENLIGHT_VERIFY_TIMEOUT_SECONDS = 1e-9  # spent before the first packet is read

    response = viewer.post(url, upload(small_clip(), "clip.mp4"))

    assert response.status_code == 503 and "Retry-After" not in response
    message = "while decoding the video: it spends at most 1e-09 s on a file"
    if url == API:
        assert response.json()["error"] == "timeout" and message in response.json()["detail"]
    else:
        assert message in response.content.decode()
    assert verify_slots_in_use() == 0


def test_a_clip_within_its_budget_is_verified(viewer: Client) -> None:
    response = viewer.post(API, upload(small_clip(), "clip.mp4"))

    assert response.status_code == 200
    assert response.json()["file"]["format"] == "mp4" and response.json()["file"]["width"] == 256


def test_a_video_whose_frames_are_over_the_cap_is_refused_by_its_header(
    viewer: Client, greenlight_settings: SettingsWrapper
) -> None:
    greenlight_settings.GREENLIGHT_VERIFY_MAX_VIDEO_PIXELS = 200 * 200

    response = viewer.post(API, upload(small_clip(), "clip.mp4"))

    assert response.status_code == 400
    assert response.json() == {
        "error": "too_many_pixels",
        "detail": "clip.mp4: The video's frames are 256x256 (0.066 MP); verify decodes at most 0.04 MP.",
    }


def test_over_http_a_busy_verify_is_refused_without_holding_its_upload(
    live_server: LiveServer, greenlight_settings: SettingsWrapper
) -> None:
    greenlight_settings.GREENLIGHT_VERIFY_CONCURRENCY = 1
    session = Client()
    session.force_login(make_user(username="vic", roles=("reviewer",)))
    cookie = f"sessionid={session.cookies['sessionid'].value}"
    host, port = live_server.url.removeprefix("http://").split(":")

    def post(data: bytes) -> tuple[int, dict[str, str], bytes]:
        boundary = "greenlight-test-boundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie}
            connection.request("POST", API, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    large = encoded("PNG") + b"\x00" * (8 * 2**20)  # 8 MB: more than the sockets buffer
    with verify_slot():
        status, headers, body = post(large)
    assert (status, headers["Retry-After"], json.loads(body)["error"]) == (429, "2", "busy")
    status, _, body = post(encoded("PNG"))
    assert status == 200 and json.loads(body)["outcome"] == "nothing"

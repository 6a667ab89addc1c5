"""The publish webhook, received by a real HTTP server on the loopback interface."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from review.models import Asset, AuditEvent
from review.services import asset_approve, asset_publish
from review.webhooks import webhook_signature
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-tests"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that records what it is sent; yields its URL and the requests."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/greenlight", received
    server.shutdown()


def test_publishing_posts_a_signed_webhook_after_commit(
    reviewable_assets: list[Asset],
    settings: SettingsWrapper,
    receiver: tuple[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    url, received = receiver
    settings.GREENLIGHT_PUBLISH_WEBHOOK_URL = url
    settings.GREENLIGHT_PUBLISH_WEBHOOK_SECRET = SECRET
    asset = asset_approve(asset=reviewable_assets[0], reviewer=make_user())
    with django_capture_on_commit_callbacks(execute=True):
        asset_publish(asset=asset, user=make_user(username="pat"))
    assert len(received) == 1
    headers, body = received[0]["headers"], received[0]["body"]
    assert headers["X-Greenlight-Signature"] == webhook_signature(SECRET, headers["X-Greenlight-Timestamp"], body)
    assert headers["X-Greenlight-Signature"] != webhook_signature("other", headers["X-Greenlight-Timestamp"], body)
    payload = json.loads(body)
    assert (payload["event"], payload["asset"], payload["published_by"]) == ("asset.published", asset.pk, "pat")
    assert [r["name"] for r in payload["renditions"]] == ["web", "thumb"]
    assert payload["alt_text"] == asset.alt_text and asset.alt_text
    assert AuditEvent.objects.filter(asset=asset, action="webhook_delivered").exists()


def test_an_unreachable_webhook_is_recorded_and_the_publication_stands(
    reviewable_assets: list[Asset], settings: SettingsWrapper, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    settings.GREENLIGHT_PUBLISH_WEBHOOK_URL = "http://127.0.0.1:9/nothing-listens-here"
    settings.GREENLIGHT_PUBLISH_WEBHOOK_SECRET = SECRET
    asset = asset_approve(asset=reviewable_assets[0], reviewer=make_user())
    with django_capture_on_commit_callbacks(execute=True):
        asset_publish(asset=asset, user=make_user())
    assert Asset.objects.get(pk=asset.pk).state == "published"
    failure = AuditEvent.objects.get(asset=asset, action="webhook_failed")
    assert "Connection refused" in failure.detail["result"] or "Errno" in failure.detail["result"]

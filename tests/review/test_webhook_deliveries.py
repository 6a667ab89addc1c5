"""Webhook events (asset decided, asset published, run finished): recorded in the transaction that
made them, signed, sent after commit, retried with backoff, and listed in the API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.utils import timezone

from review.models import Run, WebhookDelivery
from review.services import asset_approve, asset_comment
from review.webhooks import BACKOFF, webhook_deliveries_retry, webhook_signature
from tests.factories import AssetFactory, CampaignFactory, make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db
SECRET = "hook-secret-for-tests"


class Receiver:
    """A local HTTP server answering `status` and recording what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def receiver(settings: SettingsWrapper) -> Iterator[Receiver]:
    made = Receiver()
    thread = threading.Thread(target=made.server.serve_forever, daemon=True)
    thread.start()
    settings.GREENLIGHT_WEBHOOK_URL = made.url
    settings.GREENLIGHT_WEBHOOK_SECRET = SECRET
    yield made
    made.server.shutdown()


def test_a_decision_that_moves_an_asset_is_sent_signed_after_commit(
    receiver: Receiver, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    asset = AssetFactory.create()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        asset_approve(asset=asset, reviewer=make_user(username="vera"))
        delivery = WebhookDelivery.objects.get()
        assert delivery.event == "asset.decided" and delivery.state == "pending"  # recorded in the transaction
        assert receiver.received == []  # nothing sent before the commit
    for callback in callbacks:
        callback()
    (sent,) = receiver.received
    headers, body = sent["headers"], sent["body"]
    assert headers["X-Greenlight-Signature"] == webhook_signature(SECRET, headers["X-Greenlight-Timestamp"], body)
    assert headers["X-Greenlight-Event"] == "asset.decided" and headers["X-Greenlight-Delivery"] == str(delivery.pk)
    payload = json.loads(body)
    assert payload == {**payload, "event": "asset.decided", "asset": asset.pk, "state": "approved", "actor": "vera"}
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.attempts == 1 and delivery.last_outcome == "HTTP 204"


def test_a_vote_short_of_the_quorum_and_a_comment_send_nothing(
    receiver: Receiver, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    asset = AssetFactory.create(campaign=CampaignFactory.create(approvals_required=2))
    with django_capture_on_commit_callbacks(execute=True):
        asset_approve(asset=asset, reviewer=make_user(username="one"))
        asset_comment(asset=asset, user=make_user(username="two", roles=("reviewer",)), text="nice")
    assert WebhookDelivery.objects.count() == 0 and receiver.received == []


def test_a_failed_delivery_is_retried_with_backoff_then_given_up(
    receiver: Receiver, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    receiver.status = 503
    with django_capture_on_commit_callbacks(execute=True):
        asset_approve(asset=AssetFactory.create(), reviewer=make_user())
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "pending" and delivery.attempts == 1 and delivery.last_outcome == "HTTP 503"
    first_wait = delivery.next_attempt_at - timezone.now()  # type: ignore[operator]
    assert timedelta(seconds=25) < first_wait <= BACKOFF[0]
    assert webhook_deliveries_retry() == 0  # not due yet
    now = timezone.now()
    for _ in range(len(BACKOFF)):
        now += timedelta(days=1)
        assert webhook_deliveries_retry(now=now) == 1
    delivery.refresh_from_db()
    assert delivery.state == "failed" and delivery.attempts == len(BACKOFF) + 1
    assert len(receiver.received) == len(BACKOFF) + 1
    assert len({r["headers"]["X-Greenlight-Delivery"] for r in receiver.received}) == 1  # one id, to drop repeats


def test_a_retry_after_a_failure_can_deliver(
    receiver: Receiver, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    receiver.status = 500
    with django_capture_on_commit_callbacks(execute=True):
        asset_approve(asset=AssetFactory.create(), reviewer=make_user())
    receiver.status = 200
    assert webhook_deliveries_retry(now=timezone.now() + timedelta(minutes=1)) == 1
    assert WebhookDelivery.objects.get().state == "delivered"


def test_a_run_s_end_is_sent(receiver: Receiver, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    from review.services.runs import run_cancel

    run = Run.objects.create(campaign=CampaignFactory.create(name="spring"), total=0, state=Run.State.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        run_cancel(run=run, actor=make_user(roles=("operator",), username="olga"))
    (sent,) = receiver.received
    payload = json.loads(sent["body"])
    assert payload["event"] == "run.finished" and payload["run"] == run.pk and payload["state"] == "cancelled"
    assert WebhookDelivery.objects.get().run_id == run.pk


def test_no_receiver_configured_records_nothing(settings: SettingsWrapper) -> None:
    settings.GREENLIGHT_WEBHOOK_URL = ""
    asset_approve(asset=AssetFactory.create(), reviewer=make_user())
    assert WebhookDelivery.objects.count() == 0

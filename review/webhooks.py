"""The publish webhook: a JSON POST signed with HMAC-SHA256, sent after the publish commits.

Receivers check `X-Greenlight-Signature: sha256=<hex>` against
HMAC(secret, f"{X-Greenlight-Timestamp}.{body}") and refuse old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

logger = logging.getLogger("greenlight.review")
TIMEOUT_SECONDS = 5.0


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for this body and timestamp."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_send(payload: dict[str, Any]) -> tuple[bool, str]:
    """POST the payload to GREENLIGHT_PUBLISH_WEBHOOK_URL, if one is set; (delivered, detail)."""
    url = settings.GREENLIGHT_PUBLISH_WEBHOOK_URL
    if not url:
        return False, "no webhook configured"
    body = json.dumps(payload, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Greenlight-Webhook/1",
            "X-Greenlight-Timestamp": timestamp,
            "X-Greenlight-Signature": webhook_signature(settings.GREENLIGHT_PUBLISH_WEBHOOK_SECRET, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return True, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return False, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"

"""`Idempotency-Key` on creating POSTs: a retried request gets the first answer, not a second
campaign, run, decision or regeneration.

The first request with a key reserves it (a row committed before the work starts, unique per
user and key); its answer is kept with the row until `IDEMPOTENCY_TTL` has passed. Then:

- the same key with the same operation and body: the first answer again (status and body), with
  `Idempotent-Replayed: true`;
- the same key with another operation or body: 409, naming the header;
- the same key while the first request still runs: 409 (retry later);
- a first request that was refused (any error): the key is freed, so a corrected retry may use it.

Endpoints use it as::

    return idempotent(request, key=idempotency_key, body=payload, run=lambda: Status(201, CampaignOut(...)))
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Header, Schema, Status
from ninja.responses import NinjaJSONEncoder

from api.auth import actor
from api.models import IdempotencyRecord
from api.problems import ApiProblem

IDEMPOTENCY_TTL = timedelta(hours=24)
EXPIRE_BATCH = 100
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}\Z")  # printable ASCII, no spaces
HEADER = "Idempotency-Key"
IdempotencyKey = Header(
    None,
    alias=HEADER,
    description="Optional: a unique key (1-255 printable ASCII characters) that makes a retry of this "
    "request return the first answer instead of acting twice; kept 24 hours.",
)


def _fingerprint(request: HttpRequest, body: Any) -> str:
    """The operation and its body, as compared between two requests with one key."""
    if isinstance(body, Schema):
        body = body.model_dump(mode="json")
    text = json.dumps([request.method, request.path, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def idempotent(
    request: HttpRequest,
    *,
    key: str | None,
    body: Any,
    run: Callable[[], Status[Any]],
    now: datetime | None = None,
) -> Status[Any] | HttpResponse:
    """Run `run` once per user and key (see the module docstring); without a key, just run it.
    `body` is what makes two requests the same (the parsed payload, path parameters included
    by the path)."""
    if key is None:
        return run()
    if not KEY_PATTERN.match(key):
        raise ApiProblem(
            400,
            "invalid-idempotency-key",
            f"{HEADER} must be 1 to 255 printable ASCII characters without spaces",
            field=f"header.{HEADER}",
            value=key,
        )
    user = actor(request)
    now = now or timezone.now()
    fingerprint = _fingerprint(request, body)
    # Expired records go as new ones come: this key's, and a bounded batch of any others.
    expired = list(IdempotencyRecord.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:EXPIRE_BATCH])
    IdempotencyRecord.objects.filter(Q(pk__in=expired) | Q(user=user, key=key, expires_at__lte=now)).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                user=user, key=key, fingerprint=fingerprint, expires_at=now + IDEMPOTENCY_TTL
            )
    except IntegrityError:
        return _replay(user_id=user.pk, key=key, fingerprint=fingerprint)
    try:
        result = run()
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    record.status = result.status_code
    value = result.value
    # Rendered as the first answer is (ninja's encoder: date-times to the millisecond), so a replay
    # is the same JSON.
    data = value.model_dump(by_alias=True) if isinstance(value, Schema) else value
    record.body = json.loads(json.dumps(data, cls=NinjaJSONEncoder))
    record.save(update_fields=["status", "body"])
    return result


def _replay(*, user_id: int, key: str, fingerprint: str) -> HttpResponse:
    record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
    if record is None:  # freed by a refused first request between the two queries
        raise ApiProblem(409, "idempotency-key-in-use", f"{HEADER} {key!r} was just released: send the request again")
    if record.fingerprint != fingerprint:
        raise ApiProblem(
            409,
            "idempotency-key-reused",
            f"{HEADER} {key!r} was used for another request (another operation or body); use a new key",
            field=f"header.{HEADER}",
            value=key,
        )
    if record.status == 0:
        raise ApiProblem(
            409,
            "idempotency-key-in-use",
            f"The first request with {HEADER} {key!r} is still running; retry when it has finished",
            field=f"header.{HEADER}",
            value=key,
            headers={"Retry-After": "1"},
        )
    response = HttpResponse(json.dumps(record.body), status=record.status, content_type="application/json")
    response["Idempotent-Replayed"] = "true"
    return response


def idempotency_records_expire(*, now: datetime | None = None) -> int:
    """Delete the records past their expiry; returns how many (the sweeper's housekeeping)."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted

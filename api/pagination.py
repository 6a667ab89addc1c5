"""Cursor pagination: a list answers `limit` items and an opaque `next_cursor` that continues after
the last one (keyset on the list's own order, so a page costs the same at any depth and an item
inserted meanwhile is neither repeated nor skipped).

A cursor is URL-safe base64 of JSON `[sort value, id]`; one that does not decode is refused (400,
naming `query.cursor`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db.models import Model, Q, QuerySet
from ninja import Schema
from pydantic import Field

from api.problems import ApiProblem

LIMIT_DEFAULT = 50
LIMIT_MAX = 200
CURSOR_MAX = 200  # characters

T = TypeVar("T")
M = TypeVar("M", bound=Model)


class PageParams(Schema):
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX, description=f"items per page (1-{LIMIT_MAX})")
    cursor: str | None = Field(None, max_length=CURSOR_MAX, description="next_cursor of the previous page")


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


def cursor_encode(value: Any, pk: int) -> str:
    shown = value.isoformat() if isinstance(value, datetime) else value
    return base64.urlsafe_b64encode(json.dumps([shown, pk]).encode()).decode().rstrip("=")


def cursor_decode(cursor: str, *, dated: bool) -> tuple[Any, int]:
    """The (sort value, id) a cursor holds; `dated` when the sort value is a date-time."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, pk = json.loads(raw)
        if isinstance(pk, bool) or not isinstance(pk, int):
            raise ValueError("id")
        if dated:
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("naive")
        elif isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("value")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiProblem(
            400, "invalid-cursor", "cursor is not one this API gave out", field="query.cursor", value=cursor
        ) from None
    return value, pk


def keyset_page(
    qs: QuerySet[M],
    *,
    page: PageParams,
    field: str,
    descending: bool = True,
    item: Callable[[M], Any],
    dated: bool = True,
) -> dict[str, Any]:
    """One page of `qs` ordered by (`field`, id), descending by default, after `page.cursor`;
    `field="id"` orders by the id alone (newest first for a table whose ids grow with time)."""
    op = "lt" if descending else "gt"
    sign = "-" if descending else ""
    by_id = field == "id"  # an append-only table: the id is the creation order, on the primary key's index
    if page.cursor:
        value, pk = cursor_decode(page.cursor, dated=dated and not by_id)
        if by_id:
            qs = qs.filter(**{f"pk__{op}": pk})
        else:
            qs = qs.filter(Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"pk__{op}": pk}))
    order = [f"{sign}pk"] if by_id else [f"{sign}{field}", f"{sign}pk"]
    rows = list(qs.order_by(*order)[: page.limit + 1])
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = cursor_encode(getattr(rows[-1], field), rows[-1].pk) if more and rows else None
    return {"items": [item(r) for r in rows], "next_cursor": next_cursor}

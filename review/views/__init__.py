"""Dashboard views, thin: each parses its input, calls one service or selector, and renders.

- queue: the queue's tabs, an asset's page, its siblings side by side, its stored files
- decisions: claim and release, approve and reject (one or in bulk), regenerate, publish, revoke,
  comment
- audit: the audit log, a page at a time or as CSV
- verify: the verify page and API, and the bounded upload they read files through
"""

from __future__ import annotations

from django.http import Http404

from review import selectors
from review.models import Asset


def asset_or_404(serial: int, *, history: bool = False) -> Asset:
    """The asset, or a 404 naming the serial."""
    try:
        return selectors.asset_get(serial=serial, history=history)
    except Asset.DoesNotExist as exc:
        raise Http404(f"No asset {serial}") from exc

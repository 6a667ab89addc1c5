"""The error answers each operation declares in the schema (all of them problem details)."""

from __future__ import annotations

from typing import Any

from api.problems import Problem

# Every operation may answer these: a malformed request, no or a bad token, a missing role, an
# unknown object, a value its schema refuses.
BASE = (400, 401, 403, 404, 422)


def errors(*extra: int) -> dict[int, Any]:
    """`{status: Problem}` for the base errors and `extra` ones."""
    return dict.fromkeys(sorted({*BASE, *extra}), Problem)


ERRORS_READ = errors()
# A write with a JSON body: also a conflict with the asset's state or the idempotency key (409),
# a body too large (413) or not JSON (415).
ERRORS_WRITE = errors(409, 413, 415)

"""How long one verify may work, and how many run at once in this process.

Verify is the one page that does real work on a file a stranger chose: decoding, C2PA
validation, a watermark search. Each file is bounded by the decoders (header checks, the pixel
budget of `provenance.mp4.mp4_watermark_frames`); these bound the server as a whole:

- ``Deadline``: a time budget per file (GREENLIGHT_VERIFY_TIMEOUT_SECONDS on the web). A Python
  thread cannot be stopped from outside, so the work checks the budget itself, between decoded
  packets and between steps; a step that has begun (one C2PA validation, the watermark search
  over its bounded pixels) runs to its end, and the refusal comes at the next check.
- ``verify_slot``: at most GREENLIGHT_VERIFY_CONCURRENCY verifies at once in the process. A
  request that finds them all taken is refused at once (HTTP 429 with Retry-After), never queued,
  so a burst of uploads costs a few refusals instead of the server's memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings

from review.errors import VerifyRefusedError

RETRY_AFTER_SECONDS = 2  # what a busy refusal asks the client to wait: most verifies take well under it


class Deadline:
    """A time budget of ``seconds`` from now (None: no budget), checked with ``check``."""

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._started = clock()

    @classmethod
    def from_settings(cls) -> Deadline:
        """The web's budget: GREENLIGHT_VERIFY_TIMEOUT_SECONDS from now."""
        return cls(float(settings.GREENLIGHT_VERIFY_TIMEOUT_SECONDS))

    def check(self, step: str) -> None:
        """Refuse (reason ``timeout``) if the budget is spent; ``step`` says what was under way."""
        if self.seconds is None:
            return
        spent = self._clock() - self._started
        if spent > self.seconds:
            raise VerifyRefusedError(
                "timeout",
                f"Verify stopped after {spent:.1f} s while {step}: it spends at most {self.seconds:g} s on a file "
                "(a very large or unusually encoded file, or a busy server; try again later or a smaller copy).",
            )


class _Slots:
    """A counter of verifies under way, limited by GREENLIGHT_VERIFY_CONCURRENCY (read at each
    acquire, so a changed setting applies to the next request): a non-blocking semaphore."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = 0

    def acquire(self) -> bool:
        limit = int(settings.GREENLIGHT_VERIFY_CONCURRENCY)
        with self._lock:
            if self.in_use >= limit:
                return False
            self.in_use += 1
            return True

    def release(self) -> None:
        with self._lock:
            if self.in_use <= 0:
                raise RuntimeError("verify slot released more often than taken")
            self.in_use -= 1


_SLOTS = _Slots()


@contextmanager
def verify_slot() -> Iterator[None]:
    """Hold one of the process's verify slots for the block, or refuse at once (reason ``busy``)."""
    if not _SLOTS.acquire():
        limit = int(settings.GREENLIGHT_VERIFY_CONCURRENCY)
        raise VerifyRefusedError(
            "busy",
            f"Verify is busy: this server verifies {limit} file{'s' if limit != 1 else ''} at a time and all "
            f"are taken. Try again in a few seconds.",
        )
    try:
        yield
    finally:
        _SLOTS.release()


def verify_slots_in_use() -> int:
    """How many verifies are under way in this process (for tests and diagnostics)."""
    return _SLOTS.in_use

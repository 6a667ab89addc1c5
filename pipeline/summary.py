"""What a run reports: its progress after each batch and its summary at the end.

No torch here: the orchestration adapter and the commands import these types at module level.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RunProgress:
    """Where a run stands after a batch is done (handed over to review, or failed)."""

    label: str
    batches_done: int
    batches_total: int
    generated: int
    failed: int
    seconds: float  # since the run started

    @property
    def percent(self) -> float:
        return 100.0 * self.batches_done / self.batches_total if self.batches_total else 100.0

    def line(self) -> str:
        return (
            f"{self.label}: batch {self.batches_done}/{self.batches_total} done, {self.generated} in review, "
            f"{self.failed} failed ({self.seconds:.1f} s elapsed)"
        )


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """What a run did: returned by the run functions and the flows, printed by the commands."""

    label: str  # what ran: "campaign demo-spring", "assets 12, 13"
    campaign: str = ""  # the campaign, when a whole campaign ran
    variants: int  # the variants (or registered assets) the run was asked for
    already_done: int = 0
    generated: int = 0
    failed: int = 0
    batches: int = 0
    seconds: float = 0.0
    failures: tuple[str, ...] = ()  # the first line of each failure

    def line(self) -> str:
        rate = self.generated / self.seconds if self.seconds else 0.0
        return (
            f"{self.label}: {self.variants} variants, {self.generated} generated, "
            f"{self.already_done} already done, {self.failed} failed, in {self.seconds:.1f} s "
            f"({rate:.1f} assets/s)"
        )

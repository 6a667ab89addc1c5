"""The statistics the dashboard shows, as plain functions: approval rates with Wilson 95%
intervals, and the A/B verdict between two template versions.

The A/B test is the two-sided two-proportion z-test with a pooled proportion when every expected
cell count is at least 5, and Fisher's exact test (two-sided: the sum of the probabilities of
every table with the same margins no likelier than the one observed) when one is smaller, where
the normal approximation does not hold. Both at alpha = 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
ALPHA = 0.05


@dataclass(frozen=True)
class Rate:
    """k successes of n, the proportion, and its Wilson 95% interval (all None when n is 0)."""

    approved: int
    decided: int
    rate: float | None
    low: float | None
    high: float | None

    @property
    def rejected(self) -> int:
        return self.decided - self.approved


def wilson(approved: int, decided: int, *, z: float = Z95) -> Rate:
    """The Wilson score interval for `approved` of `decided`."""
    if decided <= 0:
        return Rate(approved=0, decided=0, rate=None, low=None, high=None)
    p = approved / decided
    z2n = z * z / decided
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / decided + z * z / (4 * decided * decided)) / (1 + z2n)
    return Rate(approved=approved, decided=decided, rate=p, low=max(0.0, centre - half), high=min(1.0, centre + half))


def normal_two_sided(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2))


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test for the table [[a, b], [c, d]]."""
    row1, row2, col1 = a + b, c + d, a + c
    n = row1 + row2
    total = math.comb(n, col1)

    def prob(x: int) -> float:
        return math.comb(row1, x) * math.comb(row2, col1 - x) / total

    observed = prob(a)
    lo, hi = max(0, col1 - row2), min(row1, col1)
    return min(1.0, sum(p for x in range(lo, hi + 1) if (p := prob(x)) <= observed * (1 + 1e-7)))


@dataclass(frozen=True)
class ABVerdict:
    """Two versions' approval on the same variable values, and whether they differ."""

    a: Rate
    b: Rate
    test: str  # "two-proportion z-test" or "Fisher exact test"; "" when either side has no decisions
    statistic: float | None  # z for the z-test; None for Fisher
    p_value: float | None
    significant: bool

    @property
    def verdict(self) -> str:
        if self.p_value is None:
            return "not enough decisions to compare"
        if not self.significant:
            return f"no significant difference (p = {self.p_value:.3g}, {self.test})"
        better = "A" if (self.a.rate or 0) > (self.b.rate or 0) else "B"
        return f"{better} is approved significantly more often (p = {self.p_value:.3g}, {self.test})"


def ab_test(a_approved: int, a_decided: int, b_approved: int, b_decided: int, *, alpha: float = ALPHA) -> ABVerdict:
    """Compare two approval rates; see the module's note on which test is used when."""
    a, b = wilson(a_approved, a_decided), wilson(b_approved, b_decided)
    if a_decided == 0 or b_decided == 0:
        return ABVerdict(a=a, b=b, test="", statistic=None, p_value=None, significant=False)
    n = a_decided + b_decided
    approved, rejected = a_approved + b_approved, n - a_approved - b_approved
    expected = [row * col / n for row in (a_decided, b_decided) for col in (approved, rejected)]
    if min(expected) < 5:
        p = fisher_exact(a_approved, a_decided - a_approved, b_approved, b_decided - b_approved)
        return ABVerdict(a=a, b=b, test="Fisher exact test", statistic=None, p_value=p, significant=p < alpha)
    pooled = approved / n
    se = math.sqrt(pooled * (1 - pooled) * (1 / a_decided + 1 / b_decided))
    z = 0.0 if se == 0 else (a_approved / a_decided - b_approved / b_decided) / se
    p = normal_two_sided(z)
    return ABVerdict(a=a, b=b, test="two-proportion z-test", statistic=z, p_value=p, significant=p < alpha)

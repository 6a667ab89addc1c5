from __future__ import annotations

import math

import pytest

from review.insight.stats import ab_test, fisher_exact, wilson


def test_wilson_of_nothing_is_no_rate() -> None:
    assert wilson(0, 0).rate is None


def test_wilson_at_the_edges_stays_within_zero_and_one() -> None:
    # 10 of 10: (z²/(n+z²), 1) = (0.7225, 1).
    rate = wilson(10, 10)
    assert (rate.low, rate.high) == pytest.approx((0.72247, 1.0), abs=1e-4)


def test_fisher_exact_of_the_tea_tasting_table() -> None:
    # Fisher's lady tasting tea: [[3, 1], [1, 3]], two-sided p = (1 + 16 + 16 + 1) / 70 = 34/70.
    assert fisher_exact(3, 1, 1, 3) == pytest.approx(34 / 70)


def test_large_counts_use_the_two_proportion_z_test() -> None:
    # 60/100 vs 40/100: pooled 0.5, se = sqrt(0.25 * 0.02) = 0.0707107, z = 0.2 / se = 2.828427,
    # two-sided p = erfc(z / sqrt 2) = 0.004678.
    verdict = ab_test(60, 100, 40, 100)
    assert verdict.test == "two-proportion z-test"
    assert verdict.statistic == pytest.approx(2.828427, abs=1e-6)
    assert verdict.p_value == pytest.approx(math.erfc(2.828427 / math.sqrt(2)), rel=1e-6)
    assert verdict.p_value == pytest.approx(0.004678, abs=1e-6)
    assert verdict.significant
    assert verdict.verdict.startswith("A is approved significantly more often")


def test_a_small_difference_is_not_significant() -> None:
    # 52/100 vs 48/100: z = 0.04 / 0.0707107 = 0.565685, p = 0.5716.
    verdict = ab_test(52, 100, 48, 100)
    assert verdict.p_value == pytest.approx(0.5716, abs=1e-4)
    assert not verdict.significant


def test_no_decisions_on_one_side_gives_no_verdict() -> None:
    verdict = ab_test(3, 4, 0, 0)
    assert verdict.p_value is None and verdict.verdict == "not enough decisions to compare"

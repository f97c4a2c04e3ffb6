"""benchmarks/fidelity_stats.py on hand-computed cases: Welch's test, the flag rule, Spearman's correlation."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from fidelity_stats import flagged, spearman, summarise, welch  # noqa: E402


def test_summary_of_runs():
    s = summarise([87.0, 88.0, 92.0])  # mean 89; deviations -2, -1, 3: sum of squares 14, variance 7
    assert (s.n, s.mean) == (3, 89.0) and s.sd == pytest.approx(math.sqrt(7))
    assert summarise([91.5]) == summarise([91.5]) and summarise([91.5]).sd is None
    assert summarise([]).mean is None


def test_welch_with_four_degrees_of_freedom():
    # a = 0, 1, 2 and b = 3, 4, 5: variances 1 and 1, n 3 and 3.
    # se = sqrt(1/3 + 1/3) = sqrt(2/3); t = -3 / sqrt(2/3) = -3.674235; df = (2/3)^2 / (2 * (1/3)^2 / 2) = 4.
    # Student's t with 4 df: F(t) = 1/2 + (3/8) u (1 - t^2 / (12 (1 + t^2/4))), u = t / sqrt(1 + t^2/4).
    t = -3 / math.sqrt(2 / 3)
    u = t / math.sqrt(1 + t * t / 4)
    p = 2 * (0.5 + 3 / 8 * u * (1 - t * t / (12 * (1 + t * t / 4))))  # = 0.021312
    w = welch([0, 1, 2], [3, 4, 5])
    assert w.diff == -3 and w.se == pytest.approx(math.sqrt(2 / 3))
    assert w.t == pytest.approx(t) and w.df == pytest.approx(4) and w.p == pytest.approx(p, rel=1e-9)
    assert p == pytest.approx(0.021312, abs=1e-6)
    # 95 % interval: -3 -+ t(0.975, 4) se, t(0.975, 4) = 2.776445 (tables)
    half = 2.776445 * math.sqrt(2 / 3)
    assert w.ci == pytest.approx((-3 - half, -3 + half), abs=1e-5)


def test_welch_with_two_degrees_of_freedom_and_unequal_means():
    # a = 3, 5 and b = 0, 2: variances 2 and 2, se = sqrt(2/2 + 2/2) = sqrt(2), t = 3 / sqrt(2) = 2.121320,
    # df = 2^2 / (1^2 / 1 + 1^2 / 1) = 2. With 2 df, F(t) = 1/2 + t / (2 sqrt(2 + t^2)):
    # p = 2 (1 - F(t)) = 1 - t / sqrt(2 + t^2) = 1 - 2.121320 / 2.549510 = 0.167950.
    w = welch([3, 5], [0, 2])
    assert (w.diff, w.df) == (3, pytest.approx(2)) and w.p == pytest.approx(0.167950, abs=1e-6)
    assert w.ci == pytest.approx((3 - 4.302653 * math.sqrt(2), 3 + 4.302653 * math.sqrt(2)), abs=1e-5)


def test_welch_unequal_variances_uses_satterthwaite_df():
    # a = 1, 2, 3 (var 1), b = 3, 5, 7 (var 4): se^2 = 1/3 + 4/3 = 5/3; df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 50/17
    w = welch([1, 2, 3], [3, 5, 7])
    assert w.df == pytest.approx(50 / 17) and w.t == pytest.approx(-3 / math.sqrt(5 / 3))


def test_welch_is_not_available_for_one_run_or_no_variance():
    assert welch([88.0], [87.0, 89.0]) is None
    assert welch([87.0, 89.0], [88.0]) is None
    assert welch([88.0, 88.0], [90.0, 90.0]) is None  # both without spread: no standard error
    assert welch([88.0, 88.0], [89.0, 91.0]) is not None  # one side without spread is fine


def test_flag_needs_a_large_and_significant_difference():
    big_significant = welch([0, 1, 2], [3, 4, 5])  # diff -3, p 0.021
    assert flagged(big_significant.diff, big_significant)
    big_not_significant = welch([3, 5], [0, 2])  # diff 3, p 0.168
    assert not flagged(big_not_significant.diff, big_not_significant)
    small_significant = welch([0.0, 0.1, 0.2], [0.9, 1.0, 1.1])  # diff -0.9 (< 1 point), p < 0.001
    assert small_significant.p < 0.001 and not flagged(small_significant.diff, small_significant)
    assert not flagged(5.0, None)  # n/a: never flagged, needs more runs
    assert not flagged(None, None)


def test_spearman_on_hand_ranked_pairs():
    # ranks 1..6 against 2,1,4,3,6,5: d^2 = 1 each, rho = 1 - 6 * 6 / (6 * 35) = 0.828571
    assert spearman([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]) == pytest.approx(1 - 36 / 210)
    assert spearman([10, 20, 30], [3, 2, 1]) == pytest.approx(-1)
    assert spearman([1, 2], [2, 1]) is None and spearman([1, 1, 1], [1, 2, 3]) is None
    # ties: x ranks 1.5, 1.5, 3, 4; y ranks 1..4 -> Pearson of the ranks
    assert spearman([5, 5, 7, 9], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])

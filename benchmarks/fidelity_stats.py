"""The statistics of ``benchmarks/fidelity.py``: summaries of runs, Welch's t-test between two codes (or two
options, or per-seed against per-run means over the same images), the flag rule of docs/fidelity.md, and Spearman's rank
correlation of per-image AUCs.

Pure functions of lists of AUCs (in points), so each can be checked on hand-computed cases
(tests/test_fidelity_stats.py).
"""

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

THRESHOLD = 1.0  # points of AUC: a smaller difference is never flagged
ALPHA = 0.05  # a difference is flagged only if Welch's test is significant at this level
LEVEL = 0.95  # confidence level of the intervals of an effect


@dataclass(frozen=True)
class Summary:
    """n, mean and sample sd (n - 1; None for one value) of a cell's runs; mean None without runs."""

    n: int
    mean: float | None
    sd: float | None


def summarise(values: Sequence[float]) -> Summary:
    values = [float(v) for v in values]
    mean = statistics.fmean(values) if values else None
    return Summary(len(values), mean, statistics.stdev(values) if len(values) > 1 else None)


@dataclass(frozen=True)
class TTest:
    """A t-test of a difference of means: the difference, its standard error, t, the degrees of freedom
    (Welch-Satterthwaite), the two-sided p-value and the ``LEVEL`` confidence interval."""

    diff: float
    se: float
    t: float
    df: float
    p: float
    ci: tuple[float, float]


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> TTest | None:
    """Welch's test of a against b; None ("n/a") when a side has fewer than 2 values or both have zero variance
    (no standard error to divide by)."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a), statistics.variance(b)
    se = math.sqrt(va / len(a) + vb / len(b))
    if se == 0:
        return None
    with warnings.catch_warnings():  # scipy warns about a side without spread; the test is still defined
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    diff = statistics.fmean(a) - statistics.fmean(b)
    ci = result.confidence_interval(level)
    return TTest(diff, se, float(result.statistic), float(result.df), float(result.pvalue), (ci.low, ci.high))


def flagged(diff: float | None, test: TTest | None, threshold: float = THRESHOLD, alpha: float = ALPHA) -> bool:
    """The flag of docs/fidelity.md: the difference is larger than ``threshold`` points **and** its test (Welch's
    for a cell or over the single images) is significant at ``alpha``. Without a test (n/a) nothing
    is flagged: it needs more runs."""
    return diff is not None and test is not None and abs(diff) > threshold and test.p < alpha


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation of paired values (ties get mean ranks); None for fewer than 3 pairs or a
    constant side."""
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} values against {len(y)}")
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.spearmanr(x, y).statistic)

"""The report's statistics over seeds: cell summaries with a t-interval, paired differences, a bootstrapped crossover.

Every number a report prints about several seeds comes from here, so the footnote of the tables
(:func:`footnote`) describes all of them:

- a cell: mean, sample standard deviation (n − 1) and the 95 % t-interval of the mean over the seeds' values
  (mean ± t(0.975, n − 1) · sd / √n); with one seed only the mean (no sd, no interval);
- a paired difference of two columns: per seed, the mean over the classes both columns hold for that seed of
  (b − a); then the same summary over those per-seed differences. Seeds or classes only one column holds are left
  out (counted, never pooled);
- a crossover: the first row (in numeric order) where the mean paired difference is ≥ 0, with a percentile
  bootstrap interval over seeds (:data:`BOOTSTRAP_RESAMPLES` resamples of the seeds with replacement, generator
  seeded with :data:`BOOTSTRAP_SEED`, so the same records give the same interval).
"""

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
NEVER = "never"
STAT_FIELDS = ("mean", "std", "ci_low", "ci_high", "n")  # a Summary's fields, and the tables' columns


def footnote(metric: str = "auroc") -> str:
    """What every cell of a report's tables is, and how its ± relates to the paper's."""
    from .metric import METRICS

    return (
        f"Cells ({METRICS[metric].label} in %): mean ± sample sd (n − 1) over seeds [95 % t-interval of the mean], "
        "n = seeds; with n = 1 only the mean; *incomplete*: fewer seeds or classes than the experiment's sweep asks "
        "for; a value a record lacks is missing, not 0. A mean over classes is taken per seed first (the mean over "
        "that seed's classes), then over seeds; its ± is therefore the spread between seeds. The paper's ± is "
        "another quantity: on a per-class row the population sd (n) over seeds, on a Mean row the population sd "
        "of the class values (the spread between classes: Table 11's 98.46 ± 0.96 is that of its ten class "
        "values), which the mean rows give as *over classes ±*."
    )


@dataclass(frozen=True)
class Summary:
    """Mean, sample sd, 95 % t-interval and n of one cell's per-seed values (sd and interval NaN when n < 2)."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


def t_quantile(n: int, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with n − 1 degrees of freedom (n ≥ 2)."""
    return float(student_t.ppf(0.5 + level / 2, n - 1))


def summarise(values: Sequence[float] | pd.Series) -> Summary:
    """Mean, sample sd (n − 1) and the 95 % t-interval of the mean of ``values`` (NaNs dropped)."""
    v = np.asarray(pd.Series(values, dtype=float).dropna())
    n = len(v)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(v.mean())
    if n < 2:
        return Summary(mean, math.nan, math.nan, math.nan, n)
    sd = float(v.std(ddof=1))
    half = t_quantile(n) * sd / math.sqrt(n)
    return Summary(mean, sd, mean - half, mean + half, n)


def per_seed_class_mean(df: pd.DataFrame, value: str = "value") -> pd.Series:
    """Per seed, the mean of ``value`` over the classes that seed holds (the paper's mean over classes)."""
    return df.dropna(subset=[value]).groupby("seed")[value].mean()


def spread(df: pd.DataFrame, value: str = "value") -> float:
    """The paper's ± of a mean over classes: the population sd (numpy's ``np.std``, n) of the class values, each
    the mean over that class's seeds (the paper's code, ``ADTrainer.run``); NaN without values."""
    by_class = df.dropna(subset=[value]).groupby("normal_class")[value].mean()
    return float(by_class.std(ddof=0)) if len(by_class) else math.nan


def _field(s: Any, key: str, default: Any = None) -> Any:
    value = s.get(key, default) if isinstance(s, (pd.Series, dict)) else getattr(s, key, default)
    return default if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def incomplete(s: Any) -> str:
    """What a cell lacks of what the experiment asks for: ``of 10, 2 of 10 classes`` (empty when complete or
    unknown). ``s`` has ``n``, ``seeds_expected``, ``classes``, ``classes_expected`` (missing ones are unknown)."""
    n, seeds = _field(s, "n", 0), _field(s, "seeds_expected")
    k, classes = _field(s, "classes"), _field(s, "classes_expected")
    parts = [f"of {int(seeds)}"] if seeds is not None and n < seeds else []
    if classes is not None and k is not None and k < classes:
        parts.append(f"{int(k)} of {int(classes)} classes")
    return ", ".join(parts)


def fmt_cell(s: Any) -> str:
    """``92.0 ± 2.0 [87.0, 97.0] (n=3)``; ``72.4 (n=1)`` for one seed; ``–`` without values;
    ``72.4 (n=1 of 10, 2 of 10 classes: *incomplete*)`` when it lacks seeds or classes (:func:`incomplete`).
    ``s``: a :class:`Summary`, or a table row (Series, dict or named tuple) with those fields."""
    mean, std, low, high, n = (_field(s, k) for k in STAT_FIELDS)
    if n is None or int(n) == 0 or mean is None:
        return "–"
    lacking = incomplete(s)
    sep = " " if lacking.startswith("of ") else ", "
    tail = f"n={int(n)}" + (f"{sep}{lacking}: *incomplete*" if lacking else "")
    if n < 2:
        return f"{mean:.1f} ({tail})"
    return f"{mean:.1f} ± {std:.1f} [{low:.1f}, {high:.1f}] ({tail})"


# -- two columns on paired seeds -----------------------------------------------------------------------------
def paired_seed_differences(a: pd.DataFrame, b: pd.DataFrame, value: str = "value") -> tuple[pd.Series, int]:
    """(per seed: mean over the classes both hold of b − a, number of unpaired (class, seed) values left out).

    ``a`` and ``b``: one row per (normal_class, seed) of one cell each (columns normal_class, seed, ``value``)."""
    ka = a.dropna(subset=[value]).groupby(["normal_class", "seed"])[value].mean()
    kb = b.dropna(subset=[value]).groupby(["normal_class", "seed"])[value].mean()
    both = ka.index.intersection(kb.index)
    unpaired = len(ka) + len(kb) - 2 * len(both)
    diff = (kb.loc[both] - ka.loc[both]).rename("diff").reset_index()
    return diff.groupby("seed")["diff"].mean(), unpaired


def first_crossing(means: np.ndarray) -> int:
    """Index of the first entry ≥ 0 (NaN entries skipped); ``len(means)`` when there is none."""
    hits = np.flatnonzero(np.nan_to_num(means, nan=-np.inf) >= 0)
    return int(hits[0]) if len(hits) else len(means)


@dataclass(frozen=True)
class Crossover:
    """Where b catches up with a: the row label (or ``never``), its bootstrap interval and how it was made."""

    at: str
    low: str
    high: str
    never_share: float  # share of bootstrap resamples in which b never catches up
    seeds: int
    resamples: int = BOOTSTRAP_RESAMPLES
    seed: int = BOOTSTRAP_SEED


def bootstrap_crossover(diffs: pd.DataFrame, rows: list[str]) -> Crossover:
    """The crossover of ``diffs`` (index: seeds, columns: ``rows`` in order; per-seed paired differences b − a,
    NaN where a seed lacks a pair) and its 95 % percentile interval from resampling the seeds with replacement."""
    d = diffs.reindex(columns=rows).to_numpy(dtype=float)
    labels = [*rows, NEVER]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(d), size=(BOOTSTRAP_RESAMPLES, len(d)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row no (resampled) seed holds: NaN, skipped
        at = first_crossing(np.nanmean(d, axis=0))
        means = np.nanmean(d[picks], axis=1)  # (resamples, rows)
    found = np.array([first_crossing(m) for m in means])
    low = int(np.quantile(found, (1 - LEVEL) / 2, method="lower"))
    high = int(np.quantile(found, (1 + LEVEL) / 2, method="higher"))
    return Crossover(labels[at], labels[low], labels[high], float(np.mean(found == len(rows))), len(d))

"""Two methods compared on paired seeds: the difference per row and where one catches up with the other.

An experiment's ``report.crossover`` (``ahead``, ``catches_up``, the paper's value) names the two columns. Only
records of one configuration are paired: with several configurations in a folder (say 1 and 12 epochs), the pair
of columns of the configuration both methods hold most records of is compared, and the other configurations'
rows are listed without a crossover. Per row (OE size, number of classes, …) the difference ``catches_up −
ahead`` is taken per seed over the classes both columns hold for it (:func:`stats.paired_seed_differences`), then
summarised over seeds with its 95 % t-interval. The crossover is the first row where that mean difference is ≥ 0
(≤ 0 for a metric where lower is better), with a bootstrap interval over seeds (:func:`stats.bootstrap_crossover`);
it needs two or more rows with two paired seeds. Nothing is concluded when a column has no records or too few
seeds are paired: the report says what is missing instead.
"""

import json
from dataclasses import dataclass

import pandas as pd

from .layout import Layout
from .metric import DEFAULT, METRICS
from .stats import NEVER, Crossover, bootstrap_crossover, paired_seed_differences, summarise
from .tables import plural, row_sort

COMPARISON_COLUMNS = [  # mean, std, ci_*: of `difference` (b − a) in points of `metric`
    *("a", "b", "row", "n", "mean", "std", "ci_low", "ci_high", "unpaired", "verdict", "difference", "metric")
]


@dataclass(frozen=True)
class Comparison:
    """Column ``b`` against column ``a`` (differences are b − a, in points of the metric)."""

    a: str
    b: str
    paper_at: float
    rows: pd.DataFrame  # COMPARISON_COLUMNS, one row per swept value both columns hold
    crossover: Crossover | None
    missing: str  # why there is no crossover (empty when there is one)
    skipped: tuple[str, ...] = ()  # rows left out of the crossover (fewer than 2 paired seeds)
    metric: str = DEFAULT
    others: tuple[str, ...] = ()  # columns of other configurations, listed but not compared


def _verdict(s, a: str, b: str, higher_is_better: bool) -> str:
    if s.n < 2:
        return f"n={s.n}: no conclusion (needs 2 paired seeds)"
    if (s.ci_low > 0) if higher_is_better else (s.ci_high < 0):
        return f"{b} ahead"
    if (s.ci_high < 0) if higher_is_better else (s.ci_low > 0):
        return f"{a} ahead"
    return "no clear difference (the interval holds 0)"


def _seeds(block: pd.DataFrame) -> str:
    return ", ".join(str(s) for s in sorted(block["seed"].unique())) or "none"


def _pair(df: pd.DataFrame, a: str, b: str) -> tuple[str, str] | None:
    """The columns of ``a`` and ``b`` in the configuration (variant) both hold, the one with the most records
    (the plain columns when nothing varies); None when they share no configuration."""
    base = df["base"] if "base" in df else df["column"]
    variants = [{c[len(m) :] for c in df.loc[base == m, "column"]} for m in (a, b)]
    if not variants[0] or not variants[1]:
        return a, b  # one has no records at all: compare() says so
    both = variants[0] & variants[1]
    if not both:
        return None
    count = df["column"].value_counts()
    return max(((a + v, b + v) for v in both), key=lambda p: (count.get(p[0], 0) + count.get(p[1], 0), p[0] == a))


def _signatures(block: pd.DataFrame) -> pd.Series:
    """Per record, its setting (data, OE set, schedule; :data:`expected.SETTING_KEYS`) as text: two columns are
    paired only where it is the same (a method's own schedule does not show as a variant)."""
    from .expected import SETTING_KEYS, setting_of

    configs = block["_config"] if "_config" in block else pd.Series([{}] * len(block), index=block.index)
    return configs.map(lambda c: json.dumps(setting_of(c or {}, SETTING_KEYS), sort_keys=True, default=str))


def _describe(sa: pd.Series, sb: pd.Series) -> str:
    """The keys in which the (first) settings of two columns differ: ``epochs: 12 vs 1; milestones: [6, 9] vs []``."""
    a, b = json.loads(sa.iloc[0]), json.loads(sb.iloc[0])
    return "; ".join(f"{k}: {a.get(k)} vs {b.get(k)}" for k in a if a.get(k) != b.get(k))


def compare(df: pd.DataFrame, layout: Layout, metric: str = DEFAULT) -> Comparison | None:
    """The paired comparison of the layout's crossover columns in ``df`` (labelled records: ``column``, ``base``,
    ``row``, ``normal_class``, ``seed``, ``value``); None when the layout names no crossover."""
    if not layout.crossover:
        return None
    a0, b0, paper_at = layout.crossover
    up = METRICS[metric].higher_is_better
    base = df["base"] if "base" in df else df["column"]
    pair = _pair(df, a0, b0)
    empty = pd.DataFrame(columns=COMPARISON_COLUMNS)
    if pair is None:
        held = ", ".join(f"`{c}`" for c in sorted(set(df.loc[base.isin([a0, b0]), "column"]), key=str))
        missing = (
            f"`{a0}` and `{b0}` share no configuration (held: {held}); records of different configurations are "
            "never paired"
        )
        return Comparison(a0, b0, paper_at, empty, None, missing, metric=metric)
    a, b = pair
    others = tuple(sorted(set(df.loc[base.isin([a0, b0]), "column"]) - {a, b}))
    da, db = df[df["column"] == a], df[df["column"] == b]
    common = dict(metric=metric, others=others)
    sa, sb = _signatures(da), _signatures(db)
    shared = [sig for sig in dict.fromkeys([*sa, *sb]) if sig in set(sa) and sig in set(sb)]
    if len(da) and len(db) and not shared:
        missing = (
            f"`{a}` and `{b}` were run with different settings ({_describe(sa, sb)}); records of different "
            "configurations are never paired"
        )
        return Comparison(a, b, paper_at, empty, None, missing, **common)
    if len(shared) > 1 or (shared and (set(sa) | set(sb)) - {shared[0]}):
        sig = max(shared, key=lambda g: (sa == g).sum() + (sb == g).sum())
        da, db = da[sa == sig], db[sb == sig]
    if da.empty or db.empty:
        lacking = " and ".join(f"`{c}`" for c, d in ((a, da), (b, db)) if d.empty)
        held = ", ".join(f"`{c}`: {plural(k, 'record')}" for c, k in df["column"].value_counts(sort=False).items())
        return Comparison(a, b, paper_at, empty, None, f"no records of {lacking} (held: {held or 'none'})", **common)
    rows = sorted((set(da["row"]) | set(db["row"])) - {"none"}, key=row_sort)
    shared = {"a": a, "b": b, "difference": f"{b} − {a}", "metric": metric}
    out, per_seed = [], {}
    for row in rows:
        ca, cb = da[da["row"] == row], db[db["row"] == row]
        if ca.empty or cb.empty:
            only = a if cb.empty else b
            out.append({**shared, "row": row, "n": 0, "unpaired": len(ca) + len(cb), "verdict": f"only {only}"})
            continue
        diffs, unpaired = paired_seed_differences(ca, cb)
        s = summarise(diffs)
        per_seed[row] = diffs
        out.append({**shared, "row": row, **s.as_dict(), "unpaired": unpaired, "verdict": _verdict(s, a, b, up)})
    table = pd.DataFrame(out, columns=COMPARISON_COLUMNS)
    usable = [r for r in rows if r in per_seed and per_seed[r].count() >= 2]
    skipped = tuple(r for r in rows if r not in usable)
    x = _xname(layout)
    if not usable:
        paired = {s for d in per_seed.values() for s in d.index}
        missing = (
            f"fewer than 2 paired seeds at every {x} (`{a}` seeds: {_seeds(da)}; `{b}` seeds: "
            f"{_seeds(db)}; paired: {', '.join(map(str, sorted(paired))) or 'none'})"
        )
        return Comparison(a, b, paper_at, table, None, missing, skipped, **common)
    if len(usable) < 2:
        missing = f"only one {x} ({usable[0]}) has 2 paired seeds; a crossover needs two or more along the {x}"
        return Comparison(a, b, paper_at, table, None, missing, skipped, **common)
    diffs = pd.DataFrame({r: per_seed[r] if up else -per_seed[r] for r in usable})
    return Comparison(a, b, paper_at, table, bootstrap_crossover(diffs, usable), "", skipped, **common)


def _xname(layout: Layout) -> str:
    return "OE size" if layout.rows == "oe_size" else layout.rows


def _ci(low: float, high: float) -> str:
    return "–" if pd.isna(low) else f"[{low:+.1f}, {high:+.1f}]"


def comparison_markdown(cmp: Comparison, layout: Layout, paper_comparable: bool = True) -> list[str]:
    """The comparison section: the crossover sentence (or what is missing), then the paired table."""
    a, b, x = cmp.a, cmp.b, _xname(layout)
    m = METRICS[cmp.metric]
    paper = f"paper: about {cmp.paper_at}, in AUROC" + ("" if paper_comparable else ", in another setting")
    at_least = "at least" if m.higher_is_better else "at most"
    lines = [f"### `{b}` vs `{a}` on paired seeds ({m.label})", ""]
    if cmp.crossover is None:
        lines.append(f"No crossover is computed: {cmp.missing} ({paper}).")
    else:
        c = cmp.crossover
        used = [r for r in cmp.rows["row"] if r not in cmp.skipped]
        last = used[-1]
        if c.at == NEVER:
            said = f"`{b}` does **not** catch up with `{a}` at any {x} compared (up to {last})"
        elif c.at == used[0]:
            said = (
                f"`{b}` is {at_least} as good as `{a}` on average already at the smallest {x} compared, "
                f"**{c.at}**: the crossover lies there or below"
            )
        else:
            said = f"`{b}` catches up with `{a}` at {x} **{c.at}**, the first where its mean is {at_least} `{a}`'s"
        low, high = (f"beyond {last}" if v == NEVER else v for v in (c.low, c.high))
        lines.append(
            f"{said} ({paper}); 95 % bootstrap interval {low} – {high} "
            f"({c.seeds} paired seeds resampled {c.resamples} times, generator seed {c.seed}; "
            f"in {c.never_share:.0%} of the resamples `{b}` does not catch up within the {x}s compared). "
            "The crossover uses the mean difference; whether a row's interval excludes 0 is its verdict below."
        )
        if cmp.skipped:
            lines.append(f"Left out of the crossover (fewer than 2 paired seeds): {x} {', '.join(cmp.skipped)}.")
    if cmp.others:
        lines.append(
            f"Other configurations, not paired with these: {', '.join(f'`{o}`' for o in cmp.others)} "
            "(records of different configurations are never compared)."
        )
    if not cmp.rows.empty:
        lines += [
            "",
            f"| {x} | {b} − {a} (mean ± sd [95 % t-interval]) | paired seeds | unpaired records | verdict |",
            "|---|---|---|---|---|",
        ]
        for t in cmp.rows.itertuples():
            diff = "–" if t.n == 0 or pd.isna(t.mean) else f"{t.mean:+.1f}"
            if t.n >= 2:
                diff += f" ± {t.std:.1f} {_ci(t.ci_low, t.ci_high)}"
            lines.append(f"| {t.row} | {diff} | {int(t.n)} | {int(t.unpaired)} | {t.verdict} |")
        lines += [
            "",
            f"Paired: per seed, the mean over the classes both columns hold for that seed of ({b} − {a}), in points "
            f"of {m.label}; then mean, sample sd and 95 % t-interval over those seeds. Records without a partner (same "
            "seed and class in the other column) are counted as unpaired and left out. comparison.csv holds these "
            "rows (`mean` is `difference`).",
        ]
    return lines

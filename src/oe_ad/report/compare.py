"""Two methods compared on paired seeds: the difference per row and where one catches up with the other.

An experiment's ``report.crossover`` (``ahead``, ``catches_up``, the paper's value) names the two columns. Per row
(OE size, number of classes, …) the difference ``catches_up − ahead`` is taken per seed over the classes both
columns hold for it (:func:`stats.paired_seed_differences`), then summarised over seeds with its 95 % t-interval.
The crossover is the first row where that mean difference is ≥ 0, with a bootstrap interval over seeds
(:func:`stats.bootstrap_crossover`). Nothing is concluded when a column has no records or fewer than two seeds
are paired: the report says what is missing instead.
"""

from dataclasses import dataclass

import pandas as pd

from .layout import Layout
from .stats import NEVER, Crossover, bootstrap_crossover, paired_seed_differences, summarise
from .tables import row_sort

COMPARISON_COLUMNS = ["a", "b", "row", "n", "mean", "std", "ci_low", "ci_high", "unpaired", "verdict"]


@dataclass(frozen=True)
class Comparison:
    """Column ``b`` against column ``a`` (differences are b − a, AUC points)."""

    a: str
    b: str
    paper_at: float
    rows: pd.DataFrame  # COMPARISON_COLUMNS, one row per swept value both columns hold
    crossover: Crossover | None
    missing: str  # why there is no crossover (empty when there is one)
    skipped: tuple[str, ...] = ()  # rows left out of the crossover (fewer than 2 paired seeds)


def _verdict(s, a: str, b: str) -> str:
    if s.n < 2:
        return f"n={s.n}: no conclusion (needs 2 paired seeds)"
    if s.ci_low > 0:
        return f"{b} ahead"
    if s.ci_high < 0:
        return f"{a} ahead"
    return "no clear difference (the interval holds 0)"


def _seeds(block: pd.DataFrame) -> str:
    return ", ".join(str(s) for s in sorted(block["seed"].unique())) or "none"


def compare(df: pd.DataFrame, layout: Layout) -> Comparison | None:
    """The paired comparison of the layout's crossover columns in ``df`` (labelled records: ``column``, ``row``,
    ``normal_class``, ``seed``, ``auc``); None when the layout names no crossover."""
    if not layout.crossover:
        return None
    a, b, paper_at = layout.crossover
    empty = pd.DataFrame(columns=COMPARISON_COLUMNS)
    da, db = df[df["column"] == a], df[df["column"] == b]
    if da.empty or db.empty:
        lacking = " and ".join(f"`{c}`" for c, d in ((a, da), (b, db)) if d.empty)
        held = ", ".join(f"`{c}`: {k} records" for c, k in df["column"].value_counts(sort=False).items())
        return Comparison(a, b, paper_at, empty, None, f"no records of {lacking} (held: {held or 'none'})")
    rows = sorted((set(da["row"]) | set(db["row"])) - {"none"}, key=row_sort)
    out, per_seed = [], {}
    for row in rows:
        ca, cb = da[da["row"] == row], db[db["row"] == row]
        if ca.empty or cb.empty:
            only = a if cb.empty else b
            out.append({"a": a, "b": b, "row": row, "n": 0, "unpaired": len(ca) + len(cb), "verdict": f"only {only}"})
            continue
        diffs, unpaired = paired_seed_differences(ca, cb)
        s = summarise(diffs)
        per_seed[row] = diffs
        out.append({"a": a, "b": b, "row": row, **s.as_dict(), "unpaired": unpaired, "verdict": _verdict(s, a, b)})
    table = pd.DataFrame(out, columns=COMPARISON_COLUMNS)
    usable = [r for r in rows if r in per_seed and per_seed[r].count() >= 2]
    skipped = tuple(r for r in rows if r not in usable)
    if not usable:
        paired = {s for d in per_seed.values() for s in d.index}
        missing = (
            f"fewer than 2 paired seeds at every {_xname(layout)} (`{a}` seeds: {_seeds(da)}; `{b}` seeds: "
            f"{_seeds(db)}; paired: {', '.join(map(str, sorted(paired))) or 'none'})"
        )
        return Comparison(a, b, paper_at, table, None, missing, skipped)
    diffs = pd.DataFrame({r: per_seed[r] for r in usable})
    return Comparison(a, b, paper_at, table, bootstrap_crossover(diffs, usable), "", skipped)


def _xname(layout: Layout) -> str:
    return "OE size" if layout.rows == "oe_size" else layout.rows


def _ci(low: float, high: float) -> str:
    return "–" if pd.isna(low) else f"[{low:+.1f}, {high:+.1f}]"


def comparison_markdown(cmp: Comparison, layout: Layout, paper_comparable: bool = True) -> list[str]:
    """The comparison section: the crossover sentence (or what is missing), then the paired table."""
    a, b, x = cmp.a, cmp.b, _xname(layout)
    paper = f"paper: about {cmp.paper_at}" + ("" if paper_comparable else ", in another data/schedule setting")
    lines = [f"### `{b}` vs `{a}` on paired seeds", ""]
    if cmp.crossover is None:
        lines.append(f"No crossover is computed: {cmp.missing} ({paper}).")
    else:
        c = cmp.crossover
        last = [r for r in cmp.rows["row"] if r not in cmp.skipped][-1]
        said = (
            f"`{b}` catches up with `{a}` at {x} **{c.at}**"
            if c.at != NEVER
            else f"`{b}` does **not** catch up with `{a}` at any {x} run (up to {last})"
        )
        low, high = (f"beyond {last}" if v == NEVER else v for v in (c.low, c.high))
        lines.append(
            f"{said} ({paper}); 95 % bootstrap interval {low} – {high} "
            f"({c.seeds} paired seeds resampled {c.resamples} times, generator seed {c.seed}; "
            f"in {c.never_share:.0%} of the resamples `{b}` does not catch up within the {x}s run)."
        )
        if cmp.skipped:
            lines.append(f"Left out of the crossover (fewer than 2 paired seeds): {x} {', '.join(cmp.skipped)}.")
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
            f"Paired: per seed, the mean over the classes both columns hold for that seed of ({b} − {a}); then mean, "
            "sample sd and 95 % t-interval over those seeds. Records without a partner (same seed and class in the "
            "other column) are counted as unpaired and left out.",
        ]
    return lines

"""The paper's table of one experiment: our numbers over seeds next to the paper's value and the difference.

Each cell summarises per-seed values (:mod:`oe_ad.report.stats`): n, and for n ≥ 2 the sample sd and the 95 %
t-interval; a cell with fewer seeds or classes than the experiment's sweep asks for is marked incomplete
(:mod:`oe_ad.report.expected`). The difference to the paper (Δ) is shown only for columns whose records were run
in the setting of the paper's numbers (data, OE set, schedule); otherwise the paper's value is labelled
``paper (different data/schedule)`` and a note says exactly which keys differ.
"""

from collections import Counter

import numpy as np
import pandas as pd

from ..errors import OEADError
from ..experiments import EXPERIMENT_DIR
from .expected import Expected, differences, expected
from .layout import Layout
from .stats import FOOTNOTE, fmt_cell, per_seed_class_mean, summarise
from .tables import column_sort, row_sort, value_label

BARE = ("method", "found")  # column keys shown by value only ("hsc best"); others as key=value
PAPER_DIFFERENT = "paper (different data/schedule)"
TABLE_COLUMNS = [
    *("experiment", "column", "row", "mean", "std", "ci_low", "ci_high", "n", "seeds_expected", "classes"),
    *("classes_expected", "complete", "paper", "diff", "paper_comparable", "differs"),
]


def labelled(df: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """``df`` with the ``column`` and ``row`` labels of each record in the layout."""
    df = df.copy()
    df["column"] = [
        " ".join(value_label(v) if k in BARE else f"{k}={value_label(v)}" for k, v in zip(layout.columns, vals))
        for vals in zip(*(df[k] for k in layout.columns))
    ]
    if "variant" in df:  # another config than the layout's columns say: its own column, never pooled
        df["column"] = [f"{c} {v}" if isinstance(v, str) and v else c for c, v in zip(df["column"], df["variant"])]
    df["row"] = df["class_name"] if layout.rows == "class" else df[layout.rows].map(value_label)
    return df


def class_names(df: pd.DataFrame, layout: Layout) -> dict[int, str]:
    """Class index -> name, from the records; ``class <i>`` for an index the paper lists but no record has."""
    names = {int(i): str(n) for i, n in zip(df.get("normal_class", []), df.get("class_name", [])) if pd.notna(i)}
    for values in layout.paper_classes.values():
        for i in range(len(values)):
            names.setdefault(i, f"class {i}")
    return dict(sorted(names.items()))


def paper_values(df: pd.DataFrame, layout: Layout) -> dict[str, dict[str, float]]:
    """Column label -> row label -> the paper's value, per-class values named by the records' class names."""
    names = class_names(df, layout)
    out = {c: dict(rows) for c, rows in layout.paper.items()}
    for column, values in layout.paper_classes.items():
        out.setdefault(column, {}).update({names[i]: v for i, v in enumerate(values)})
    return out


def check_paper_classes(name: str, layout: Layout, exp: Expected) -> None:
    """A ``classes:`` list must hold one value per class the experiment runs (an error naming the key if not)."""
    for column, values in layout.paper_classes.items():
        if len(values) != exp.classes:
            raise OEADError(
                f"{EXPERIMENT_DIR / exp.stem}.yaml: report.paper.{column}.classes: needs one value per class "
                f"the experiment runs ({exp.classes}), has {len(values)}"
            )


def _expectations(name: str, df: pd.DataFrame) -> dict[str, Expected | None]:
    return {m: expected(name, m) for m in dict.fromkeys(df["method"])} if "method" in df else {}


def _setting(block: pd.DataFrame, exps: dict[str, Expected | None]) -> str:
    """What the column's records differ in from the paper's setting: ``epochs=10 (paper: 200)`` per key, with
    ``in 3 of 28 records`` when not all of them differ ('' when none does)."""
    found: Counter = Counter()
    configs = block["_config"] if "_config" in block else [{}] * len(block)  # a frame without the records' configs
    for method, config in zip(block["method"], configs):
        exp = exps.get(method)
        if exp is None:
            found[("setting", "unknown", f"no experiment config composes for method {method}")] += 1
        else:
            found.update(differences(config, exp))
    total = len(block)
    return ", ".join(
        f"{k}={ours} (paper: {theirs})" + ("" if c == total else f" in {c} of {total} records")
        for (k, ours, theirs), c in found.items()
    )


def _completeness(cell: pd.DataFrame, per_class: bool, seeds: int | None, classes: int | None) -> dict:
    """The seeds and classes a cell asks for and holds (a mean over classes: the fewest classes of its seeds);
    ``complete`` is None when the experiment's sweep is unknown."""
    n = cell["seed"].nunique()
    k = 1 if per_class else int(cell.groupby("seed")["normal_class"].nunique().min())
    expected_k = 1 if per_class else classes
    complete = None if seeds is None else bool(n >= seeds and (expected_k is None or k >= expected_k))
    return {"seeds_expected": seeds, "classes": k, "classes_expected": expected_k, "complete": complete}


def paper_table(df: pd.DataFrame, name: str, layout: Layout) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, per_class): ``table`` has one row per (row, column) cell in the paper's layout: our mean, sd,
    95 % t-interval and n over seeds (a class mean is taken per seed first), whether the cell is complete, the
    paper's value, and our difference where the column's records match the paper's setting (``differs`` names
    what does not). ``per_class`` is the same per normal class (for the per-class panels)."""
    df = labelled(df, layout)
    exps = _expectations(name, df)
    for exp in exps.values():
        if exp is not None:
            check_paper_classes(name, layout, exp)
    paper = paper_values(df, layout)
    cells, per_class = [], []
    for col, block in df.groupby("column", sort=False):
        known = [exps[m] for m in dict.fromkeys(block["method"]) if exps.get(m) is not None]
        seeds = max((e.seeds for e in known), default=None)
        classes = max((e.classes for e in known), default=None)
        differs = _setting(block, exps)
        shared = {"column": col, "paper_comparable": not differs, "differs": differs}
        for row, cell in block.groupby("row", sort=False):
            for (idx, cls), vals in cell.groupby(["normal_class", "class_name"]):
                s = summarise(vals.groupby("seed")["auc"].mean())
                per_class.append({"column": col, "row": row, "normal_class": idx, "class": cls, **s.as_dict()})
            if layout.rows != "class":  # a mean over classes per seed, then over seeds
                s = summarise(per_seed_class_mean(cell))
                cells.append({**shared, "row": row, **s.as_dict(), **_completeness(cell, False, seeds, classes)})
        if layout.rows == "class":
            for (_idx, cls), cell in block.groupby(["normal_class", "class_name"]):
                s = summarise(cell.groupby("seed")["auc"].mean())
                cells.append({**shared, "row": cls, **s.as_dict(), **_completeness(cell, True, seeds, classes)})
            s = summarise(per_seed_class_mean(block))
            cells.append({**shared, "row": "mean", **s.as_dict(), **_completeness(block, False, seeds, classes)})
    have = {(c["column"], c["row"]) for c in cells}
    cells += [
        {"column": c, "row": r, "mean": np.nan, "n": 0, "paper_comparable": True, "differs": ""}
        for c, rows in paper.items()
        for r in rows
        if (c, r) not in have
    ]
    table = pd.DataFrame(cells, columns=TABLE_COLUMNS)
    for count in ("n", "seeds_expected", "classes", "classes_expected"):
        table[count] = table[count].astype("Int64")  # counts stay whole numbers next to missing ones
    table["paper"] = [paper.get(c, {}).get(r, np.nan) for c, r in zip(table["column"], table["row"])]
    table["diff"] = (table["mean"] - table["paper"]).where(table["paper_comparable"].astype(bool))
    table["experiment"] = name
    return _ordered(table, df, layout), pd.DataFrame(per_class)


def label_sort(label: str) -> tuple:
    """Columns in the paper's method order, then by the other keys' values (``hsc oe_size=16``)."""
    return column_sort(tuple(part.partition("=")[2] or part for part in label.split(" ")))


def row_order(table: pd.DataFrame, df: pd.DataFrame, layout: Layout) -> list[str]:
    """Every row label of ``table`` in order: classes by index then ``mean``; else numerically, ``full`` last."""
    rows = list(dict.fromkeys(table["row"]))
    if layout.rows == "class":
        names = list(class_names(df, layout).values())
        order = {r: k for k, r in enumerate([*names, "mean"])}
        return sorted(rows, key=lambda r: (order.get(r, len(order)), r))
    return sorted(rows, key=row_sort)


def _ordered(table: pd.DataFrame, df: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Rows in :func:`row_order`, within a row the columns in the paper's method order."""
    rank = {r: k for k, r in enumerate(row_order(table, df, layout))}
    table = table.assign(_c=table["column"].map(label_sort), _r=table["row"].map(rank))
    return table.sort_values(["_r", "_c"], kind="stable").drop(columns=["_c", "_r"]).reset_index(drop=True)


def _num(v: float, digits: int = 1, signed: bool = False) -> str:
    return "–" if pd.isna(v) else f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def setting_note(table: pd.DataFrame) -> str:
    """One paragraph naming what differs from the paper's setting, per column ('' if every column matches)."""
    by_difference: dict[str, list[str]] = {}
    for column, differs in dict(zip(table["column"], table["differs"])).items():
        if isinstance(differs, str) and differs:
            by_difference.setdefault(differs, []).append(f"`{column}`")
    if not by_difference:
        return ""
    return "\n".join(
        [
            f"**Not the paper's setting**: the paper's values are shown as `{PAPER_DIFFERENT}`, without Δ, for the "
            "columns whose records differ from the data, OE set or schedule of the paper's numbers (the "
            "experiment's config as `make <experiment>` runs it):",
            "",
            *(f"- {', '.join(cols)}: {differs}" for differs, cols in by_difference.items()),
        ]
    )


def paper_markdown(table: pd.DataFrame, name: str, layout: Layout, extra: list[str] | None = None) -> str:
    """The table in the paper's layout: per column, ours (:func:`stats.fmt_cell`), the paper's value and Δ (only
    where the records match the paper's setting), then the footnotes and ``extra`` lines (the comparisons)."""
    cols = sorted(dict.fromkeys(table["column"]), key=label_sort)
    rows = list(dict.fromkeys(table["row"]))  # paper_table sorted them: classes then mean, or numerically
    cell = {(c, r): t for c, r, t in zip(table["column"], table["row"], table.itertuples())}
    comparable = {c: bool(table[table["column"] == c]["paper_comparable"].all()) for c in cols}
    header = [layout.rows if layout.rows != "class" else "class"]
    for c in cols:
        header += [f"{c} (ours)", "paper", "Δ"] if comparable[c] else [f"{c} (ours)", PAPER_DIFFERENT]
    lines = [f"## {layout.title}", "", f"Experiment `{name}`; AUC in %.", ""]
    if layout.note:
        lines += [layout.note, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out = [f"**{r}**" if r == "mean" else r]
        for c in cols:
            t = cell.get((c, r))
            width = 3 if comparable[c] else 2
            if t is None:
                out += [""] * width
                continue
            out += [fmt_cell(t), _num(t.paper)]
            if comparable[c]:
                out.append(_num(t.diff, signed=True))
        lines.append("| " + " | ".join(out) + " |")
    lines += ["", FOOTNOTE]
    note = setting_note(table)
    if note:
        lines += ["", note]
    if extra:
        lines += ["", *extra]
    return "\n".join(lines) + "\n"

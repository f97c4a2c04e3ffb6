"""The paper's table of one experiment: our mean ± std over seeds next to the paper's value and the difference."""

import numpy as np
import pandas as pd

from .layout import Layout
from .tables import column_sort, row_sort, value_label

BARE = ("method", "found")  # column keys shown by value only ("hsc best"); others as key=value


def labelled(df: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """``df`` with the ``column`` and ``row`` labels of each record in the layout."""
    df = df.copy()
    df["column"] = [
        " ".join(value_label(v) if k in BARE else f"{k}={value_label(v)}" for k, v in zip(layout.columns, vals))
        for vals in zip(*(df[k] for k in layout.columns))
    ]
    df["row"] = df["class_name"] if layout.rows == "class" else df[layout.rows].map(value_label)
    return df


def _mean_std(values: pd.Series) -> dict:
    return {"mean": values.mean(), "std": values.std(ddof=0), "n": int(values.count())}


def paper_table(df: pd.DataFrame, name: str, layout: Layout) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, per_class): ``table`` has one row per (row, column) cell in the paper's layout with our mean ± std
    (over seeds; the class mean is taken per seed first), ``n``, the paper's value and our difference.
    ``per_class`` is the same per normal class (for the per-class panels)."""
    df = labelled(df, layout)
    cells, per_class = [], []
    for col, block in df.groupby("column", sort=False):
        for row, cell in block.groupby("row", sort=False):
            by_class = cell.groupby(["normal_class", "class_name"])["auc"]
            for (idx, cls), vals in by_class:
                per_class.append({"column": col, "row": row, "normal_class": idx, "class": cls, **_mean_std(vals)})
            if layout.rows != "class":  # a mean over classes per seed, then mean ± std over seeds
                cells.append({"column": col, "row": row, **_mean_std(cell.groupby("seed")["auc"].mean())})
        if layout.rows == "class":
            for (_idx, cls), vals in block.groupby(["normal_class", "class_name"])["auc"]:
                cells.append({"column": col, "row": cls, **_mean_std(vals)})
            seed_means = block.groupby("seed")["auc"].mean()
            cells.append({"column": col, "row": "mean", **_mean_std(seed_means)})
    table = pd.DataFrame(cells, columns=["column", "row", "mean", "std", "n"])
    have = set(zip(table["column"], table["row"]))
    missing = [
        {"column": c, "row": r, "mean": np.nan, "std": np.nan, "n": 0}
        for c, rows in layout.paper.items()
        for r in rows
        if (c, r) not in have
    ]
    if missing:
        table = pd.concat([table, pd.DataFrame(missing)], ignore_index=True)
    table["paper"] = [layout.paper.get(c, {}).get(r, np.nan) for c, r in zip(table["column"], table["row"])]
    table["diff"] = table["mean"] - table["paper"]
    table.insert(0, "experiment", name)
    return _ordered(table, df, layout), pd.DataFrame(per_class)


def label_sort(label: str) -> tuple:
    """Columns in the paper's method order, then by the other keys' values (``hsc oe_size=16``)."""
    return column_sort(tuple(part.partition("=")[2] or part for part in label.split(" ")))


def _ordered(table: pd.DataFrame, df: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    if layout.rows == "class":
        classes = df.sort_values("normal_class").drop_duplicates("class_name")["class_name"].tolist()
        row_key = {r: k for k, r in enumerate([*classes, "mean"])}
        rkey = table["row"].map(lambda r: (row_key.get(r, len(row_key)), 0.0, r))
    else:
        rkey = table["row"].map(row_sort)
    table = table.assign(_c=table["column"].map(label_sort), _r=rkey)
    return table.sort_values(["_c", "_r"], kind="stable").drop(columns=["_c", "_r"]).reset_index(drop=True)


def crossover(table: pd.DataFrame, a: str, b: str) -> str | None:
    """The first swept value (in order) at which column ``b`` is at least as good as ``a``; None if never."""
    pair = table[table["column"].isin([a, b])].pivot_table(index="row", columns="column", values="mean")
    if a not in pair or b not in pair:
        return None
    for row in sorted(pair.index, key=row_sort):
        if row != "none" and pair.loc[row, b] >= pair.loc[row, a]:
            return row
    return None


def _num(v: float, digits: int = 1, signed: bool = False) -> str:
    return "–" if pd.isna(v) else f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def paper_markdown(table: pd.DataFrame, name: str, layout: Layout) -> str:
    """The table in the paper's layout: per column, ours (mean ± std over seeds), the paper's value, Δ."""
    cols = list(dict.fromkeys(table["column"]))
    rows = list(dict.fromkeys(table["row"]))
    cell = {(c, r): t for c, r, t in zip(table["column"], table["row"], table.itertuples())}
    header = [layout.rows if layout.rows != "class" else "class"]
    for c in cols:
        header += [f"{c} (ours)", "paper", "Δ"]
    lines = [f"## {layout.title}", "", f"Experiment `{name}`; AUC in %, ours = mean ± std over seeds.", ""]
    if layout.note:
        lines += [layout.note, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out = [f"**{r}**" if r == "mean" else r]
        for c in cols:
            t = cell.get((c, r))
            if t is None:
                out += ["", "", ""]
                continue
            ours = "–" if pd.isna(t.mean) else f"{t.mean:.1f} ± {t.std:.1f}"
            out += [ours, _num(t.paper), _num(t.diff, signed=True)]
        lines.append("| " + " | ".join(out) + " |")
    if layout.crossover:
        a, b, paper_x = layout.crossover
        ours_x = crossover(table, a, b)
        lines += ["", f"{b} catches up with {a} at OE size **{ours_x or 'never'}** (paper: about {paper_x})."]
    return "\n".join(lines) + "\n"

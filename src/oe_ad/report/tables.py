"""The generic report of any records folder: per normal class, mean ± std AUC (%) over seeds, as markdown."""

from pathlib import Path

import numpy as np
import pandas as pd

from .records import SETTING, group_by_setting, load_records

METHOD_ORDER = ["deep_svdd", "clip_zero_shot", "deep_sad", "hsc", "focal", "bce", "clip_bce"]


def value_label(v) -> str:
    """A row/column label for a swept value: ``2`` not ``2.0``, ``full``/``none`` for OE sizes as they are."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, float, np.integer, np.floating)) and not pd.isna(v):
        return str(int(v)) if float(v).is_integer() else f"{float(v):g}"
    return str(v)


def row_sort(v: str) -> tuple:
    """Sort key of a swept value's label: ``none`` first, then numbers ascending, then text, ``full`` last."""
    if v == "none":
        return (0, 0.0, v)
    if v == "full":
        return (2, 0.0, v)
    try:
        return (1, float(v), v)
    except ValueError:
        return (1, float("inf"), v)


def column_sort(values: tuple) -> tuple:
    """Sort key of a column's values: methods in the paper's order, other values as :func:`row_sort`."""
    return tuple(
        (METHOD_ORDER.index(v) if v in METHOD_ORDER else len(METHOD_ORDER), *row_sort(value_label(v))) for v in values
    )


def _oe_sort_key(col: pd.Series) -> pd.Series:
    if col.name == "oe_size":
        return col.map(lambda v: row_sort(v)[:2])
    return col


def per_class(df: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (data, benchmark, method, oe_size, class) with mean/std/n over seeds."""
    g = group_by_setting(df, within=("normal_class", "class_name"))["auc"]
    out = g.agg(mean="mean", std=lambda s: s.std(ddof=0), n="count").reset_index()
    return out.sort_values([*SETTING, "normal_class"], key=_oe_sort_key).reset_index(drop=True)


def fmt(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}"


def markdown_tables(long: pd.DataFrame) -> str:
    """One markdown table per (data, benchmark): rows = classes (+ mean), columns = method / OE size."""
    parts = []
    for (data, bench), block in long.groupby(["data", "benchmark"], sort=False):
        cols = list(dict.fromkeys(zip(block["method"], block["oe_size"])))
        classes = list(dict.fromkeys(zip(block["normal_class"], block["class_name"])))
        header = ["class", *[f"{m} (OE {o})" for m, o in cols]]
        lines = [f"## {data}, {bench}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for idx, name in classes:
            cells = []
            for m, o in cols:
                row = block[(block.method == m) & (block.oe_size == o) & (block.normal_class == idx)]
                cells.append(
                    fmt(row["mean"].iloc[0], row["std"].iloc[0]) + f" (n={row['n'].iloc[0]})" if len(row) else "–"
                )
            lines.append(f"| {idx}: {name} | " + " | ".join(cells) + " |")
        means = [block[(block.method == m) & (block.oe_size == o)]["mean"].mean() for m, o in cols]
        lines.append("| **mean** | " + " | ".join(f"**{v:.1f}**" for v in means) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def build_report(root: Path) -> tuple[pd.DataFrame, str]:
    """(long table, markdown) of every job record under ``root``."""
    df = load_records(root)
    if df.empty:
        return df, "No result records found.\n"
    long = per_class(df)
    md = f"# Results under {root}\n\n{len(df)} records; AUC in %, mean ± std over seeds.\n\n" + markdown_tables(long)
    return long, md

"""The generic report of any records folder: per normal class, the metric (%) over seeds with n and a t-interval."""

from pathlib import Path

import numpy as np
import pandas as pd

from .metric import DEFAULT, METRICS
from .records import CONFIG, SETTING, SHOWN, group_by_setting, load_records
from .stats import fmt_cell, footnote, per_seed_class_mean, summarise

STAT_COLUMNS = ["mean", "std", "ci_low", "ci_high", "n"]

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
    if col.name == "method":
        return col.map(lambda v: (METHOD_ORDER.index(v) if v in METHOD_ORDER else len(METHOD_ORDER), v))
    return col


def per_class(df: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (setting, class) with mean, sample sd, 95 % t-interval and n = the number of
    distinct seeds (a seed's records of one class are averaged first; :mod:`oe_ad.report.stats`)."""
    rows = []
    for key, block in group_by_setting(df, within=("normal_class", "class_name")):
        s = summarise(block.dropna(subset=["value"]).groupby("seed")["value"].mean())
        rows.append({**dict(zip([*SHOWN, "normal_class", "class_name", *CONFIG], key)), **s.as_dict()})
    out = pd.DataFrame(rows, columns=[*SHOWN, "normal_class", "class_name", *CONFIG, *STAT_COLUMNS])
    return out.sort_values([*SETTING, "normal_class"], key=_oe_sort_key).reset_index(drop=True)


def markdown_tables(df: pd.DataFrame, long: pd.DataFrame) -> str:
    """One markdown table per (data, benchmark): rows = classes (by index) + their mean, columns = method / OE
    size in the paper's method order and numerically (``full`` last); every cell shows n."""
    parts = []
    for (data, bench), block in long.groupby(["data", "benchmark"], sort=False):
        cols = list(dict.fromkeys(zip(block["method"], block["oe_size"], block["variant"])))
        classes = sorted(dict.fromkeys(zip(block["normal_class"], block["class_name"])))
        header = ["class", *[f"{m} (OE {o})" + (f" {v}" if v else "") for m, o, v in cols]]
        lines = [f"## {data}, {bench}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for idx, name in classes:
            cells = []
            for m, o, v in cols:
                row = block[
                    (block.method == m) & (block.oe_size == o) & (block.variant == v) & (block.normal_class == idx)
                ]
                cells.append(fmt_cell(row.iloc[0]) if len(row) else "–")
            lines.append(f"| {idx}: {name} | " + " | ".join(cells) + " |")
        means = []
        for m, o, v in cols:
            recs = df[(df.data == data) & (df.benchmark == bench) & (df.method == m) & (df.oe_size == o)]
            recs = recs[recs.variant == v]
            k = recs["normal_class"].nunique()
            over = "" if k == len(classes) else f" over {k} of the {len(classes)} classes"
            means.append(f"**{fmt_cell(summarise(per_seed_class_mean(recs)))}**{over}")
        lines.append("| **mean** | " + " | ".join(means) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def plural(n: int, word: str) -> str:
    """``1 record``, ``2 records``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def build_report(root: Path, metric: str = DEFAULT) -> tuple[pd.DataFrame, str]:
    """(long table, markdown) of every job record under ``root``, in ``metric`` (records lacking it: missing)."""
    df = load_records(root, metric=metric)
    if df.empty:
        return df, "No result records found.\n"
    long = per_class(df)
    lacking = int(df["value"].isna().sum())
    without = f" {plural(lacking, 'record')} lack {METRICS[metric].label} (shown as missing)." if lacking else ""
    head = f"# Results under {root}\n\n{plural(len(df), 'record')}. {METRICS[metric].sentence}{without} "
    return long, head + footnote(metric) + "\n\n" + markdown_tables(df, long)

"""Tables from result records: ``python -m oe_ad.report DIR``.

Reads every ``result.json`` under DIR and writes ``DIR/report.md`` and ``DIR/report.csv``: per normal
class, mean ± std AUC (%) over seeds, for each (method, OE size), plus the mean over classes.
Records are the source of truth; nothing here reads W&B.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

from .results import iter_records, write_text_atomic

GROUP = ["data", "benchmark", "method", "oe_size"]


def load_records(root: Path) -> pd.DataFrame:
    rows = [
        {k: r.get(k) for k in (*GROUP, "normal_class", "class_name", "seed", "test_auroc", "oe")}
        for r in iter_records(root)
    ]
    df = pd.DataFrame(rows)
    if not df.empty:
        full = df["oe_size"].map(lambda v: "full" if v is None or pd.isna(v) else str(int(v)))
        df["oe_size"] = full.where(df["oe"] != "none", "none")
        df["auc"] = 100 * df["test_auroc"]
    return df


def per_class(df: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per (data, benchmark, method, oe_size, class) with mean/std/n over seeds."""
    g = df.groupby([*GROUP, "normal_class", "class_name"], dropna=False)["auc"]
    out = g.agg(mean="mean", std=lambda s: s.std(ddof=0), n="count").reset_index()
    return out.sort_values([*GROUP, "normal_class"], key=_oe_sort_key).reset_index(drop=True)


def _oe_sort_key(col: pd.Series) -> pd.Series:
    if col.name == "oe_size":
        return col.map(lambda v: {"none": -1.0, "full": float("inf")}.get(v) or float(v))
    return col


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
    df = load_records(root)
    if df.empty:
        return df, "No result records found.\n"
    long = per_class(df)
    md = f"# Results under {root}\n\n{len(df)} records; AUC in %, mean ± std over seeds.\n\n" + markdown_tables(long)
    return long, md


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m oe_ad.report", description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="folder holding result.json records (searched recursively)")
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        print(f"error: {args.dir}: no such directory", file=sys.stderr)
        return 2
    long, md = build_report(args.dir)
    print(md)
    write_text_atomic(args.dir / "report.md", md)
    write_text_atomic(args.dir / "report.csv", long.to_csv(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

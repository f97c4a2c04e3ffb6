"""Tables and figures from result records: ``python -m oe_ad.report DIR [--experiment NAME] [--wandb] [--roc]``.

Reads every ``result.json`` under DIR and writes ``DIR/report.md`` and ``DIR/report.csv``: per normal
class, mean ± std AUC (%) over seeds, for each (method, OE size), plus the mean over classes.
When DIR holds a paper experiment (``runs/<name>/`` of ``oe_ad/conf/experiment/<name>.yaml``; the name comes from the
records or ``--experiment``), it also writes the paper's table with the paper's values and our difference
(``paper.md``, ``paper.csv``, on top of ``report.md``) and its figures (``*.png``); ``--wandb`` logs that summary
as one W&B run (docs/wandb.md); ``--roc`` draws the jobs' ROC curves into ``roc.png``. Records are the
source of truth; nothing here reads W&B.
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from .paper import EXPERIMENTS, Layout
from .results import iter_records, write_text_atomic

GROUP = ["data", "benchmark", "method", "oe_size"]
METHOD_ORDER = ["deep_svdd", "clip_zero_shot", "deep_sad", "hsc", "focal", "bce", "clip_bce"]
BARE = ("method", "found")  # column keys shown by value only ("hsc best"); others as key=value
SEARCH_RECORD = "search.json"


def _config_value(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def load_records(root: Path, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per record; ``extra`` adds columns read from the record's config by dotted key."""
    rows = [
        {
            **{k: r.get(k) for k in (*GROUP, "normal_class", "class_name", "seed", "test_auroc", "oe")},
            **{k: _config_value(r.get("config", {}), k) for k in extra},
        }
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
        return col.map(lambda v: _row_sort(v)[:2])
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


# -- the paper's layout ---------------------------------------------------------------------------------


def load_search_records(root: Path) -> pd.DataFrame:
    """One row per finished search (``search.json``): the AUC of the fittest image of its final generation."""
    rows = []
    for path in sorted(Path(root).rglob(SEARCH_RECORD)):
        r = json.loads(path.read_text())
        found = "best" if r["direction"] == "max" else "worst"
        rows.append({**{k: r.get(k) for k in ("method", "normal_class", "class_name", "seed", "data")}, "found": found})
        rows[-1].update(auc=100 * r["best_fitness"], oe="search", _dir=str(path.parent))
    return pd.DataFrame(rows)


def value_label(v) -> str:
    """A row/column label for a swept value: ``2`` not ``2.0``, ``full``/``none`` for OE sizes as they are."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, float, np.integer, np.floating)) and not pd.isna(v):
        return str(int(v)) if float(v).is_integer() else f"{float(v):g}"
    return str(v)


def _row_sort(v: str) -> tuple:
    if v == "none":
        return (0, 0.0, v)
    if v == "full":
        return (2, 0.0, v)
    try:
        return (1, float(v), v)
    except ValueError:
        return (1, float("inf"), v)


def _column_sort(values: tuple) -> tuple:
    return tuple(
        (METHOD_ORDER.index(v) if v in METHOD_ORDER else len(METHOD_ORDER), *_row_sort(value_label(v))) for v in values
    )


def _labelled(df: pd.DataFrame, layout: Layout) -> pd.DataFrame:
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
    df = _labelled(df, layout)
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


def _label_sort(label: str) -> tuple:
    """Columns in the paper's method order, then by the other keys' values (``hsc oe_size=16``)."""
    return _column_sort(tuple(part.partition("=")[2] or part for part in label.split(" ")))


def _ordered(table: pd.DataFrame, df: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    if layout.rows == "class":
        classes = df.sort_values("normal_class").drop_duplicates("class_name")["class_name"].tolist()
        row_key = {r: k for k, r in enumerate([*classes, "mean"])}
        rkey = table["row"].map(lambda r: (row_key.get(r, len(row_key)), 0.0, r))
    else:
        rkey = table["row"].map(_row_sort)
    table = table.assign(_c=table["column"].map(_label_sort), _r=rkey)
    return table.sort_values(["_c", "_r"], kind="stable").drop(columns=["_c", "_r"]).reset_index(drop=True)


def crossover(table: pd.DataFrame, a: str, b: str) -> str | None:
    """The first swept value (in order) at which column ``b`` is at least as good as ``a``; None if never."""
    pair = table[table["column"].isin([a, b])].pivot_table(index="row", columns="column", values="mean")
    if a not in pair or b not in pair:
        return None
    for row in sorted(pair.index, key=_row_sort):
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


def experiment_figures(
    table: pd.DataFrame, per_class: pd.DataFrame, df: pd.DataFrame, root: Path, name: str, layout: Layout
) -> list[Path]:
    """The experiment's PNGs: the curve and its per-class panels, or the best/worst image grid."""
    from .figures import curve_figure, per_class_figure

    out: list[Path] = []
    if layout.plot == "curve":
        x = sorted({r for r in table.dropna(subset=["mean"])["row"] if r != "none"}, key=_row_sort)
        xlabel = "OE size" if layout.rows == "oe_size" else layout.rows
        ours = table.dropna(subset=["mean"])
        out.append(curve_figure(ours, x, root / f"{name}.png", layout.title, xlabel, layout.log2))
        if not per_class.empty:
            path = root / f"{name}-per-class.png"
            out.append(per_class_figure(per_class, x, path, name, xlabel, layout.log2))
    elif layout.plot == "grid" and not df.empty:
        out.append(search_grid(_labelled(df, layout), root / f"{name}-images.png"))
    return out


def search_grid(df: pd.DataFrame, path: Path) -> Path:
    """Figure 5: per class (rows) and (method, best/worst) (columns), the fittest image found and its AUC."""
    from .figures import image_grid

    cols = sorted(dict.fromkeys(df["column"]), key=_label_sort)
    classes = df.sort_values("normal_class").drop_duplicates("normal_class")
    images, labels, blank = [], [], None
    for _, cls in classes.iterrows():
        for c in cols:
            hit = df[(df["normal_class"] == cls["normal_class"]) & (df["column"] == c)]
            if len(hit):
                best = hit.sort_values("auc", ascending=c.endswith("worst")).iloc[0]
                img = np.load(Path(best["_dir"]) / "final_images.npy")[0]
                blank = np.full_like(img, 255)
                images.append(img), labels.append(f"{c} {best['auc']:.1f}")
            else:
                images.append(None), labels.append(f"{c} –")
    images = [blank if im is None else im for im in images]
    return image_grid(np.stack(images), labels, path, ncols=len(cols), row_names=classes["class_name"].tolist())


def detect_experiment(root: Path) -> str | None:
    """The paper experiment a folder holds: the records' ``name`` if known, else the folder's name."""
    names = Counter(r.get("config", {}).get("name") for r in iter_records(root))
    for path in Path(root).rglob(SEARCH_RECORD):
        names[json.loads(path.read_text()).get("config", {}).get("name")] += 1
    for name, _ in names.most_common():
        if name in EXPERIMENTS:
            return name
    return root.resolve().name if root.resolve().name in EXPERIMENTS else None


def experiment_report(root: Path, name: str) -> tuple[pd.DataFrame, str, list[Path]]:
    """The paper table (long), its markdown and its figures for experiment ``name`` from the records in root."""
    layout = EXPERIMENTS[name]
    if layout.source == "search":
        df = load_search_records(root)
    else:
        keys = tuple(k for k in (layout.rows, *layout.columns) if k not in (*GROUP, "class"))
        df = load_records(root, extra=keys)
    if df.empty:
        table = paper_table(
            pd.DataFrame(columns=["auc", "seed", "normal_class", "class_name", *layout.columns]), name, layout
        )[0]
        return table, paper_markdown(table, name, layout), []
    table, per_class = paper_table(df, name, layout)
    return table, paper_markdown(table, name, layout), experiment_figures(table, per_class, df, root, name, layout)


def detect_name(root: Path) -> str:
    """The experiment name the records carry (``name=``), else the folder's name."""
    names = Counter(r.get("config", {}).get("name") for r in iter_records(root))
    return next((n for n, _ in names.most_common() if n), root.resolve().name)


def roc_report(root: Path) -> Path | None:
    """``root/roc.png``: the ROC curve of every job under ``root`` that wrote its scores."""
    from .figures import roc_figure
    from .scores import job_curves

    curves = job_curves(root)
    if not curves:
        print(f"warning: no scores.csv under {root}: no ROC figure", file=sys.stderr)
        return None
    path = roc_figure(curves, root / "roc.png", f"ROC curves under {root.name} (AUC % in brackets)")
    print(f"figure: {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m oe_ad.report", description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="folder holding result.json records (searched recursively)")
    ap.add_argument("--experiment", choices=sorted(EXPERIMENTS), help="paper layout to use (default: detected)")
    ap.add_argument(
        "--wandb", action="store_true", help="also log the summary as one W&B run per experiment (docs/wandb.md)"
    )
    ap.add_argument("--roc", action="store_true", help="also draw the ROC curves of the jobs (scores.csv) into roc.png")
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        print(f"error: {args.dir}: no such directory", file=sys.stderr)
        return 2
    long, md = build_report(args.dir)
    name = args.experiment or detect_experiment(args.dir)
    if name:
        table, paper_md, figures = experiment_report(args.dir, name)
        write_text_atomic(args.dir / "paper.md", paper_md)
        write_text_atomic(args.dir / "paper.csv", table.to_csv(index=False))
        md = paper_md + "\n" + md
        for path in figures:
            print(f"figure: {path}")
        if args.wandb:
            from .loggers.summary import log_experiment

            layout = EXPERIMENTS[name]
            log_experiment(name, args.dir, table, figures, layout.rows if layout.plot == "curve" else None, long)
    elif args.wandb and not long.empty:  # not a paper experiment: the generic table under the jobs' name
        from .loggers.summary import log_experiment

        log_experiment(detect_name(args.dir), args.dir, long, [])
    if args.roc:
        roc_report(args.dir)
    print(md)
    write_text_atomic(args.dir / "report.md", md)
    write_text_atomic(args.dir / "report.csv", long.to_csv(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

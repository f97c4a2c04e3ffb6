"""What the report shows of one folder, computed without writing a file: its tables, text and figures.

``python -m oe_ad.report`` writes them (:mod:`.cli`); a notebook displays them and saves the figures where it likes
(``notebooks/results.ipynb``). :func:`folder_view` takes any records folder: the paper experiment its records
belong to (or ``name``), else the generic per-class tables and, when the jobs vary the OE size, the mean over
classes against it drawn the same way.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .layout import Layout, paper_layouts
from .metric import DEFAULT
from .records import experiment_names


@dataclass
class View:
    """One folder's report: ``markdown`` (paper.md or report.md), ``table`` (paper.csv or report.csv), the
    per-class cells of a curve, the paired comparison, and the figures by file stem."""

    name: str
    markdown: str
    table: pd.DataFrame
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparison: Any = None
    figures: dict[str, Any] = field(default_factory=dict)  # file stem -> matplotlib Figure
    layout: Layout | None = None
    records: pd.DataFrame = field(default_factory=pd.DataFrame)


def detect_experiment(root: Path) -> str | None:
    """The paper experiment a folder holds: the records' ``name`` if known, else the folder's name."""
    layouts = paper_layouts()
    for name, _ in experiment_names(root).most_common():
        if name in layouts:
            return name
    return root.resolve().name if root.resolve().name in layouts else None


def detect_name(root: Path) -> str:
    """The experiment name the records carry (``name=``), else the folder's name."""
    return next((n for n, _ in experiment_names(root).most_common() if n), root.resolve().name)


def experiment_records(root: Path, layout: Layout, metric: str = DEFAULT) -> pd.DataFrame:
    """The records of ``root`` as the layout reads them (searches or jobs; the layout's keys as columns)."""
    from .records import SETTING, load_records, load_search_records

    if layout.source == "search":
        df = load_search_records(root, metric)
    else:
        keys = tuple(k for k in (layout.rows, *layout.columns) if k not in (*SETTING, "class"))
        along = (layout.rows,) if layout.rows != "class" else ()
        df = load_records(root, extra=keys, metric=metric, along=along)
    if df.empty:
        needed = {"value", "seed", "normal_class", "class_name", "method", "_config", *layout.columns}
        df = pd.DataFrame(columns=sorted(needed | ({layout.rows} - {"class"})))
    return df


def experiment_view(root: Path, name: str, metric: str = DEFAULT, layout: Layout | None = None) -> View:
    """The paper table, its comparison, markdown and figures of experiment ``name`` (or of ``layout``)."""
    from .compare import compare, comparison_markdown
    from .figures import experiment_plots
    from .paper import labelled, paper_markdown, paper_table

    layout = layout or paper_layouts()[name]
    df = experiment_records(root, layout, metric)
    table, per_class = paper_table(df, name, layout, metric)
    cmp = compare(labelled(df, layout), layout, metric)
    extra = []
    if cmp is not None:
        pair = table[table["column"].isin([cmp.a, cmp.b])]
        extra = comparison_markdown(cmp, layout, bool(pair["paper_comparable"].all()))
    figures = (
        {f"{name}{k}": f for k, f in experiment_plots(table, per_class, layout, metric).items()} if len(df) else {}
    )
    md = paper_markdown(table, name, layout, extra, metric)
    return View(name, md, table, per_class, cmp, figures, layout, df)


def folder_view(root: Path, name: str | None = None, metric: str = DEFAULT) -> View:
    """Any records folder: its paper experiment's view, else the generic tables (and the OE-size curve)."""
    from .tables import build_report

    name = name or detect_experiment(root)
    if name:
        return experiment_view(root, name, metric)
    long, md = build_report(root, metric)
    own = detect_name(root)
    view = View(own, md, long)
    if not long.empty and long["oe_size"].nunique() > 1:
        curve = Layout(f"{own}: mean over classes vs OE size", rows="oe_size", plot="curve", log2=True)
        drawn = experiment_view(root, own, metric, curve)
        view.figures, view.per_class = drawn.figures, drawn.per_class
    return view

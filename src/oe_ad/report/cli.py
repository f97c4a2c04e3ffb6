"""Tables and figures from result records: ``python -m oe_ad.report DIR [--experiment NAME] [--metric M]
[--wandb] [--roc]``.

Reads every ``result.json`` under DIR and writes ``DIR/report.md`` and ``DIR/report.csv``: per normal
class, the metric (``--metric``: AUROC by default, or AUPR, AUPR-In, AUPR-Out, FPR95; each table states its
convention) in % over seeds (mean, n, and for n ≥ 2 the sample sd and 95 % t-interval) for each (method, OE
size), plus the mean over classes. A folder without records is an error (exit 2) and writes nothing.
When DIR holds a paper experiment (``runs/<name>/`` of ``oe_ad/conf/experiment/<name>.yaml``; the name comes from the
records or ``--experiment``), it also writes the paper's table with the paper's values, each side's setting and
our difference where the records match the paper's setting (``paper.md``, ``paper.csv``, on top of
``report.md``), the paired comparison of its ``crossover`` columns (``comparison.csv``) and its figures
(``*.png``, and each search's ``final_generation.png``); ``--wandb`` logs that summary as one W&B run
(docs/wandb.md); ``--roc`` draws the jobs' ROC curves into ``roc.png``. Records are the source of truth; nothing
here reads W&B.

Only argparse is imported at the top (pandas, matplotlib and torch when a report is written): ``--help`` answers at
once.
"""

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli.args import ArgumentParser
from ..errors import OEADError
from .metric import DEFAULT, METRICS

if TYPE_CHECKING:
    import pandas as pd

DESCRIPTION = (
    "Tables and figures from the result records (result.json) under DIR: report.md and report.csv (per normal "
    "class, the metric over seeds with n, sd and 95 % interval, per method and OE size); for a paper experiment "
    "also the paper's table next to ours with each side's setting (paper.md, paper.csv), the paired comparison of "
    "its methods (comparison.csv) and its figures (PNG)."
)


@dataclass(frozen=True)
class ExperimentReport:
    """What the report of one paper experiment computed and wrote."""

    table: "pd.DataFrame"  # one row per cell (paper.csv)
    markdown: str  # paper.md
    figures: list[Path]
    comparison: Any  # compare.Comparison | None: the paired comparison of the layout's crossover columns


def experiment_report(root: Path, name: str, metric: str = DEFAULT) -> ExperimentReport:
    """The paper table (long), its comparison, markdown and figures for experiment ``name`` from root's records;
    the figures are written into ``root``."""
    from .figures import search_grid
    from .paper import labelled
    from .plots import save
    from .view import experiment_view

    view = experiment_view(root, name, metric)
    figures = [
        save(fig, root / f"{stem}.png", 110 if stem.endswith("per-class") else 120)
        for stem, fig in view.figures.items()
    ]
    if view.layout.plot == "grid" and len(view.records) and metric == "auroc":
        figures.append(search_grid(labelled(view.records, view.layout), root / f"{name}-images.png"))
    return ExperimentReport(view.table, view.markdown, figures, view.comparison)


def roc_report(root: Path) -> Path | None:
    """``root/roc.png``: the ROC curve of every job under ``root`` that wrote its scores."""
    from ..job.scores import job_curves
    from .groups import annotate
    from .plots import roc_figure

    curves = job_curves(root)
    if not curves:
        print(f"warning: no scores.csv under {root}: no ROC figure", file=sys.stderr)
        return None
    records = [c["record"] for c in curves]
    for curve, group in zip(curves, annotate(records, along=("oe_size",))):  # one configuration per panel
        rec = curve["record"]
        oe = "no OE" if rec.get("oe") == "none" else f"OE {rec.get('oe_size') or 'full'}"
        curve["panel"] = " · ".join(p for p in (curve["method"], oe, group["variant"]) if p)
    path = roc_figure(curves, root / "roc.png", f"ROC curves under {root.name} (positive class: the anomalies)")
    print(f"figure: {path}")
    return path


def write_reports(root: Path, experiment: str | None, wandb: bool, roc: bool = False, metric: str = DEFAULT) -> str:
    """Write the generic report and, for a paper experiment, its table and figures; return the markdown.

    ``wandb``: also log the summary as one W&B run per experiment (imported only then: no W&B for a plain report).
    A folder without result or search records is an error: nothing is written.
    """
    from ..job.records import write_text_atomic
    from .compare import COMPARISON_COLUMNS
    from .figures import search_generation_figures
    from .layout import paper_layouts
    from .records import experiment_names
    from .tables import build_report
    from .view import detect_experiment, detect_name

    long, md = build_report(root, metric)
    if long.empty and not sum(experiment_names(root).values()):
        raise OEADError(f"{root}: no result records (result.json or search.json) under it: nothing to report")
    name = experiment or detect_experiment(root)
    for path in search_generation_figures(root):
        print(f"figure: {path}")
    if name:
        rep = experiment_report(root, name, metric)
        write_text_atomic(root / "paper.md", rep.markdown)
        write_text_atomic(root / "paper.csv", rep.table.to_csv(index=False))
        if rep.comparison is not None:
            rows = rep.comparison.rows.reindex(columns=COMPARISON_COLUMNS)
            write_text_atomic(root / "comparison.csv", rows.to_csv(index=False))
        md = rep.markdown + "\n" + md
        for path in rep.figures:
            print(f"figure: {path}")
        if wandb:
            from ..loggers.summary import log_experiment

            layout = paper_layouts()[name]
            curve_of = layout.rows if layout.plot == "curve" else None
            log_experiment(name, root, rep.table, rep.figures, curve_of, long, rep.comparison)
    elif wandb and not long.empty:  # not a paper experiment: the generic table under the jobs' name
        from ..loggers.summary import log_experiment

        log_experiment(detect_name(root), root, long, [])
    if roc:
        roc_report(root)
    write_text_atomic(root / "report.md", md)
    write_text_atomic(root / "report.csv", long.to_csv(index=False))
    return md


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = ArgumentParser(prog="oe-ad-report", description=DESCRIPTION)
    ap.add_argument("dir", type=Path, metavar="DIR", help="folder holding result.json records (searched recursively)")
    ap.add_argument(
        "--experiment",
        metavar="EXPERIMENT",
        help="the paper experiment whose layout to use, e.g. fig2-cifar10 (default: detected from the records or the "
        "folder's name; `python -m oe_ad.experiments list` lists them)",
    )
    ap.add_argument(
        "--wandb", action="store_true", help="also log the summary as one W&B run per experiment (docs/wandb.md)"
    )
    ap.add_argument(
        "--metric",
        choices=sorted(METRICS),
        default=DEFAULT,
        help="the per-job metric the tables and figures show (default auroc; aupr = aupr_out: anomalies positive; "
        "aupr_in: normal images positive; fpr95: anomalies passed as normal at 95 %% of the normal images kept). "
        "The paper reports AUROC only",
    )
    ap.add_argument("--roc", action="store_true", help="also draw the jobs' ROC curves (scores.csv) into roc.png")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.experiment is not None:
            from .layout import paper_layouts

            if args.experiment not in paper_layouts():
                raise OEADError(
                    f"--experiment {args.experiment}: not a paper experiment (choose from: "
                    f"{', '.join(sorted(paper_layouts()))})"
                )
        logging.basicConfig(level=logging.WARNING, format="%(message)s")  # unreadable or duplicate records
        if not args.dir.is_dir():
            raise OEADError(f"{args.dir}: no such directory")
        print(write_reports(args.dir, args.experiment, args.wandb, args.roc, args.metric))
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0

"""Reports from result records: generic tables, the paper's tables (layouts from the experiment YAMLs), figures.

``records`` reads records into frames, ``tables`` makes the per-class report of any folder, ``stats`` holds every
statistic over seeds (t-intervals, paired differences, the bootstrapped crossover), ``layout`` reads an
experiment's ``report:`` node, ``expected`` what its sweep asks for and the setting of the paper's numbers,
``paper`` puts our numbers next to the paper's, ``compare`` sets two methods against each other on paired seeds,
``metric`` names the per-job metrics a report can show, ``plots`` draws figures and ``figures`` the
experiment's (and each search's), ``view`` computes all of it for a folder without writing (the notebook's entry
point), and ``cli`` is ``python -m oe_ad.report`` (its ``--wandb`` summary run: ``oe_ad.loggers.summary``).
The report reads records only: it imports neither the data nor the training code (tests/test_layering.py).

The names below are imported on first use (pandas, matplotlib): ``oe-ad-report --help`` answers at once.
"""

import importlib
from typing import Any

from .cli import main

_LAZY = {
    "Layout": "layout",
    "paper_layouts": "layout",
    "paper_table": "paper",
    "load_records": "records",
    "build_report": "tables",
    "per_class": "tables",
    "experiment_view": "view",
    "folder_view": "view",
}
__all__ = [
    "Layout",
    "build_report",
    "experiment_view",
    "folder_view",
    "load_records",
    "main",
    "paper_layouts",
    "paper_table",
    "per_class",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

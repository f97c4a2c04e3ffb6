"""Reports from result records: generic tables, the paper's tables (layouts from the experiment YAMLs), figures.

``records`` reads records into frames, ``tables`` makes the per-class report of any folder, ``layout`` reads an
experiment's ``report:`` node, ``paper`` puts our numbers next to the paper's, ``figures`` draws the experiment's
PNGs and ``cli`` is ``python -m oe_ad.report`` (its ``--wandb`` summary run: ``oe_ad.loggers.summary``).
"""

from .cli import main
from .layout import Layout, paper_layouts
from .paper import paper_table
from .records import load_records
from .tables import build_report, per_class

__all__ = ["Layout", "build_report", "load_records", "main", "paper_layouts", "paper_table", "per_class"]

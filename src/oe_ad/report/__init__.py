"""Reports from result records: generic tables, the paper's tables (layouts from the experiment YAMLs), figures.

``records`` reads records into frames, ``tables`` makes the per-class report of any folder, ``stats`` holds every
statistic over seeds (t-intervals, paired differences, the bootstrapped crossover), ``layout`` reads an
experiment's ``report:`` node, ``expected`` what its sweep asks for and the setting of the paper's numbers,
``paper`` puts our numbers next to the paper's, ``compare`` sets two methods against each other on paired seeds,
``plots`` draws PNGs and ``figures`` the experiment's (and each search's), and ``cli`` is ``python -m
oe_ad.report`` (its ``--wandb`` summary run: ``oe_ad.loggers.summary``). The report reads records only: it
imports neither the data nor the training code (tests/test_layering.py).
"""

from .cli import main
from .layout import Layout, paper_layouts
from .paper import paper_table
from .records import load_records
from .tables import build_report, per_class

__all__ = ["Layout", "build_report", "load_records", "main", "paper_layouts", "paper_table", "per_class"]

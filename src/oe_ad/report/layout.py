"""How an experiment's records become the paper's table: the ``report:`` node of its YAML, checked and typed.

Values are AUC in %. Row labels: a class name or ``mean`` (``rows: class``), else the label of the swept value
(``oe_size`` labels are ``1``, ``2``, …, ``full``, and ``none`` for methods without OE). Column labels join the
column keys' values (``hsc``, ``hsc best``, ``augment=True``, ``bce oe_size=16``). A column's ``classes:`` list
gives the paper's per-class values by class index (``normal_class`` 0, 1, …); the rows take their class names from
the records (``class_name``), so the report needs nothing from the data code.
"""

from dataclasses import dataclass, field, fields
from functools import cache

from ..errors import OEADError
from ..experiments import EXPERIMENT_DIR, Experiment, experiments

PLOTS = (None, "curve", "grid")


@dataclass(frozen=True)
class Layout:
    """One experiment's table (and figure) in the paper's layout."""

    title: str
    rows: str = "class"  # "class": one row per normal class plus "mean"; else a record column, mean over classes
    columns: tuple[str, ...] = ("method",)
    paper: dict[str, dict[str, float]] = field(default_factory=dict)  # column label -> row label -> AUC %
    paper_classes: dict[str, tuple[float, ...]] = field(default_factory=dict)  # column label -> AUC % by class index
    plot: str | None = None  # "curve": AUC vs `rows` with ±std bands and per-class panels; "grid": image grid
    log2: bool = False  # x axis in powers of two (OE sizes)
    crossover: tuple[str, str, float] | None = None  # (ahead, catches_up, paper's x): the first x where b >= a
    source: str = "jobs"  # "jobs": result.json records; "search": search.json records (python -m oe_ad.search)
    note: str = ""


def _paper_values(where: str, paper: dict) -> tuple[dict[str, dict[str, float]], dict[str, tuple[float, ...]]]:
    """(column -> row -> value, column -> per-class values by index) of a ``report.paper`` node."""
    rows, classes = {}, {}
    for column, cells in paper.items():
        cells = dict(cells)
        if "classes" in cells:
            values = cells.pop("classes")
            if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
                raise OEADError(f"{where}.paper.{column}.classes: needs a list of numbers, one per class index")
            classes[str(column)] = tuple(float(v) for v in values)
        rows[str(column)] = {str(row): float(v) for row, v in cells.items()}
    return rows, classes


def parse_layout(exp: Experiment) -> Layout:
    """The typed layout of an experiment's ``report:`` node; an unknown or malformed key is an error naming it."""
    where = f"{EXPERIMENT_DIR / exp.stem}.yaml: report"
    node = dict(exp.report)
    known = {f.name for f in fields(Layout)} - {"source", "paper_classes"}
    for key in node:
        if key not in known:
            raise OEADError(f"{where}.{key}: unknown key (choose from: help, {', '.join(sorted(known))})")
    if not isinstance(node.get("title"), str):
        raise OEADError(f"{where}.title: missing (every experiment that owns its folder needs a report layout)")
    if node.get("plot") not in PLOTS:
        raise OEADError(f"{where}.plot={node['plot']}: choose from curve, grid")
    if "columns" in node:
        node["columns"] = tuple(node["columns"])
    if "crossover" in node:
        c = node["crossover"]
        if not isinstance(c, dict) or set(c) != {"ahead", "catches_up", "paper"}:
            raise OEADError(f"{where}.crossover: needs ahead, catches_up and paper")
        node["crossover"] = (c["ahead"], c["catches_up"], c["paper"])
    node["paper"], node["paper_classes"] = _paper_values(where, node.get("paper") or {})
    return Layout(**node, source="search" if exp.kind == "search" else "jobs")


@cache
def paper_layouts() -> dict[str, Layout]:
    """The layout of every experiment folder (``runs/<name>/``), by name."""
    return {exp.name: parse_layout(exp) for exp in experiments().values() if exp.stem == exp.name}

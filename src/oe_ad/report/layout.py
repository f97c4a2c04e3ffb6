"""How an experiment's records become the paper's table: the ``report:`` node of its YAML, checked and typed.

Values are in % (AUROC unless ``--metric`` picks another). Row labels: a class name or ``mean`` (``rows: class``),
else the label of the swept value (``oe_size`` labels are ``1``, ``2``, …, ``full``, and ``none`` for methods
without OE). Column labels join the column keys' values (``hsc``, ``hsc best``, ``augment=True``, ``bce
oe_size=16``).

The paper's values (``report.paper``), per column: ``{row: value}`` plus, optionally, ``classes:``, the paper's
per-class values by class index (``normal_class`` 0, 1, …; for a curve, at the column's one paper row). A value
of ``null`` (or ``classes: null``) is one the paper gives that is not transcribed here: the report says so rather
than inventing it. ``report.tables`` names the paper's tables the values come from, ``report.not_in_paper`` the
columns the sweep runs that the paper gives no number for, ``report.claims`` the paper's statements about the
experiment that are not in a table. ``report.deviations`` lists where the experiment's config differs from the
setting of the paper's numbers (or from the paper's text), each with the paper's value and the reason: the
report compares a record's setting with the paper's, not with the config's. Class names come from the records.
"""

from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from ..errors import OEADError
from ..experiments import EXPERIMENT_DIR, Experiment, experiments

PLOTS = (None, "curve", "grid")
PaperClasses = tuple[float | None, ...] | None  # per class index; None: the paper gives them, not transcribed


@dataclass(frozen=True)
class Deviation:
    """One key in which the experiment's config differs from the paper (shown in its report)."""

    key: str  # a config key, e.g. oe.name
    paper: Any  # the value the paper's numbers were made with (records with it get the paper's Δ)
    why: str  # why the config keeps its own value (or what the paper's text says when the numbers agree)


@dataclass(frozen=True)
class Layout:
    """One experiment's table (and figure) in the paper's layout."""

    title: str
    rows: str = "class"  # "class": one row per normal class plus "mean"; else a record column, mean over classes
    columns: tuple[str, ...] = ("method",)
    paper: dict[str, dict[str, float | None]] = field(default_factory=dict)  # column -> row -> value (None: n.t.)
    paper_classes: dict[str, PaperClasses] = field(default_factory=dict)  # column -> per-class values by index
    plot: str | None = None  # "curve": the value vs `rows` with error bars and per-class panels; "grid": image grid
    log2: bool = False  # x axis in powers of two (OE sizes)
    crossover: tuple[str, str, float] | None = None  # (ahead, catches_up, paper's x): the first x where b >= a
    source: str = "jobs"  # "jobs": result.json records; "search": search.json records (python -m oe_ad.search)
    note: str = ""
    tables: str = ""  # the paper's tables the values come from, e.g. "Table 1 (means), Table 8 (per class)"
    not_in_paper: tuple[str, ...] = ()  # columns the sweep runs that the paper gives no value for
    claims: tuple[str, ...] = ()  # the paper's statements about this experiment that are not in a table
    deviations: tuple[Deviation, ...] = ()


def _number(where: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise OEADError(f"{where}: needs a number (or null: given by the paper, not transcribed), got {v!r}")
    return float(v)


def _paper_values(where: str, paper: dict) -> tuple[dict[str, dict[str, float | None]], dict[str, PaperClasses]]:
    """(column -> row -> value, column -> per-class values by index) of a ``report.paper`` node."""
    rows, classes = {}, {}
    for column, cells in paper.items():
        if not isinstance(cells, dict):
            raise OEADError(f"{where}.paper.{column}: needs a mapping of rows to values (and classes:)")
        cells = dict(cells)
        if "classes" in cells:
            values = cells.pop("classes")
            if values is not None and not isinstance(values, list):
                raise OEADError(f"{where}.paper.{column}.classes: needs a list of numbers, one per class index")
            key = f"{where}.paper.{column}.classes"
            classes[str(column)] = None if values is None else tuple(_number(key, v) for v in values)
        rows[str(column)] = {str(row): _number(f"{where}.paper.{column}.{row}", v) for row, v in cells.items()}
    return rows, classes


def _deviations(where: str, node: Any) -> tuple[Deviation, ...]:
    if not isinstance(node, list):
        raise OEADError(f"{where}.deviations: needs a list of {{key, paper, why}}")
    out = []
    for k, entry in enumerate(node):
        if not isinstance(entry, dict) or set(entry) != {"key", "paper", "why"} or not str(entry["why"]).strip():
            raise OEADError(f"{where}.deviations[{k}]: needs key, paper (the paper's value) and why (the reason)")
        out.append(Deviation(str(entry["key"]), entry["paper"], str(entry["why"])))
    return tuple(out)


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
    for key in ("columns", "not_in_paper", "claims"):
        if key in node:
            node[key] = tuple(str(v) for v in node[key])
    if "crossover" in node:
        c = node["crossover"]
        if not isinstance(c, dict) or set(c) != {"ahead", "catches_up", "paper"}:
            raise OEADError(f"{where}.crossover: needs ahead, catches_up and paper")
        node["crossover"] = (c["ahead"], c["catches_up"], c["paper"])
    if "deviations" in node:
        node["deviations"] = _deviations(where, node["deviations"])
    node["paper"], node["paper_classes"] = _paper_values(where, node.get("paper") or {})
    if node.get("rows", "class") != "class":
        for column in node["paper_classes"]:
            if len(node["paper"].get(column, {})) != 1:
                raise OEADError(f"{where}.paper.{column}.classes: a curve's per-class values need one paper row")
    return Layout(**node, source="search" if exp.kind == "search" else "jobs")


@cache
def paper_layouts() -> dict[str, Layout]:
    """The layout of every experiment folder (``runs/<name>/``), by name."""
    return {exp.name: parse_layout(exp) for exp in experiments().values() if exp.stem == exp.name}

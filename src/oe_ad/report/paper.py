"""The paper's table of one experiment: our numbers over seeds next to the paper's value and the difference.

Each cell summarises per-seed values (:mod:`oe_ad.report.stats`): n, and for n ≥ 2 the sample sd and the 95 %
t-interval; a cell with fewer seeds or classes than the experiment's sweep asks for is marked incomplete
(:mod:`oe_ad.report.expected`). Every column states the setting of each side (data, OE set, schedule, seeds) in
the table's first row. The difference to the paper (Δ) is shown only for columns whose records were run in the
setting of the paper's numbers (data, OE set, schedule, and every key of the experiment's ``report.deviations``)
and only for the paper's metric (AUROC); otherwise the paper's value stands beside ours without Δ and a note says
exactly what differs, and why where the experiment's config itself differs from the paper.
"""

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import OEADError
from ..experiments import EXPERIMENT_DIR
from .expected import Expected, differences, expected, label
from .layout import Layout
from .metric import DEFAULT, METRICS, PAPER_METRIC
from .records import config_value
from .stats import fmt_cell, footnote, per_seed_class_mean, spread, summarise
from .tables import column_sort, row_sort, value_label

BARE = ("method", "found")  # column keys shown by value only ("hsc best"); others as key=value
NOT_TRANSCRIBED = "not transcribed"  # the paper gives the value; it is not stored here (no number is invented)
NOT_IN_PAPER = "not in the paper"
SHARED = ("paper_comparable", "differs", "setting", "paper_setting")  # per column, the same in each of its cells
TABLE_COLUMNS = [
    *("experiment", "metric", "column", "base", "row", "mean", "std", "ci_low", "ci_high", "n", "seeds_expected"),
    *("classes", "classes_expected", "complete", "class_ids", "spread", "paper", "paper_status", "diff"),
    *("paper_comparable", "differs", "setting", "paper_setting"),
]
# How the report names OE sets (config name -> what it is)
OE_NAMES = {
    "tiny_images": "80 Million Tiny Images",
    "tiny300k": "300K random images",
    "imagenet22k": "ImageNet-22k",
    "cifar100": "CIFAR-100 classes",
    "npy": "an .npy file",
    "folder": "an image folder",
}


def labelled(df: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """``df`` with the ``column`` (with the record's variant), ``base`` (without) and ``row`` labels of each
    record in the layout."""
    df = df.copy()
    df["base"] = [
        " ".join(value_label(v) if k in BARE else f"{k}={value_label(v)}" for k, v in zip(layout.columns, vals))
        for vals in zip(*(df[k] for k in layout.columns))
    ]
    df["column"] = df["base"]
    if "variant" in df:  # another config than the layout's columns say: its own column, never pooled
        df["column"] = [f"{c} {v}" if isinstance(v, str) and v else c for c, v in zip(df["base"], df["variant"])]
    df["row"] = df["class_name"] if layout.rows == "class" else df[layout.rows].map(value_label)
    return df


def class_names(df: pd.DataFrame, layout: Layout) -> dict[int, str]:
    """Class index -> name: the dataset's class list the records carry (``classes``), else the records' own
    class names; ``class <i>`` only for an index no record names."""
    names: dict[int, str] = {}
    for listed in df.get("_classes", []):
        if isinstance(listed, (list, tuple)) and listed:
            names = {i: str(n) for i, n in enumerate(listed)}
            break
    for i, n in zip(df.get("normal_class", []), df.get("class_name", [])):
        if pd.notna(i):
            names.setdefault(int(i), str(n))
    for values in layout.paper_classes.values():
        for i in range(len(values or ())):
            names.setdefault(i, f"class {i}")
    return dict(sorted(names.items()))


def paper_values(df: pd.DataFrame, layout: Layout) -> dict[str, dict[str, float | None]]:
    """Column label -> row label -> the paper's value (None: given by the paper, not transcribed); per-class values
    of a class layout named by the records' class names. A column whose per-class values are all untranscribed
    adds no class rows (the note says so)."""
    names = class_names(df, layout)
    out = {c: dict(rows) for c, rows in layout.paper.items()}
    if layout.rows == "class":
        for column, values in layout.paper_classes.items():
            if values is not None:
                out.setdefault(column, {}).update({names[i]: v for i, v in enumerate(values)})
    return out


def check_paper_classes(name: str, layout: Layout, exp: Expected) -> None:
    """A ``classes:`` list must hold one value per class the experiment runs (an error naming the key if not)."""
    for column, values in layout.paper_classes.items():
        if values is not None and len(values) != exp.classes:
            raise OEADError(
                f"{EXPERIMENT_DIR / exp.stem}.yaml: report.paper.{column}.classes: needs one value per class "
                f"the experiment runs ({exp.classes}), has {len(values)}"
            )


def _expectations(name: str, df: pd.DataFrame) -> dict[str, Expected | None]:
    return {m: expected(name, m) for m in dict.fromkeys(df["method"])} if "method" in df else {}


def _why(key: str, ours: str, exp: Expected) -> str:
    """The reason a deviation is kept, when the record runs the experiment's own value of ``key``."""
    if key in exp.why and ours == label(exp.setting.get(key)):
        return f" [the experiment's own choice: {exp.why[key]}]"
    return ""


def _setting(block: pd.DataFrame, exps: dict[str, Expected | None]) -> str:
    """What the column's records differ in from the paper's setting: ``epochs=10 (paper: 200)`` per key, with
    ``in 3 of 28 records`` when not all of them differ ('' when none does)."""
    found: Counter = Counter()
    configs = block["_config"] if "_config" in block else [{}] * len(block)  # a frame without the records' configs
    uses = block["oe"] if "oe" in block else ["?"] * len(block)
    for method, config, oe in zip(block["method"], configs, uses):
        exp = exps.get(method)
        if exp is None:
            found[("setting", "unknown", f"no experiment config composes for method {method}", "")] += 1
        else:
            found.update((k, o, p, _why(k, o, exp)) for k, o, p in differences(config, exp, oe != "none"))
    total = len(block)
    return ", ".join(
        f"{k}={ours} (paper: {theirs})" + ("" if c == total else f" in {c} of {total} records") + why
        for (k, ours, theirs, why), c in found.items()
    )


def _oe_name(name: object, where: object = None) -> str:
    """``300K random images (`tiny300k`)``; an .npy file or folder of one's own with its file name."""
    key = f"`{name}`" if not where else f"`{name}`: {Path(str(where)).name}"
    return f"{OE_NAMES[name]} ({key})" if name in OE_NAMES else key


def _seeds(seeds: list) -> str:
    s = sorted(int(x) for x in seeds)
    if not s:
        return "no seeds"
    if s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"seeds {s[0]}–{s[-1]}"
    return ("seed " if len(s) == 1 else "seeds ") + ", ".join(map(str, s))


def _values(configs: list[dict], key: str) -> list[str]:
    return list(dict.fromkeys(label(config_value(c, key)) for c in configs))


def _ours_setting(block: pd.DataFrame) -> str:
    """One line: the data, OE set, schedule and seeds the column's records ran."""
    configs = list(block["_config"]) if "_config" in block else []
    if not configs:
        return ""
    uses = list(block["oe"]) if "oe" in block else ["?"] * len(configs)
    trained = [c for c, oe in zip(configs, uses) if oe != "none"]
    sets = dict.fromkeys(
        _oe_name(config_value(c, "oe.name"), config_value(c, "oe.path") or config_value(c, "oe.root")) for c in trained
    )
    oe = " / ".join(sets) if trained else "no OE"
    schedule = (
        f"epochs {' / '.join(_values(configs, 'epochs'))}, milestones {' / '.join(_values(configs, 'milestones'))}"
    )
    data = " / ".join(_values(configs, "data.name"))
    return " · ".join([f"data `{data}`", f"OE {oe}", schedule, _seeds(list(block["seed"].unique()))])


def _paper_setting(exps: list[Expected], uses_oe: bool) -> str:
    """One line: the setting of the paper's numbers (the experiment's config where it matches the paper)."""
    if not exps:
        return ""
    p = exps[0].paper_setting
    oe = _oe_name(p.get("oe.name")) if uses_oe and exps[0].uses_oe else "no OE"
    parts = [f"data `{label(p.get('data.name'))}`", f"OE {oe}"]
    if not exps[0].trains:
        parts.append("no training")
    elif "epochs" in p:
        parts.append(f"epochs {label(p['epochs'])}, milestones {label(p.get('milestones'))}")
    return " · ".join([*parts, f"{max(e.seeds for e in exps)} seeds"])


def _completeness(cell: pd.DataFrame, per_class: bool, seeds: int | None, classes: int | None) -> dict:
    """The seeds and classes a cell asks for and holds (a mean over classes: the fewest classes of its seeds);
    ``complete`` is None when the experiment's sweep is unknown."""
    n = cell["seed"].nunique()
    k = 1 if per_class else int(cell.groupby("seed")["normal_class"].nunique().min())
    expected_k = 1 if per_class else classes
    complete = None if seeds is None else bool(n >= seeds and (expected_k is None or k >= expected_k))
    ids = " ".join(str(int(c)) for c in sorted(cell["normal_class"].dropna().unique()))
    return {
        "seeds_expected": seeds,
        "classes": k,
        "classes_expected": expected_k,
        "complete": complete,
        "class_ids": ids,
    }


def _cells(block: pd.DataFrame, layout: Layout, seeds: int | None, classes: int | None, shared: dict):
    """(cells, per-class rows) of one column."""
    cells, per_class = [], []
    valued = block.dropna(subset=["value"])
    for row, cell in block.groupby("row", sort=False):
        have = cell.dropna(subset=["value"])
        for (idx, cls), vals in have.groupby(["normal_class", "class_name"]):
            s = summarise(vals.groupby("seed")["value"].mean())
            done = {"complete": None if seeds is None else s.n >= seeds, "seeds_expected": seeds}
            per_class.append({**shared, "row": row, "normal_class": idx, "class": cls, **s.as_dict(), **done})
        if layout.rows != "class":  # a mean over classes per seed, then over seeds
            s = summarise(per_seed_class_mean(have))
            full = {
                **shared,
                "row": row,
                **s.as_dict(),
                **_completeness(have if len(have) else cell, False, seeds, classes),
            }
            cells.append({**full, "spread": spread(have)})
    if layout.rows == "class":
        for (_idx, cls), cell in block.groupby(["normal_class", "class_name"]):
            have = cell.dropna(subset=["value"])
            by_seed = have.groupby("seed")["value"].mean()
            s = summarise(by_seed)
            sd0 = float(by_seed.std(ddof=0)) if len(by_seed) else np.nan
            cells.append(
                {**shared, "row": cls, **s.as_dict(), **_completeness(cell, True, seeds, classes), "spread": sd0}
            )
        s = summarise(per_seed_class_mean(valued))
        whole = _completeness(valued if len(valued) else block, False, seeds, classes)
        cells.append({**shared, "row": "mean", **s.as_dict(), **whole, "spread": spread(valued)})
    return cells, per_class


def paper_table(
    df: pd.DataFrame, name: str, layout: Layout, metric: str = DEFAULT
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, per_class): ``table`` has one row per (row, column) cell in the paper's layout: our mean, sd,
    95 % t-interval and n over seeds of ``metric`` (a class mean is taken per seed first), whether the cell is
    complete, the spread over classes the paper's ± measures, the paper's value (and why there is none), our
    difference where the column's records match the paper's setting (``differs`` names what does not), and
    both sides' setting. ``per_class`` is the same per normal class (for the per-class panels)."""
    df = labelled(df, layout)
    exps = _expectations(name, df)
    for exp in exps.values():
        if exp is not None:
            check_paper_classes(name, layout, exp)
    paper = paper_values(df, layout)
    cells, per_class = [], []
    for col, block in df.groupby("column", sort=False):
        known = [exps[m] for m in dict.fromkeys(block["method"]) if exps.get(m) is not None]
        seeds = max((e.seeds for e in known), default=None)
        classes = max((e.classes for e in known), default=None)
        differs = _setting(block, exps)
        uses_oe = bool((block["oe"] != "none").any()) if "oe" in block else True
        uses_oe = uses_oe and all(e.uses_oe for e in known)
        shared = {
            "column": col,
            "base": block["base"].iloc[0],
            "paper_comparable": not differs,
            "differs": differs,
            "setting": _ours_setting(block),
            "paper_setting": _paper_setting(known, uses_oe),
        }
        got, by_class = _cells(block, layout, seeds, classes, shared)
        cells += got
        per_class += by_class
    have_base = {(c["base"], c["row"]) for c in cells}
    owner: dict[str, dict] = {}  # base -> the shared fields of its first column of records
    for c in sorted(cells, key=lambda c: label_sort(c["column"])):
        owner.setdefault(c["base"], {k: c.get(k) for k in ("column", *SHARED)})
    for c, rows in paper.items():  # the paper's cells without records of ours: in the column of its records
        if c in owner:
            fields = dict(owner[c])
        else:
            exp = expected(name, c.split(" ")[0])
            fields = {"column": c, "paper_comparable": True, "differs": ""}
            if exp is not None:
                fields["paper_setting"] = _paper_setting([exp], exp.uses_oe)
        cells += [{**fields, "base": c, "row": r, "mean": np.nan, "n": 0} for r in rows if (c, r) not in have_base]
    table = pd.DataFrame(cells, columns=TABLE_COLUMNS)
    for count in ("n", "seeds_expected", "classes", "classes_expected"):
        table[count] = table[count].astype("Int64")  # counts stay whole numbers next to missing ones
    given = [paper.get(b, {}).get(r, np.nan) for b, r in zip(table["base"], table["row"])]
    listed = [r in paper.get(b, {}) for b, r in zip(table["base"], table["row"])]
    table["paper"] = [np.nan if v is None else v for v in given]
    table["paper_status"] = [_status(layout, b, v, has, metric) for b, v, has in zip(table["base"], given, listed)]
    if metric != PAPER_METRIC:
        table["paper"] = np.nan  # the paper reports AUROC only: never set another metric against it
    table["diff"] = (table["mean"] - table["paper"]).where(table["paper_comparable"].astype(bool))
    table["experiment"], table["metric"] = name, metric
    return _ordered(table, df, layout), pd.DataFrame(per_class)


def _status(layout: Layout, base: str, value, listed: bool, metric: str) -> str:
    if metric != PAPER_METRIC:
        return f"{METRICS[PAPER_METRIC].label} only"
    if listed and value is None:
        return NOT_TRANSCRIBED
    if listed:
        return ""
    if base in layout.paper_classes and layout.paper_classes[base] is None and layout.rows == "class":
        return NOT_TRANSCRIBED  # a class row of a column whose per-class values the paper gives
    return NOT_IN_PAPER


def label_sort(label: str) -> tuple:
    """Columns in the paper's method order, then by the other keys' values (``hsc oe_size=16``)."""
    return column_sort(tuple(part.partition("=")[2] or part for part in label.split(" ")))


def row_order(table: pd.DataFrame, df: pd.DataFrame, layout: Layout) -> list[str]:
    """Every row label of ``table`` in order: classes by index then ``mean``; else numerically, ``full`` last."""
    rows = list(dict.fromkeys(table["row"]))
    if layout.rows == "class":
        names = list(class_names(df, layout).values())
        order = {r: k for k, r in enumerate([*names, "mean"])}
        return sorted(rows, key=lambda r: (order.get(r, len(order)), r))
    return sorted(rows, key=row_sort)


def _ordered(table: pd.DataFrame, df: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Rows in :func:`row_order`, within a row the columns in the paper's method order."""
    rank = {r: k for k, r in enumerate(row_order(table, df, layout))}
    table = table.assign(_c=table["column"].map(label_sort), _r=table["row"].map(rank))
    return table.sort_values(["_r", "_c"], kind="stable").drop(columns=["_c", "_r"]).reset_index(drop=True)


def _num(v: float, digits: int = 1, signed: bool = False) -> str:
    return "–" if pd.isna(v) else f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def setting_note(table: pd.DataFrame) -> str:
    """One paragraph naming what differs from the paper's setting, per column ('' if every column matches)."""
    by_difference: dict[str, list[str]] = {}
    for column, differs in dict(zip(table["column"], table["differs"])).items():
        if isinstance(differs, str) and differs:
            by_difference.setdefault(differs, []).append(f"`{column}`")
    if not by_difference:
        return ""
    return "\n".join(
        [
            "**Not the paper's setting**: these columns show the paper's value beside ours without Δ, since their "
            "records differ from the setting the paper's numbers were made in (a difference between them is not a "
            "reproduction gap):",
            "",
            *(f"- {', '.join(cols)}: {differs}" for differs, cols in by_difference.items()),
        ]
    )


def deviations_note(layout: Layout) -> str:
    """The experiment's own deviations from the paper, each with the paper's value and the reason."""
    if not layout.deviations:
        return ""
    lines = ["**Where this experiment's config differs from the paper** (`report.deviations` of its YAML):", ""]
    for d in layout.deviations:
        lines.append(f"- `{d.key}`: the paper's numbers were made with `{label(d.paper)}`. {d.why}")
    return "\n".join(lines)


def _paper_header(metric: str, comparable: bool) -> list[str]:
    paper = "paper (AUROC)" if metric == PAPER_METRIC else "paper (AUROC only)"
    return [paper, "Δ"] if comparable else [paper]


def _paper_cell(t) -> str:
    status = getattr(t, "paper_status", "")
    if isinstance(status, str) and status:
        return f"*{status}*"
    return _num(t.paper)


def _mean_cell(t) -> str:
    text = fmt_cell(t)
    if not pd.isna(getattr(t, "spread", np.nan)) and int(t.n or 0) > 0 and t.row == "mean":
        text += f"; over classes ± {t.spread:.2f}"
    return text


def paper_markdown(
    table: pd.DataFrame, name: str, layout: Layout, extra: list[str] | None = None, metric: str = DEFAULT
) -> str:
    """The table in the paper's layout: a first row with each side's setting, then per column ours
    (:func:`stats.fmt_cell`), the paper's value and Δ (only where the records match the paper's setting and the
    metric is the paper's), then the notes and ``extra`` lines (the comparisons)."""
    m = METRICS[metric]
    cols = sorted(dict.fromkeys(table["column"]), key=label_sort)
    rows = list(dict.fromkeys(table["row"]))  # paper_table sorted them: classes then mean, or numerically
    cell = {(c, r): t for c, r, t in zip(table["column"], table["row"], table.itertuples())}
    first = {c: table[table["column"] == c].iloc[0] for c in cols}
    comparable = {
        c: bool(table[table["column"] == c]["paper_comparable"].all()) and metric == PAPER_METRIC for c in cols
    }
    header = [layout.rows if layout.rows != "class" else "class"]
    for c in cols:
        header += [f"{c} (ours, {m.label})", *_paper_header(metric, comparable[c])]
    lines = [f"## {layout.title}", "", f"Experiment `{name}`. {m.sentence}", ""]
    if layout.note:
        lines += [layout.note, ""]
    setting = ["*setting*"]
    for c in cols:
        t = first[c]
        ours = t["setting"] if isinstance(t["setting"], str) and t["setting"] else "no records"
        theirs = t["paper_setting"] if isinstance(t["paper_setting"], str) and t["paper_setting"] else "–"
        setting += [ours, theirs] + (["same setting" if ours != "no records" else ""] if comparable[c] else [])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), "| " + " | ".join(setting) + " |"]
    for r in rows:
        out = [f"**{r}**" if r == "mean" else r]
        for c in cols:
            t = cell.get((c, r))
            width = 3 if comparable[c] else 2
            if t is None:
                out += [""] * width
                continue
            out += [_mean_cell(t), _paper_cell(t)]
            if comparable[c]:
                out.append(_num(t.diff, signed=True))
        lines.append("| " + " | ".join(out) + " |")
    lines += ["", footnote(metric)]
    if layout.tables:
        lines += [
            "",
            f"The paper's values: {layout.tables}. *{NOT_TRANSCRIBED}*: the paper gives the value; it is "
            f"not stored in this package (no number is made up). *{NOT_IN_PAPER}*: the paper gives none.",
        ]
    untranscribed = [c for c, v in layout.paper_classes.items() if v is None]
    if untranscribed:
        lines += ["", f"Per-class values the paper gives but this package does not store: {', '.join(untranscribed)}."]
    if layout.claims:
        lines += ["", "The paper's statements about this experiment (not in a table):", ""]
        lines += [f"- {claim}" for claim in layout.claims]
    for note in (deviations_note(layout), setting_note(table)):
        if note:
            lines += ["", note]
    if extra:
        lines += ["", *extra]
    return "\n".join(lines) + "\n"

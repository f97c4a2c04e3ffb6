"""PNG figures in the paper's style: curves over a swept value, per-class panels, image grids, ROC curves.

They draw what the report computed from the records (the search writes records and images, the report draws
them). Every figure gives a method the same colour (:func:`method_colour`); the columns of one method (other OE
sizes, other configurations) get shades of it, other line styles and markers. A curve joins only the points of
one column, i.e. of one configuration, and of the same classes; a point that lacks seeds or classes of the
experiment's sweep is drawn hollow and the title says so; error bars are ± the sample sd over seeds (n ≥ 2). A
dashed horizontal line is kept for a method without OE (its row ``none``), which has no place on an OE-size axis.

Figures are built as ``matplotlib.figure.Figure`` objects and saved with the Agg canvas, without pyplot, so they
work on servers without a display and leave a notebook's backend alone; the ``*_plot`` functions return the
figure (a notebook shows it), :func:`save` writes it, the ``*_figure`` ones write theirs and return the path.
"""

import hashlib
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure

SPECIAL_X = ("none", "full")  # OE-size labels placed left (no OE) and right (the whole pool) of the powers of 2
METHOD_COLOURS = {  # one colour per method in every figure the package draws
    "deep_svdd": "#7f7f7f",
    "clip_zero_shot": "#9467bd",
    "deep_sad": "#8c564b",
    "hsc": "#1f77b4",
    "focal": "#2ca02c",
    "bce": "#ff7f0e",
    "clip_bce": "#d62728",
}
OTHER_COLOURS = ("#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def method_colour(method: str) -> str:
    """The colour of ``method`` in every figure: fixed for the package's methods, stable for any other name."""
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return OTHER_COLOURS[int(hashlib.sha256(method.encode()).hexdigest(), 16) % len(OTHER_COLOURS)]


def _shade(colour: str, k: int, n: int) -> str:
    """The k-th of n shades of ``colour``, from the colour itself towards white."""
    t = 0.0 if n < 2 else 0.55 * k / (n - 1)
    return to_hex(tuple(c + (1 - c) * t for c in to_rgb(colour)))


def _natural(text: str) -> list:
    """``epochs=2`` before ``epochs=12``."""
    return [
        (0, float(t), "") if t.replace(".", "", 1).isdigit() else (1, 0.0, t) for t in re.split(r"(\d+\.?\d*)", text)
    ]


def column_styles(columns: list[str]) -> dict[str, dict]:
    """Per column label (``hsc``, ``bce oe_size=16``, ``bce epochs=1``): colour (the method's, shaded per
    column of that method), line style and marker. The method is the label's first word."""
    by_method: dict[str, list[str]] = {}
    for col in sorted(dict.fromkeys(columns), key=_natural):  # the same shade for a column whatever the folder order
        by_method.setdefault(col.split(" ")[0], []).append(col)
    out = {}
    for method, cols in by_method.items():
        for k, col in enumerate(cols):
            out[col] = {
                "color": _shade(method_colour(method), k, len(cols)),
                "ls": LINESTYLES[k % len(LINESTYLES)],
                "marker": MARKERS[k % len(MARKERS)],
            }
    return out


def x_positions(labels: list[str], log2: bool) -> tuple[list[float], list[str]]:
    """Plot positions for row labels: log2 of OE sizes with ``full`` one step right, else the numbers."""
    numeric = [float(v) for v in labels if v not in SPECIAL_X]
    pos = []
    for v in labels:
        if v == "full":
            pos.append((math.log2(max(numeric)) if numeric and log2 else max(numeric, default=0)) + 1)
        elif v == "none":
            pos.append((math.log2(min(numeric)) if numeric and log2 else min(numeric, default=0)) - 1)
        else:
            pos.append(math.log2(float(v)) if log2 else float(v))
    return pos, [v if v in SPECIAL_X or not log2 else f"$2^{{{int(round(math.log2(float(v))))}}}$" for v in labels]


def _segments(block: pd.DataFrame) -> list[pd.DataFrame]:
    """Runs of consecutive points (in x order) that hold the same classes: the parts a line may join."""
    ids = block["class_ids"] if "class_ids" in block else pd.Series([""] * len(block), index=block.index)
    runs, start = [], 0
    for k in range(1, len(block) + 1):
        if k == len(block) or ids.iloc[k] != ids.iloc[k - 1]:
            runs.append(block.iloc[start:k])
            start = k
    return runs


def _method_rank(column: str) -> tuple:
    method = column.split(" ")[0]
    order = list(METHOD_COLOURS)
    return (order.index(method) if method in order else len(order), column)


def _incomplete(t) -> bool:
    complete = t.get("complete") if isinstance(t, (dict, pd.Series)) else getattr(t, "complete", None)
    return complete is not None and not pd.isna(complete) and not bool(complete)


def _curves(ax, table: pd.DataFrame, x: list[str], log2: bool, styles: dict[str, dict]) -> dict:
    """Draw every column of ``table`` (column, row, mean, std, n, complete, class_ids) over ``x``; what is
    incomplete: ``{"incomplete": bool, "lines": [no-OE reference columns]}``."""
    shared = dict(zip(x, x_positions(x, log2)[0])) if x else {}
    found = {"incomplete": False, "references": []}
    columns = sorted(dict.fromkeys(table["column"]), key=_method_rank)
    drawn = [c for c in columns if (table[(table["column"] == c)]["row"] != "none").any()]
    span = (max(shared.values()) - min(shared.values())) if len(shared) > 1 else 1.0
    for col in columns:
        block = table[table["column"] == col]
        style = styles.get(col) or column_styles([col])[col]
        # columns side by side at one x (1.5 % of the axis apart) so their error bars do not hide each other
        dodge = 0.015 * span * (drawn.index(col) - (len(drawn) - 1) / 2) if col in drawn else 0.0
        colour = style["color"]
        block = block.dropna(subset=["mean"])
        none = block[block["row"] == "none"]
        if len(none):  # a method without OE: no place on the x axis, a reference line
            t = none.iloc[0]
            ax.axhline(t["mean"], ls="--", lw=1.2, color=colour, label=f"{col} (no OE)")
            if not pd.isna(t.get("std")) and t.get("n", 0) >= 2:
                ax.axhspan(t["mean"] - t["std"], t["mean"] + t["std"], color=colour, alpha=0.08, lw=0)
            found["incomplete"] |= _incomplete(t)
            found["references"].append(col)
        block = block.set_index("row").reindex([v for v in x if v in set(block["row"]) and v != "none"])
        block = block.dropna(subset=["mean"])
        if block.empty:
            continue
        pos = np.array([shared[v] for v in block.index]) + dodge
        labelled = False
        for part in _segments(block.reset_index()):
            if len(part) < 2:
                continue
            p = np.array([shared[v] for v in part["row"]]) + dodge
            ax.plot(p, part["mean"], ls=style["ls"], lw=1.4, color=colour, label=None if labelled else col)
            labelled = True
        for k, (_, t) in enumerate(block.iterrows()):
            hollow = _incomplete(t)
            found["incomplete"] |= hollow
            std = t.get("std")
            yerr = None if pd.isna(std) or int(t.get("n") or 0) < 2 else std
            ax.errorbar(
                pos[k],
                t["mean"],
                yerr=yerr,
                marker=style["marker"],
                ms=6,
                color=colour,
                mfc="white" if hollow else colour,
                capsize=3,
                lw=1,
                ls="none",
                label=None if labelled else col,
            )
            labelled = True
    if x:
        pos, ticks = x_positions(x, log2)
        step = max(1, len(x) // 10)
        ax.set_xticks(pos[::step], ticks[::step])
        margin = 0.06 * span + 0.02 * span * len(drawn)
        ax.set_xlim(min(pos) - margin, max(pos) + margin)  # every panel the same axis, whatever it holds
    ax.grid(alpha=0.3)
    return found


def _notes(found: dict, table: pd.DataFrame) -> list[str]:
    lines = []
    if found["incomplete"]:
        counts = table.dropna(subset=["mean"])
        parts = []
        if "classes_expected" in counts and counts["classes_expected"].notna().any():
            k = counts.dropna(subset=["classes_expected"])
            parts.append(f"fewest classes {int(k['classes'].min())} of {int(k['classes_expected'].max())}")
        if "seeds_expected" in counts and counts["seeds_expected"].notna().any():
            k = counts.dropna(subset=["seeds_expected"])
            parts.append(f"fewest seeds {int(k['n'].min())} of {int(k['seeds_expected'].max())}")
        lines.append("incomplete (hollow markers): " + ", ".join(parts))
    if "base" in table and (table["base"].fillna(table["column"]) != table["column"]).any():
        lines.append("several configurations (see legend): lines never join them")
    return lines


def _legend_below(fig: Figure, handles: dict, top: float = 0.95) -> None:
    """The figure's legend under its panels, in as many columns as fit; the panels make room for it."""
    if not handles:
        fig.tight_layout(rect=(0, 0, 1, top))
        return
    ncol = max(1, min(len(handles), int(fig.get_figwidth() // 3.2)))
    rows = math.ceil(len(handles) / ncol)
    height = (0.28 * rows + 0.15) / fig.get_figheight()
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol, fontsize=8.5, frameon=False)
    fig.tight_layout(rect=(0, height, 1, top))


def _handles(axes) -> dict:
    """Every label of ``axes`` once, in the paper's method order."""
    handles: dict = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    return {lab: handles[lab] for lab in sorted(handles, key=_method_rank)}


def curve_plot(
    summary: pd.DataFrame,
    x: list[str],
    title: str,
    xlabel: str,
    log2: bool = False,
    ylabel: str = "AUROC %",
    styles: dict[str, dict] | None = None,
) -> Figure:
    """The mean over classes (error bars: ± sd over seeds) vs the swept value, one line per column."""
    styles = styles or column_styles(list(summary["column"]))
    fig = Figure(figsize=(8.5, 5.4))
    ax = fig.subplots()
    found = _curves(ax, summary, x, log2, styles)
    notes = _notes(found, summary)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(title, fontsize=11)
    if notes:
        ax.text(
            0.5,
            1.02,
            textwrap.fill("; ".join(notes), 110),
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            fontsize=8,
            color="#a00000",
        )
        ax.set_title(title, fontsize=11, pad=8 + 11 * len(textwrap.wrap("; ".join(notes), 110)))
    _legend_below(fig, _handles([ax]))
    return fig


def save(fig: Figure, path: Path, dpi: int = 120) -> Path:
    fig.savefig(path, dpi=dpi)
    return path


def per_class_plot(
    per_class: pd.DataFrame,
    x: list[str],
    title: str,
    xlabel: str,
    log2: bool,
    ylabel: str = "AUROC %",
    styles: dict[str, dict] | None = None,
) -> Figure:
    """One panel per normal class (as the paper's per-class appendix figures), one shared legend."""
    styles = styles or column_styles(list(per_class["column"]))
    classes = list(dict.fromkeys(per_class["class"]))
    ncols = min(4, len(classes))
    nrows = math.ceil(len(classes) / ncols)
    fig = Figure(figsize=(4.4 * ncols + 0.4, 3.4 * nrows + 1.4))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    incomplete = False
    for k, (ax, cls) in enumerate(zip(axes.flat, classes)):
        found = _curves(ax, per_class[per_class["class"] == cls], x, log2, styles)
        incomplete |= found["incomplete"]
        ax.set_title(cls, fontsize=10)
        ax.tick_params(labelsize=8)
        if k % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=9)
        if k // ncols == nrows - 1 or k + ncols >= len(classes):
            ax.set_xlabel(xlabel, fontsize=9)
    for ax in list(axes.flat)[len(classes) :]:
        ax.axis("off")
    note = " — hollow markers: fewer seeds than the sweep asks for" if incomplete else ""
    fig.suptitle(textwrap.fill(f"{title} (per class){note}", int(9.5 * fig.get_figwidth())), fontsize=11)
    _legend_below(fig, _handles(axes.flat), top=1 - 0.6 / fig.get_figheight())
    return fig


def image_grid(
    images: np.ndarray,
    labels: list[str],
    path: Path,
    ncols: int = 16,
    row_names: list[str] | None = None,
) -> Path:
    """uint8 images (NHWC array) in a grid, each titled with its label (e.g. its AUC)."""
    arr = np.asarray(images)
    n = len(arr)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(1.1 * ncols, 1.25 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if k < n:
            ax.imshow(arr[k], interpolation="nearest")
            ax.set_title(labels[k], fontsize=7)
        else:
            ax.axis("off")
        if row_names and k % ncols == 0 and k // ncols < len(row_names):
            ax.set_ylabel(row_names[k // ncols], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


ROC_AXES = ("false positive rate (normal images flagged)", "true positive rate (anomalies found)")


def _job_colours(n: int) -> list:
    """n distinct colours for the jobs of one panel, never reused within it and apart from the methods' colours
    (a method's own colour draws its mean curve)."""
    from matplotlib import colormaps

    return [colormaps["viridis"](0.1 + 0.8 * k / max(1, n - 1)) for k in range(n)]


def mean_roc(curves: list[dict], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sd) over jobs of the TPR at each FPR of ``grid`` (each ROC interpolated)."""
    tprs = np.stack([np.interp(grid, c["fpr"], c["tpr"]) for c in curves])
    return tprs.mean(axis=0), tprs.std(axis=0)


def roc_figure(curves: list[dict], path: Path, title: str, legend_max: int = 12) -> Path:
    """ROC curves of single jobs, one panel per method and configuration (``curves``: method, label, auc, fpr,
    tpr, and ``panel``, the method with its configuration, when jobs of several configurations are drawn), each
    job in its own colour with its AUROC (%) in the legend (at most ``legend_max`` there), and from two jobs on
    their mean curve (TPR averaged at each FPR) with a ± sd band in the method's colour."""
    panels = list(dict.fromkeys(c.get("panel", c["method"]) for c in curves))
    ncols = min(3, max(1, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(5.4 * ncols, 5.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    grid = np.linspace(0, 1, 201)
    for ax, panel in zip(axes.flat, panels):
        mine = [c for c in curves if c.get("panel", c["method"]) == panel]
        thin = len(mine) > legend_max
        colours = _job_colours(len(mine)) if len(mine) > 1 else [method_colour(mine[0]["method"])]
        for c, colour in zip(mine, colours):
            ax.plot(
                c["fpr"],
                c["tpr"],
                lw=0.6 if thin else 1.0,
                alpha=0.5 if thin else 0.9,
                color=colour,
                label=None if thin else f"{c['label']} ({c['auc']:.1f} %)",
            )
        if len(mine) >= 2:
            mean, sd = mean_roc(mine, grid)
            colour = method_colour(mine[0]["method"])
            ax.fill_between(grid, np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1), color=colour, alpha=0.2, lw=0)
            aucs = np.mean([c["auc"] for c in mine])
            ax.plot(grid, mean, lw=2.6, color=colour, label=f"mean of {len(mine)} jobs ± sd (mean AUROC {aucs:.1f} %)")
        ax.plot([0, 1], [0, 1], ls=":", lw=0.8, color="grey", label="chance (50 %)")
        ax.set(xlabel=ROC_AXES[0], ylabel=ROC_AXES[1])
        ax.set_title(f"{panel} ({len(mine)} job{'s' if len(mine) != 1 else ''})", fontsize=10)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def evaluation_figure(
    x: np.ndarray,
    y: np.ndarray,
    label: str,
    chance: tuple[list[float], list[float], str],
    axes: tuple[str, str],
    title: str,
    path: Path,
) -> Path:
    """One curve of one evaluation (``oe-ad-eval``'s ROC or precision-recall curve) with its area in ``label``
    and what a random scorer would draw (``chance``: x, y, label) as a dotted line."""
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.subplots()
    ax.plot(x, y, lw=1.2, label=label)
    ax.plot(chance[0], chance[1], ls=":", lw=0.8, color="grey", label=chance[2])
    ax.set(xlabel=axes[0], ylabel=axes[1], xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right" if axes[0].startswith("false") else "lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path

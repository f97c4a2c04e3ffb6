"""PNG figures in the paper's style: AUC curves with ±std bands, per-class panels, image grids, ROC curves.

They draw what the report computed from the records (the search writes records and images, the report draws
them). Figures are built as ``matplotlib.figure.Figure`` objects and saved with the Agg canvas, without pyplot, so
they work on servers without a display and leave a notebook's backend alone.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

SPECIAL_X = ("none", "full")  # OE-size labels placed left (no OE) and right (the whole pool) of the powers of 2


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


def _curves(ax, table: pd.DataFrame, x: list[str], log2: bool) -> None:
    for i, (col, block) in enumerate(table.groupby("column", sort=False)):
        colour = f"C{i % 10}"
        block = block.set_index("row").reindex([v for v in x if v in set(block["row"])]).dropna(subset=["mean"])
        if block.empty:
            continue
        if len(block) == 1 and len(x) > 1:  # a method without the x axis (Deep SVDD, CLIP): a reference line
            ax.axhline(block["mean"].iloc[0], ls="--", lw=1, label=col, color=colour)
            continue
        shared = dict(zip(x, x_positions(x, log2)[0]))  # one axis for all series, even with gaps
        pos = [shared[v] for v in block.index]
        std = block["std"].fillna(0)
        ax.plot(pos, block["mean"], marker="o", ms=3, label=col, color=colour)
        ax.fill_between(pos, block["mean"] - std, block["mean"] + std, alpha=0.2, color=colour)
    pos, ticks = x_positions(x, log2)
    step = max(1, len(x) // 10)
    ax.set_xticks(pos[::step], ticks[::step])
    ax.grid(alpha=0.3)


def curve_figure(
    summary: pd.DataFrame, x: list[str], path: Path, title: str, xlabel: str, log2: bool = False, ylabel: str = "AUC %"
) -> Path:
    """AUC (mean over classes, ±std over seeds) vs the swept value, one line per column (method)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    _curves(ax, summary, x, log2)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def per_class_figure(per_class: pd.DataFrame, x: list[str], path: Path, title: str, xlabel: str, log2: bool) -> Path:
    """One small panel per normal class (as the paper's per-class appendix figures)."""
    classes = list(dict.fromkeys(per_class["class"]))
    ncols = min(5, len(classes))
    nrows = math.ceil(len(classes) / ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for ax, cls in zip(axes.flat, classes):
        _curves(ax, per_class[per_class["class"] == cls], x, log2)
        ax.set_title(cls, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(classes) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{title} (per class; x: {xlabel})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


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


def roc_figure(curves: list[dict], path: Path, title: str, legend_max: int = 12) -> Path:
    """ROC curves of single jobs, one panel per method (``curves``: method, label, auc, fpr, tpr); a legend
    with each job's AUC when a panel holds at most ``legend_max`` curves."""
    methods = list(dict.fromkeys(c["method"] for c in curves))
    ncols = min(3, max(1, len(methods)))
    nrows = max(1, math.ceil(len(methods) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 4.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, method in zip(axes.flat, methods):
        mine = [c for c in curves if c["method"] == method]
        thin = len(mine) > legend_max
        for c in mine:
            ax.plot(
                c["fpr"],
                c["tpr"],
                lw=0.6 if thin else 1.2,
                alpha=0.5 if thin else 1.0,
                label=f"{c['label']} ({c['auc']:.1f})",
            )
        ax.plot([0, 1], [0, 1], ls=":", lw=0.8, color="grey")
        ax.set(title=f"{method} ({len(mine)} jobs)", xlabel="false positive rate", ylabel="true positive rate")
        ax.set_aspect("equal")
        if not thin:
            ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[len(methods) :]:
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

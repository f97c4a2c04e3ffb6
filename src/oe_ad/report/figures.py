"""An experiment's figures (drawn with :mod:`oe_ad.report.plots`): its curve and per-class panels, its image grid,
and each search's final generation (the search writes records and images; the report draws them)."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..job.records import SEARCH_RECORD_NAME
from . import plots
from .layout import Layout
from .metric import DEFAULT, METRICS
from .paper import label_sort
from .plots import column_styles, image_grid
from .records import search_folders
from .tables import row_sort

log = logging.getLogger(__name__)
GENERATION_FIGURE = "final_generation.png"


def experiment_plots(
    table: pd.DataFrame, per_class: pd.DataFrame, layout: Layout, metric: str = DEFAULT
) -> dict[str, Figure]:
    """File stem -> figure of an experiment's curve and its per-class panels (none for a table or image grid);
    one style per column shared by both, so a method has one colour throughout."""
    if layout.plot != "curve":
        return {}
    ours = table.dropna(subset=["mean"])
    x = sorted({r for r in ours["row"] if r != "none"}, key=row_sort)
    xlabel = "OE size" if layout.rows == "oe_size" else layout.rows
    styles = column_styles(list(dict.fromkeys([*ours["column"], *per_class.get("column", [])])))
    label = METRICS[metric].label
    out = {"": plots.curve_plot(ours, x, layout.title, xlabel, layout.log2, f"{label} % (mean over classes)", styles)}
    if not per_class.empty:
        out["-per-class"] = plots.per_class_plot(per_class, x, layout.title, xlabel, layout.log2, f"{label} %", styles)
    return out


def search_grid(df: pd.DataFrame, path: Path) -> Path:
    """Figure 5: per class (rows) and (method, best/worst) (columns), the fittest image found and its AUC."""
    cols = sorted(dict.fromkeys(df["column"]), key=label_sort)
    classes = df.sort_values("normal_class").drop_duplicates("normal_class")
    images, labels, blank = [], [], None
    for _, cls in classes.iterrows():
        for c in cols:
            hit = df[(df["normal_class"] == cls["normal_class"]) & (df["column"] == c)]
            if len(hit):
                best = hit.sort_values("value", ascending=c.endswith("worst")).iloc[0]
                img = np.load(Path(best["_dir"]) / "final_images.npy")[0]
                blank = np.full_like(img, 255)
                images.append(img), labels.append(f"{c} {best['value']:.1f}")
            else:
                images.append(None), labels.append(f"{c} –")
    images = [blank if im is None else im for im in images]
    return image_grid(np.stack(images), labels, path, ncols=len(cols), row_names=classes["class_name"].tolist())


def search_generation_figures(root: Path) -> list[Path]:
    """Per search under ``root``: ``final_generation.png``, the final generation's images (``final_images.npy``)
    titled with their AUC % (``final_generation.json``), ``search.grid`` per row; redrawn when older than the
    search's record, skipped with a warning when its files are missing."""
    out = []
    for folder in search_folders(root):
        path, record = folder / GENERATION_FIGURE, folder / SEARCH_RECORD_NAME
        if path.exists() and path.stat().st_mtime >= record.stat().st_mtime:
            continue
        try:
            images = np.load(folder / "final_images.npy")
            ranking = json.loads((folder / "final_generation.json").read_text())
            ncols = int(json.loads(record.read_text()).get("config", {}).get("search", {}).get("grid", 16))
        except (OSError, ValueError) as e:
            log.warning("warning: %s: no %s (%s)", folder, GENERATION_FIGURE, e.__class__.__name__)
            continue
        labels = [f"{100 * r['fitness']:.1f}" for r in ranking]
        out.append(image_grid(images, labels, path, ncols=ncols))
    return out

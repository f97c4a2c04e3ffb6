"""Per-image test scores beside each record (``scores.csv``): for ROC/PR analyses and significance tests; the
distribution of the normal training images' scores in ``model.pt`` (thresholds for ``oe-ad-predict``)."""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .records import write_text_atomic

SCORES_NAME = "scores.csv"
HEADER = "index,label,score"  # index: position in the test set; label: 1 = anomalous; score: larger = more anomalous


def write_scores(job_dir: Path, scores: Tensor, is_anomalous: Tensor) -> Path:
    """``job_dir/scores.csv``, one row per test image, written atomically (floats round-trip exactly)."""
    s = scores.detach().flatten().cpu().double().numpy()
    y = is_anomalous.detach().flatten().cpu().long().numpy()
    if len(s) != len(y):
        raise ValueError(f"{len(s)} scores for {len(y)} test labels")
    rows = "\n".join(f"{i},{int(label)},{score!r}" for i, (label, score) in enumerate(zip(y, s.tolist())))
    path = Path(job_dir) / SCORES_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, f"{HEADER}\n{rows}\n")
    return path


def read_scores(path: Path) -> tuple[Tensor, Tensor]:
    """(scores, is_anomalous) from a ``scores.csv``, in test-set order."""
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    order = np.argsort(table[:, 0], kind="stable")
    return torch.from_numpy(table[order, 2]), torch.from_numpy(table[order, 1].astype(np.int64))


# Percentiles of the normal training images' scores kept in model.pt: `oe-ad-predict --threshold-percentile P`.
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
MAX_NORMAL_IMAGES = 10_000  # scored for those percentiles (evenly spaced when the normal set is larger)


def percentile_key(p: float) -> str:
    """How a percentile is named in model.pt: ``99``, ``99.9``."""
    return f"{float(p):g}"


def normal_score_percentiles(scores: Tensor, percentiles: tuple[float, ...] = PERCENTILES) -> dict[str, Any]:
    """Summary of the scores of normal images: ``n``, ``mean``, ``std``, ``min``, ``max`` and ``percentiles``
    (``{"99": value, ...}``, linear interpolation between order statistics, as ``numpy.percentile``)."""
    s = scores.detach().flatten().cpu().double().numpy()
    if len(s) == 0:
        raise ValueError("no scores to summarise")
    values = np.percentile(s, percentiles)
    return {
        "n": len(s),
        "mean": float(s.mean()),
        "std": float(s.std()),
        "min": float(s.min()),
        "max": float(s.max()),
        "percentiles": {percentile_key(p): float(v) for p, v in zip(percentiles, values)},
    }


@torch.no_grad()
def normal_training_scores(method: torch.nn.Module, datamodule: Any, max_images: int = MAX_NORMAL_IMAGES) -> Tensor:
    """The method's scores of the normal training images, transformed as test images are (no augmentation),
    in eval mode on the method's device; the training mode is restored afterwards."""
    from ..progress import Progress

    batches = datamodule.normal_batches(max_images)
    was_training = method.training
    method.eval()
    device = next(method.parameters()).device
    out = []
    with Progress(len(batches.images), "scoring the normal training images (thresholds)", "images") as bar:
        for x, _ in batches:
            out.append(method.score(method(x.to(device))).float().cpu())
            bar.update(len(x))
    method.train(was_training)
    return torch.cat(out)


def normal_scores(method: torch.nn.Module, datamodule: Any) -> dict[str, Any]:
    """What ``model.pt`` keeps about the scale of a trained method's scores: the summary of its normal training
    images' scores (:func:`normal_score_percentiles`) and ``scale``, what the raw score measures."""
    summary = normal_score_percentiles(normal_training_scores(method, datamodule))
    return {"scale": str(method.score_scale), **summary}


def collected_scores(chunks: list[Tensor]) -> Tensor:
    """The test scores a method gathered batch by batch, as one vector."""
    return torch.cat([c.flatten() for c in chunks]) if chunks else torch.zeros(0)


def job_curves(root: Path) -> list[dict]:
    """Every job under ``root`` with a ``scores.csv``: its record's labels and ROC points (for ``report --roc``)."""
    from ..metrics import auroc, roc_points
    from .records import iter_records

    curves = []
    for rec in iter_records(root):
        path = Path(rec["_path"]).with_name(SCORES_NAME)
        if not path.is_file():
            continue
        scores, labels = read_scores(path)
        fpr, tpr = roc_points(scores, labels)
        oe = "no oe" if rec.get("oe") == "none" else f"oe {rec.get('oe_size') or 'full'}"
        curves.append(
            {
                "method": rec["method"],
                "record": rec,  # the report groups jobs of one configuration
                "label": f"{rec.get('class_name')} · {oe} · {rec.get('epochs')} ep · s{rec.get('seed')}",
                "auc": 100 * auroc(scores, labels),
                "fpr": fpr.numpy(),
                "tpr": tpr.numpy(),
            }
        )
    return curves

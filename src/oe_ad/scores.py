"""Per-image test scores beside each record (``scores.csv``): for ROC/PR analyses and significance tests."""

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .results import write_text_atomic

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


def collected_scores(chunks: list[Tensor]) -> Tensor:
    """The test scores a method gathered batch by batch, as one vector."""
    return torch.cat([c.flatten() for c in chunks]) if chunks else torch.zeros(0)


def job_curves(root: Path) -> list[dict]:
    """Every job under ``root`` with a ``scores.csv``: its record's labels and ROC points (for ``report --roc``)."""
    from .metrics import auroc, roc_points
    from .results import iter_records

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
                "label": f"{rec.get('class_name')} · {oe} · s{rec.get('seed')}",
                "auc": 100 * auroc(scores, labels),
                "fpr": fpr.numpy(),
                "tpr": tpr.numpy(),
            }
        )
    return curves

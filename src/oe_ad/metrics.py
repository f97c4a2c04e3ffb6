"""AUROC (and AUPR, ROC points) exact for scores of any range.

torchmetrics' binary AUROC applies a sigmoid when scores leave [0, 1]; for HSC/SVDD scores in the
thousands that saturates to 1.0 and silently ties everything. We map scores to their dense rank in
[0, 1] first: an order-preserving transform (ties stay ties), so the AUC is unchanged and exact.
"""

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    binary_precision_recall_curve,
    binary_roc,
)
from torchmetrics.utilities import dim_zero_cat


def rank_normalise(scores: Tensor) -> Tensor:
    """Dense ranks scaled to [0, 1], float64; equal scores get equal values."""
    uniq, inverse = torch.unique(scores.double(), sorted=True, return_inverse=True)
    return inverse.double() / max(len(uniq) - 1, 1)


def auroc(scores: Tensor, is_anomalous: Tensor) -> float:
    """Area under the ROC curve of ``scores`` (larger = more anomalous); labels 1 = anomalous."""
    return float(binary_auroc(rank_normalise(scores.flatten()), is_anomalous.flatten().long()))


class AUROC(Metric):
    """torchmetrics Metric wrapper around :func:`auroc` (states concatenate across devices)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, is_anomalous: Tensor) -> None:
        self.scores.append(scores.detach().flatten().float())
        self.labels.append(is_anomalous.detach().flatten().long())

    def compute(self) -> Tensor:
        labels = dim_zero_cat(self.labels)
        return torch.tensor(auroc(dim_zero_cat(self.scores), labels))


def aupr(scores: Tensor, is_anomalous: Tensor) -> float:
    """Area under the precision-recall curve with the anomalies as positives (average precision; exact for
    scores of any range, as :func:`auroc`)."""
    return float(binary_average_precision(rank_normalise(scores.flatten()), is_anomalous.flatten().long()))


def roc_points(scores: Tensor, is_anomalous: Tensor, max_points: int = 1000) -> tuple[Tensor, Tensor]:
    """(false positive rates, true positive rates) of the ROC curve, thinned to at most ``max_points``
    (first and last kept) so a plot of 10,000 test images stays small."""
    fpr, tpr, _ = binary_roc(rank_normalise(scores.flatten()), is_anomalous.flatten().long())
    if len(fpr) > max_points:
        keep = torch.linspace(0, len(fpr) - 1, max_points).round().long().unique()
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr.double(), tpr.double()


def pr_points(scores: Tensor, is_anomalous: Tensor, max_points: int = 1000) -> tuple[Tensor, Tensor]:
    """(recall, precision) of the precision-recall curve with the anomalies as positives, thinned as
    :func:`roc_points`."""
    ranks, labels = rank_normalise(scores.flatten()), is_anomalous.flatten().long()
    precision, recall, _ = binary_precision_recall_curve(ranks, labels)
    if len(recall) > max_points:
        keep = torch.linspace(0, len(recall) - 1, max_points).round().long().unique()
        precision, recall = precision[keep], recall[keep]
    return recall.double(), precision.double()

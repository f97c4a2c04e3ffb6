"""AUROC that is exact for scores of any range.

torchmetrics' binary AUROC applies a sigmoid when scores leave [0, 1]; for HSC/SVDD scores in the
thousands that saturates to 1.0 and silently ties everything. We map scores to their dense rank in
[0, 1] first: an order-preserving transform (ties stay ties), so the AUC is unchanged and exact.
"""

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_auroc
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

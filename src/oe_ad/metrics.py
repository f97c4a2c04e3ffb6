"""AUROC, AUPR and the OOD literature's FPR@95 and AUPR-In/Out, exact for scores of any range.

torchmetrics' binary AUROC applies a sigmoid when scores leave [0, 1]; for HSC/SVDD scores in the
thousands that saturates to 1.0 and silently ties everything. We map scores to their dense rank in
[0, 1] first: an order-preserving transform (ties stay ties), so the AUC is unchanged and exact.
Scores are always "larger = more anomalous"; labels 1 = anomalous. Every value is a fraction in [0, 1].
"""

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_precision_recall_curve,
    binary_roc,
)
from torchmetrics.utilities import dim_zero_cat

# The literature uses both conventions (which class is "positive" for FPR@95TPR); this is ours, in one sentence,
# for every place that shows the numbers (oe-ad-eval, metrics.json, the W&B summary; docs/protocol.md).
CONVENTION = (
    "FPR@95 is the share of anomalous test images scored as normal (score <= t) at the lowest threshold t that "
    "keeps at least 95% of the normal test images (the normal class is the positive one, ties at t count as "
    "normal); AUPR-In is the average precision with the normal images as positives (ranked by -score), "
    "AUPR-Out (= AUPR) with the anomalies as positives (ranked by score)."
)


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


def average_precision(scores: Tensor, is_positive: Tensor) -> float:
    """Average precision of ``scores`` (larger = more likely positive), in float64: the sum over the distinct
    scores t, from the largest, of (recall(t) - recall(previous t)) x precision(t), where images scoring >= t are
    called positive, so tied images enter together (scikit-learn's ``average_precision_score``, no
    interpolation)."""
    s, y = scores.detach().flatten().double().cpu(), is_positive.detach().flatten().bool().cpu()
    order = torch.argsort(s, descending=True, stable=True)
    s, y = s[order], y[order].double()
    tp, fp = y.cumsum(0), (1 - y).cumsum(0)
    last = torch.ones(len(s), dtype=torch.bool)  # the last image of each group of tied scores
    last[:-1] = s[1:] != s[:-1]
    tp, fp = tp[last], fp[last]
    if tp[-1] == 0:
        raise ValueError("average precision needs at least one positive image")
    recall = tp / tp[-1]
    return float((torch.diff(recall, prepend=recall.new_zeros(1)) * tp / (tp + fp)).sum())


def aupr(scores: Tensor, is_anomalous: Tensor) -> float:
    """Area under the precision-recall curve with the anomalies as positives: :func:`average_precision`, exact
    for scores of any range (no sigmoid, float64)."""
    return average_precision(scores, is_anomalous)


def _split(scores: Tensor, is_anomalous: Tensor) -> tuple[Tensor, Tensor]:
    """(normal scores, anomalous scores) as float64; both kinds must be present."""
    s, y = scores.detach().flatten().double().cpu(), is_anomalous.detach().flatten().bool().cpu()
    if len(s) != len(y):
        raise ValueError(f"{len(s)} scores for {len(y)} labels")
    if bool(y.all()) or not bool(y.any()):
        raise ValueError("the metrics need normal and anomalous images (labels of one kind only)")
    return s[~y], s[y]


def fpr_at_tpr(scores: Tensor, is_anomalous: Tensor, tpr: float = 0.95) -> float:
    """FPR@95 (``tpr=0.95``): the share of anomalous images scored as normal at the threshold that keeps
    ``tpr`` of the normal images, the normal class being the positive one.

    Convention (exact, no interpolation): an image counts as normal when its score is <= t, and t is the lowest
    test score at which at least ``tpr`` of the normal images count as normal; anomalies tied with t count as
    normal (false positives). This is scikit-learn's ``roc_curve(is_normal, -scores, drop_intermediate=False)``
    read at its first point with TPR >= ``tpr`` (thresholds at the distinct scores, tied images move together).
    """
    normal, anomalous = _split(scores, is_anomalous)
    ranked = normal.sort().values
    kept = torch.arange(1, len(ranked) + 1, dtype=torch.float64) / len(ranked)  # share of normals <= ranked[i]
    t = ranked[int(torch.nonzero(kept >= tpr)[0])]  # the first (lowest) such score; ties give the same share
    return float((anomalous <= t).double().mean())


def aupr_in(scores: Tensor, is_anomalous: Tensor) -> float:
    """AUPR-In: average precision with the normal images as positives, ranked by ``-scores`` (the most normal
    first); ties handled as :func:`aupr` (scikit-learn's ``average_precision_score``: tied images form one step)."""
    _split(scores, is_anomalous)
    return average_precision(-scores.flatten().double(), ~is_anomalous.flatten().bool())


def aupr_out(scores: Tensor, is_anomalous: Tensor) -> float:
    """AUPR-Out: average precision with the anomalies as positives, ranked by ``scores``; the same number as
    :func:`aupr` (named for the OOD table)."""
    _split(scores, is_anomalous)
    return aupr(scores, is_anomalous)


def ood_metrics(scores: Tensor, is_anomalous: Tensor) -> dict[str, float]:
    """The OOD table of one test set: ``auroc``, ``aupr``, ``fpr95``, ``aupr_in``, ``aupr_out`` (fractions;
    :data:`CONVENTION`). A job records them as ``test_<name>``; loggers get them as ``test/<name>``."""
    return {
        "auroc": auroc(scores, is_anomalous),
        "aupr": aupr(scores, is_anomalous),
        "fpr95": fpr_at_tpr(scores, is_anomalous, 0.95),
        "aupr_in": aupr_in(scores, is_anomalous),
        "aupr_out": aupr_out(scores, is_anomalous),
    }


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

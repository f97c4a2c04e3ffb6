import torch
from sklearn.metrics import roc_auc_score
from torchmetrics.functional.classification import binary_auroc

from oe_ad.metrics import AUROC, auroc


def test_auroc_matches_sklearn_on_scores_in_the_thousands():
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(500, generator=g) < 0.3).long()
    scores = 5000 + 300 * torch.randn(500, generator=g) + 150 * labels  # all far outside [0, 1]
    expected = roc_auc_score(labels.numpy(), scores.numpy())
    assert abs(auroc(scores, labels) - expected) < 1e-6
    # the pitfall this guards against: torchmetrics' sigmoid saturates these scores to ties
    assert abs(float(binary_auroc(scores, labels)) - expected) > 0.05


def test_auroc_metric_accumulates_and_keeps_ties():
    m = AUROC()
    scores = torch.tensor([1e4, 1e4, 2e4, -3e3])
    labels = torch.tensor([0, 1, 1, 0])
    m.update(scores[:2], labels[:2])
    m.update(scores[2:], labels[2:])
    assert abs(float(m.compute()) - roc_auc_score(labels.numpy(), scores.numpy())) < 1e-6

"""AUROC exact for any score range; the OOD table (FPR@95, AUPR-In, AUPR-Out) against scikit-learn, with ties."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torchmetrics.functional.classification import binary_auroc

from oe_ad.job.scores import SCORES_NAME, read_scores, write_scores
from oe_ad.metrics import AUROC, auroc, fpr_at_tpr, ood_metrics


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


# -- the OOD table: FPR@95, AUPR-In, AUPR-Out (metrics.CONVENTION) -------------------------------------------
def sklearn_table(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The metrics as scikit-learn computes them, with the stated conventions: FPR@95 from the ROC curve with the
    normal images positive (ranked by -score), read at its first point with TPR >= 0.95."""
    fpr, tpr, _ = roc_curve(1 - labels, -scores, drop_intermediate=False)
    return {
        "auroc": roc_auc_score(labels, scores),
        "aupr": average_precision_score(labels, scores),
        "fpr95": fpr[np.argmax(tpr >= 0.95)],
        "aupr_in": average_precision_score(1 - labels, -scores),
        "aupr_out": average_precision_score(labels, scores),
    }


TIED = {
    # 20 normals 0..19: 19 of them (95 %) score <= 18, so t = 18; the two anomalies tied with t count as normal
    "anomalies tied with the threshold": ([*range(20)], [18, 18, 30, 40], 0.5),
    # the 95 % point falls inside a tie group: 10 normals at 0 (50 %), 10 at 1 (100 %), so t = 1
    "threshold inside a tie group": ([0] * 10 + [1] * 10, [0.5, 1, 2], 2 / 3),
    # every normal tied: t = their score; one anomaly tied with them
    "all normals tied": ([5.0] * 7, [5.0, 6.0], 0.5),
    # scores in the thousands (no sigmoid anywhere) and anomalies that all score below the normals
    "inverted, large scores": ([4000.0 + i for i in range(40)], [-3000.0, 12.0, 3999.0], 1.0),
    # perfectly separated: no anomaly at or below t
    "separated": ([0.1, 0.2, 0.2, 0.3], [0.4, 0.4, 9.0], 0.0),
}


@pytest.mark.parametrize("name", sorted(TIED))
def test_ood_metrics_on_hand_built_ties_match_sklearn_from_scores_csv(name, tmp_path):
    normal, anomalous, fpr95 = TIED[name]
    scores = torch.tensor([*normal, *anomalous], dtype=torch.float64)
    labels = torch.tensor([0] * len(normal) + [1] * len(anomalous))
    perm = torch.randperm(len(scores), generator=torch.Generator().manual_seed(0))  # order must not matter
    write_scores(tmp_path, scores[perm], labels[perm])
    s, y = read_scores(tmp_path / SCORES_NAME)
    ours = ood_metrics(s, y)
    expected = sklearn_table(s.numpy(), y.numpy())
    assert ours["fpr95"] == pytest.approx(fpr95, abs=1e-12)  # the value by hand, from the docstring's rule
    for key in ("fpr95", "aupr", "aupr_in", "aupr_out"):
        assert ours[key] == pytest.approx(expected[key], abs=1e-12), key
    assert ours["auroc"] == pytest.approx(expected["auroc"], abs=1e-6)
    assert ours["aupr_out"] == ours["aupr"] and all(0 <= v <= 1 for v in ours.values())


def test_ood_metrics_match_sklearn_on_random_ties():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(4, 80))
        labels = np.r_[0, 1, rng.integers(0, 2, n - 2)]  # both kinds
        scores = rng.integers(-3, 4, n) * 1000.0  # seven values: many ties
        ours = ood_metrics(torch.tensor(scores), torch.tensor(labels))
        expected = sklearn_table(scores, labels)
        for key in ("fpr95", "aupr_in", "aupr_out"):
            assert ours[key] == pytest.approx(expected[key], abs=1e-12), (key, scores, labels)


def test_fpr_at_other_rates_and_one_kind_only():
    scores, labels = torch.arange(10.0), torch.tensor([0] * 5 + [1] * 5)
    assert fpr_at_tpr(scores, labels, 1.0) == 0.0  # t = 4, the highest normal score
    assert fpr_at_tpr(-scores, labels, 0.2) == 1.0  # inverted: the lowest normal score is above every anomaly
    with pytest.raises(ValueError, match="normal and anomalous"):
        ood_metrics(scores, torch.ones(10))


def test_a_trained_jobs_record_holds_the_ood_table_of_its_scores_csv(trained_job):
    record = trained_job.record
    scores, labels = read_scores(trained_job.dir / SCORES_NAME)
    expected = sklearn_table(scores.numpy(), labels.numpy())
    for key in ("aupr", "fpr95", "aupr_in", "aupr_out"):
        assert record[f"test_{key}"] == pytest.approx(expected[key], abs=1e-9), key
    assert record["test_auroc"] == pytest.approx(expected["auroc"], abs=1e-6)
    assert json.loads((trained_job.dir / "result.json").read_text())["test_fpr95"] == record["test_fpr95"]


def test_a_meter_whose_test_scores_hold_one_kind_logs_the_auroc_alone():
    """A DDP rank may see only normal images of a tiny test set: no error, the AUROC as before."""
    from oe_ad.job.meter import Meter

    meter = Meter()
    meter.start_test()
    meter.test_step(torch.tensor([0.1, 0.3]), torch.tensor([False, False]))
    meter.end_test()
    assert set(meter.test_metrics()) == {"auroc"}
    meter.start_test()
    meter.test_step(torch.tensor([0.1, 0.3]), torch.tensor([False, True]))
    meter.end_test()
    assert meter.test_metrics() == {"auroc": 1.0, "aupr": 1.0, "fpr95": 0.0, "aupr_in": 1.0, "aupr_out": 1.0}

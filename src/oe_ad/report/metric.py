"""The per-job metrics a report can show (``--metric``), each with the convention it is computed in.

A record holds each as a fraction in [0, 1] (``test_auroc``, ...); the report prints percentages. A record
without the chosen metric (written before the metric existed, or by a job that kept no scores) counts as
missing, never as 0. The paper reports AUROC only.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str  # the --metric value
    label: str  # what a table header calls it
    field: str  # the record's key
    higher_is_better: bool
    convention: str  # one sentence: what is computed, which class is positive

    @property
    def sentence(self) -> str:
        """The header sentence of every table: the metric, its convention, its unit."""
        better = "higher is better" if self.higher_is_better else "lower is better"
        return f"{self.label} in % ({self.convention}; {better})."


METRICS = {
    m.name: m
    for m in (
        Metric("auroc", "AUROC", "test_auroc", True, "area under the ROC curve of the anomaly score; 50 = chance"),
        Metric(
            "aupr",
            "AUPR",
            "test_aupr",
            True,
            "area under the precision-recall curve (average precision) with the anomalies as the positive class, "
            "i.e. AUPR-Out",
        ),
        Metric(
            "aupr_out",
            "AUPR-Out",
            "test_aupr_out",
            True,
            "area under the precision-recall curve with the anomalies as the positive class",
        ),
        Metric(
            "aupr_in",
            "AUPR-In",
            "test_aupr_in",
            True,
            "area under the precision-recall curve with the normal images as the positive class (the score negated)",
        ),
        Metric(
            "fpr95",
            "FPR95",
            "test_fpr95",
            False,
            "share of the anomalous test images scored as normal at the threshold that keeps 95 % of the normal "
            "test images, i.e. the FPR at 95 % TPR with the normal images as the positive class",
        ),
    )
}
DEFAULT = "auroc"
PAPER_METRIC = "auroc"  # the only metric the paper reports

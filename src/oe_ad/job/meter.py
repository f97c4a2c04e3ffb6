"""What every fitter measures of one model, the same way: divergence, the training AUROC, the test scores.

A single job (Lightning hooks in ``methods/base.py``) and each member of a vectorised stack
(``vectorised/trainer.py``) feed their own :class:`Meter` step by step; so a NaN loss fails a job on both paths
with the same one-line error, and both report the same per-epoch loss and AUROC and the same test scores.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import OEADError
from ..metrics import AUROC, auroc, ood_metrics


class Diverged(OEADError):
    """A loss or score became NaN or infinite: the job fails (no record, scores or model), the user lowers lr."""


def check_finite(what: str, value: Tensor) -> None:
    """Fail the job in one line when training diverged (the paper's code raises on NaN scores too)."""
    if not bool(torch.isfinite(value).all()):
        raise Diverged(f"{what} became NaN or infinite: training diverged (try a smaller lr)")


@dataclass
class EpochStats:
    loss: float  # mean training loss over the epoch's steps
    auroc: float | None  # training AUROC of normal vs OE images (None: no OE in the batches)


class Meter:
    """One model's measurements. Per step nothing is synchronised with the device: the finiteness of the
    epoch's losses and scores is kept as a device tensor and checked once at the epoch's end."""

    def __init__(self) -> None:
        self.train_auroc = AUROC()
        self.test_scores: list[Tensor] = []
        self.test_labels: list[Tensor] = []
        self.last_epoch: EpochStats | None = None  # the latest finished epoch's
        self.last_test: tuple[float, Tensor] | None = None  # the latest test's AUROC and scores
        self._start_epoch()

    def _start_epoch(self) -> None:
        self._finite: Tensor | bool = True
        self._loss_sum: Tensor | float = 0.0
        self._steps = 0
        self.train_auroc.reset()

    def train_step(self, loss: Tensor, scores: Tensor | None = None, is_anomalous: Tensor | None = None) -> None:
        """A training step's loss and, when the batch holds OE images, its scores (OE = anomalous)."""
        loss = loss.detach()
        self._finite = torch.isfinite(loss) & self._finite
        self._loss_sum = self._loss_sum + loss
        self._steps += 1
        if scores is not None:
            self._finite = torch.isfinite(scores).all() & self._finite
            self.train_auroc.update(scores, is_anomalous)

    def end_epoch(self, epoch: int) -> EpochStats:
        """The epoch's mean loss and training AUROC; :class:`Diverged` if a loss or score was not finite."""
        check_finite(f"the training loss or scores of epoch {epoch}", torch.as_tensor(self._finite))
        with_oe = bool(self.train_auroc.update_count)
        stats = EpochStats(
            float(self._loss_sum) / max(self._steps, 1), float(self.train_auroc.compute()) if with_oe else None
        )
        self._start_epoch()
        self.last_epoch = stats
        return stats

    def start_test(self) -> None:
        self.test_scores, self.test_labels = [], []

    def test_step(self, scores: Tensor, is_anomalous: Tensor) -> None:
        self.test_scores.append(scores.detach().float().cpu())
        self.test_labels.append(is_anomalous.detach().cpu())

    def end_test(self) -> tuple[float, Tensor]:
        """(test AUROC, the scores in test-set order); :class:`Diverged` if a score is not finite."""
        scores = torch.cat([s.flatten() for s in self.test_scores]) if self.test_scores else torch.zeros(0)
        check_finite("the test scores", scores)
        labels = torch.cat([y.flatten() for y in self.test_labels]) if self.test_labels else torch.zeros(0)
        self.last_test = (auroc(scores, labels), scores)
        return self.last_test

    def test_metrics(self) -> dict[str, float]:
        """The latest test's AUROC, AUPR, FPR@95, AUPR-In and AUPR-Out (``metrics.ood_metrics``); the AUROC alone
        when the scores seen here hold one kind of image (a DDP rank's share of a tiny test set)."""
        labels = torch.cat([y.flatten() for y in self.test_labels])
        n_anomalous = int(labels.sum())
        if n_anomalous in (0, len(labels)):
            return {"auroc": self.last_test[0]}
        return ood_metrics(self.last_test[1], labels)

"""Shared mechanics of every method: balanced batch in, loss, anomaly score, AUROC, optimiser + schedule."""

from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from ..metrics import AUROC


class AnomalyDetector(pl.LightningModule):
    """Subclasses implement :meth:`loss` and :meth:`score` (and may override :meth:`forward`).

    ``uses_oe``: False for one-class methods (batches are then normal only).
    ``needs_training``: False for zero-shot methods (``fit`` is skipped).
    ``normalises_input``: True when the net does its own input normalisation (CLIP): batches then arrive in [0, 1].
    """

    uses_oe: bool = True
    needs_training: bool = True
    normalises_input: bool = False

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        lr: float = 1e-3,
        milestones: Sequence[int] = (),
        **_: object,
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.lr = lr
        self.milestones = list(milestones)
        self.train_auroc = AUROC()
        self.test_auroc = AUROC()
        self.test_scores: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        raise NotImplementedError

    def score(self, out: Tensor) -> Tensor:
        """Anomaly score per sample from the forward output (larger = more anomalous)."""
        raise NotImplementedError

    # -- training ----------------------------------------------------------------------------------------
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, is_normal = batch
        out = self(x)  # normal and OE images in one forward pass, so BatchNorm sees both
        loss = self.loss(out, is_normal)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        if not bool(is_normal.all()):
            self.train_auroc.update(self.score(out.detach()), ~is_normal)
        return loss

    def on_train_epoch_end(self) -> None:
        if self.train_auroc.update_count:
            self.log("train/auroc", self.train_auroc.compute())
        self.train_auroc.reset()

    # -- testing -----------------------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self.test_scores = []

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, is_anomalous = batch
        scores = self.score(self(x))
        self.test_scores.append(scores.detach().cpu())
        self.test_auroc.update(scores, is_anomalous)

    def on_test_epoch_end(self) -> None:
        self.log("test/auroc", self.test_auroc.compute())
        self.test_auroc.reset()

    # -- optimisation ------------------------------------------------------------------------------------
    def configure_optimizers(self):
        opt = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad], lr=self.lr)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=self.milestones, gamma=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch", "name": "train/lr"}}

"""Shared mechanics of every method: balanced batch in, loss, anomaly score, AUROC, optimiser + schedule."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from ..errors import OEADError
from ..metrics import AUROC


def check_finite(what: str, value: Tensor) -> None:
    """Fail the job in one line when training diverged (the paper's code raises on NaN scores too)."""
    if not bool(torch.isfinite(value).all()):
        raise OEADError(f"{what} became NaN or infinite: training diverged (try a smaller lr)")


class AnomalyDetector(pl.LightningModule):
    """Subclasses implement :meth:`loss` and :meth:`score` (and may override :meth:`forward`).

    ``oe_use``: ``"required"`` for OE methods (a config without an OE pool is refused), ``"none"`` for one-class
    methods (batches are normal only; a configured pool is ignored), ``"optional"`` for a method that trains
    with a pool when one is configured and without one otherwise.
    ``needs_training``: False for zero-shot methods (``fit`` is skipped).
    ``normalises_input``: True when the net does its own input normalisation (CLIP): batches then arrive in [0, 1].
    The constructor takes no other keys: a misspelt option is a ``TypeError`` (the schema names it first).
    """

    oe_use: str = "required"
    needs_training: bool = True
    normalises_input: bool = False

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        lr: float = 1e-3,
        milestones: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.lr = lr
        self.milestones = list(milestones)
        self.train_auroc = AUROC()
        self.test_auroc = AUROC()
        self.test_scores: list[Tensor] = []
        self._finite = torch.tensor(True)  # all training losses and scores of this epoch finite so far

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        raise NotImplementedError

    def score(self, out: Tensor) -> Tensor:
        """Anomaly score per sample from the forward output (larger = more anomalous)."""
        raise NotImplementedError

    # -- training ----------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self.prepare_fit(self.trainer.datamodule)

    def prepare_fit(self, datamodule: Any) -> None:
        """Set up from the training data before the first step (the vectorised trainer calls it too)."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, is_normal = batch
        out = self(x)  # normal and OE images in one forward pass, so BatchNorm sees both
        loss = self.loss(out, is_normal)
        # on the device, no sync per step: checked at the epoch's end
        self._finite = self._finite.to(loss.device) & torch.isfinite(loss.detach())
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        if not bool(is_normal.all()):
            scores = self.score(out.detach())
            self._finite &= torch.isfinite(scores).all()
            self.train_auroc.update(scores, ~is_normal)
        return loss

    def on_train_epoch_end(self) -> None:
        check_finite(f"the training loss or scores of epoch {self.current_epoch}", self._finite)
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
        check_finite("the test scores", torch.cat(self.test_scores) if self.test_scores else torch.ones(0))
        self.log("test/auroc", self.test_auroc.compute())
        self.test_auroc.reset()

    # -- optimisation ------------------------------------------------------------------------------------
    def optimizers_for(
        self, params: Iterable[nn.Parameter]
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """The method's optimiser over ``params`` (its own, or a stack's) and its per-epoch schedule."""
        opt = self.optimizer_factory(params=[p for p in params if p.requires_grad], lr=self.lr)
        return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=self.milestones, gamma=0.1)

    def configure_optimizers(self):
        opt, sched = self.optimizers_for(self.parameters())
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch", "name": "train/lr"}}

"""Shared mechanics of every method: balanced batch in, loss, anomaly score, optimiser + schedule.

What a method knows of its job's data arrives through :meth:`AnomalyDetector.prepare` (the job lifecycle calls
it before fitting, ``predict`` before loading weights): no method reads ``trainer.datamodule``. What every fitter
measures (divergence, training AUROC, test scores) is :class:`oe_ad.job.meter.Meter`, shared with the vectorised path.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from ..job.meter import Meter
from ..oe_use import trains_with_oe


@dataclass
class Facts:
    """What a method may know of its job's data before training.

    ``normal_names``: the normal class names (one vs. rest: one; leave-one-out: K), e.g. CLIP's prompts.
    ``normal_batches``: the normal training images, normalised and not augmented, as (images, labels) chunks
    (e.g. the Deep SVDD centre); None where no data is at hand (``predict``: the state comes with the weights).
    """

    normal_names: list[str]
    normal_batches: Callable[[], Iterable[tuple[Tensor, Tensor]]] | None = None

    def saved(self) -> dict:
        """The part ``model.pt`` keeps, so ``predict`` can prepare the method as training did."""
        return {"normal_names": list(self.normal_names)}


class AnomalyDetector(pl.LightningModule):
    """Subclasses implement :meth:`loss` and :meth:`score` (and may override :meth:`forward` and :meth:`prepare`).

    ``oe_use``: ``"required"`` for OE methods (a config without an OE pool is refused), ``"none"`` for one-class
    methods (batches are normal only; a configured pool is ignored), ``"optional"`` for a method that trains
    with a pool when one is configured and without one otherwise (``oe_ad.oe_use``).
    ``oe_switch``: the name of a boolean option that makes a ``"none"`` method train with OE (Deep SVDD's
    ``with_oe``, as the paper's code trains it).
    ``needs_training``: False for zero-shot methods (``fit`` is skipped).
    ``normalises_input``: True when the net does its own input normalisation (CLIP): batches then arrive in [0, 1].
    ``score_scale``: what the raw score measures, in words (``model.pt`` stores it; ``oe-ad-predict`` prints it).
    The constructor takes no other keys: a misspelt option is a ``TypeError`` (the schema names it first).
    """

    oe_use: str = "required"
    oe_switch: str | None = None
    needs_training: bool = True
    normalises_input: bool = False
    score_scale: str = "the method's anomaly score"

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
        self.meter = Meter()

    @classmethod
    def trains_with_oe(cls, options: Mapping) -> bool:
        """Whether the method configured with ``options`` (its ``method`` config node) trains with a configured
        OE pool; what the job builds its batches from, before any instance exists (``oe_ad.oe_use``)."""
        return trains_with_oe(cls.oe_use, cls.oe_switch, options)

    def prepare(self, facts: Facts) -> None:
        """Set up data-derived state before the first step (default: none)."""

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        raise NotImplementedError

    def score(self, out: Tensor) -> Tensor:
        """Anomaly score per sample from the forward output (larger = more anomalous)."""
        raise NotImplementedError

    # -- training (Lightning hooks; the vectorised trainer feeds its members' meters the same way) -------------
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, is_normal = batch
        out = self(x)  # normal and OE images in one forward pass, so BatchNorm sees both
        loss = self.loss(out, is_normal)
        with_oe = not bool(is_normal.all())
        self.meter.train_step(loss, self.score(out.detach()) if with_oe else None, ~is_normal)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def on_train_epoch_end(self) -> None:
        stats = self.meter.end_epoch(self.current_epoch)
        if stats.auroc is not None:
            self.log("train/auroc", stats.auroc)

    # -- testing -----------------------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self.meter.start_test()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, is_anomalous = batch
        self.meter.test_step(self.score(self(x)), is_anomalous)

    def on_test_epoch_end(self) -> None:
        self.meter.end_test()
        # every logger (CSV, TensorBoard, W&B) gets the OOD table: test/auroc, test/aupr, test/fpr95, ...
        self.log_dict({f"test/{k}": v for k, v in self.meter.test_metrics().items()})

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

"""Train M jobs as one stacked model: per-model data streams, weights, BatchNorm statistics and Adam state.

Model m reproduces ``train.run_job`` for its own config: the same seeded initial weights (the method is built
exactly as a single job builds it, then copied into the stack), the same datamodule (OE subset, batch order,
augmentation), Adam on its own slice of every tensor (Adam is elementwise, and all models of a group share
lr, milestones and the number of steps), and the same test.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..data.datamodule import OEDataModule
from ..data.sources import OEPool, Split, SubsetPool  # noqa: F401  (re-exported)
from ..errors import OEADError
from ..losses import svdd_center
from ..methods.deep_svdd import DeepSVDD
from ..metrics import auroc
from ..progress import Progress
from ..train import _without_name, build, build_datamodule, build_method, uses_oe, validate
from .grouping import group_key
from .memory import chunks, models_per_step, step_bytes
from .objectives import Objective, objective
from .stacked import StackedCNN32, check_net

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class _SharedSource:
    """A normal dataset loaded once (onto the training device) for every model that uses it."""

    def __init__(self, source, device: torch.device) -> None:
        self.source, self.device, self.splits = source, device, None

    @property
    def classes(self) -> list[str]:
        return self.source.classes

    def load(self) -> tuple[Split, Split]:
        if self.splits is None:
            self.splits = tuple(Split(s.images.to(self.device), s.labels.to(self.device)) for s in self.source.load())
        return self.splits


class Sources:
    """Every distinct data / OE config of a process built and loaded once."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._cache: dict[str, object] = {}

    def _get(self, node: DictConfig, wrap):
        key = OmegaConf.to_yaml(node, resolve=True)
        if key not in self._cache:
            self._cache[key] = wrap(build(_without_name(node)))
        return self._cache[key]

    def normal(self, cfg: DictConfig) -> _SharedSource:
        return self._get(cfg.data, lambda s: _SharedSource(s, self.device))

    def oe(self, cfg: DictConfig) -> OEPool:
        return self._get(cfg.oe, lambda p: p)


@dataclass
class Member:
    """One model of a stack: its job config, its method at the initial weights, its data."""

    cfg: DictConfig
    method: pl.LightningModule
    datamodule: OEDataModule
    clock: SimpleNamespace = field(repr=False)  # stands in for the Lightning trainer the datamodule reads

    @property
    def steps(self) -> int:
        return len(self.datamodule.train_dataloader())


@dataclass
class Outcome:
    test_auroc: float
    train_auroc: float | None
    train_time_s: float
    device: str
    losses: list[float]  # the training loss of every step
    scores: torch.Tensor | None = None  # test scores, one per test image (CPU)
    history: list[dict[str, float | None]] = field(default_factory=list)  # per epoch: train/lr, train/loss, train/auroc


def prepare(cfg: DictConfig, sources: Sources, oe_pool: OEPool | None = None) -> Member:
    """Seed, build the method and the datamodule as ``train.run_job`` does; load the data.

    ``oe_pool`` replaces the configured pool (the single-OE search trains on one chosen image).
    """
    validate(cfg)
    if str(cfg.trainer.get("precision", "32-true")) not in ("32", "32-true"):
        raise OEADError(f"launcher=vectorised trains in float32: trainer.precision={cfg.trainer.precision}")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # fixes the initial weights, as in run_job
    method = build_method(cfg)
    check_net(method)
    dm = build_datamodule(cfg)
    dm.normal_source = sources.normal(cfg)
    if uses_oe(cfg):
        dm.oe_pool = oe_pool if oe_pool is not None else sources.oe(cfg)
    clock = SimpleNamespace(
        current_epoch=0, global_rank=0, world_size=1, strategy=SimpleNamespace(root_device=sources.device)
    )
    dm.trainer = clock
    dm.setup("fit")
    dm.test_batch_size = 2 * cfg.batch_size  # test chunks no larger than a training batch, for every model
    return Member(cfg, method, dm, clock)


@torch.no_grad()
def _set_svdd_center(member: Member, device: torch.device) -> None:
    """Deep SVDD's centre from the initial network on the normal data (DeepSVDD.on_fit_start)."""
    method = member.method.to(device).eval()
    feats = torch.cat([method(x) for x, _ in member.datamodule.normal_batches()])
    method.center.copy_(svdd_center(feats))
    method.center_ready.fill_(True)
    method.train()


def build_stack(
    members: Sequence[Member], device: torch.device
) -> tuple[StackedCNN32, torch.optim.Optimizer, Objective]:
    """The stacked network at every member's initial weights, its optimiser (the method's, e.g. Adam), the objective."""
    cfg, methods = members[0].cfg, [m.method for m in members]
    obj = objective(methods)
    net = StackedCNN32(len(methods), check_net(methods[0]), head=obj.head)
    for i, method in enumerate(methods):
        net.load_model(i, method)
    net.to(device)
    opt = instantiate(cfg.method.optimizer)(params=[p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    return net, opt, obj


def fused_step(
    net: StackedCNN32, opt: torch.optim.Optimizer, obj: Objective, batches
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step of every model on its own (images, is_normal) batch; (outputs, losses)."""
    x, is_normal = torch.stack([b[0] for b in batches]), batches[0][1]
    opt.zero_grad(set_to_none=True)
    out = net(x)
    loss = obj.loss(out, is_normal)
    loss.sum().backward()  # model m's gradient is that of its own loss
    opt.step()
    return out.detach(), loss.detach()


def train_stack(members: Sequence[Member], device: torch.device) -> list[Outcome]:
    """Fit and test the members (one group: equal configs but for seed/class/OE size, equal steps)."""
    cfg, m_count = members[0].cfg, len(members)
    if len({m.steps for m in members}) > 1:
        raise OEADError("launcher=vectorised: models of one stack need the same number of steps per epoch")
    if isinstance(members[0].method, DeepSVDD) and cfg.epochs > 0:
        for m in members:
            _set_svdd_center(m, device)
    net, opt, obj = build_stack(members, device)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=0.1)
    train_auroc: list[float | None] = [None] * m_count
    history: list[torch.Tensor] = []
    epochs: list[list[dict[str, float | None]]] = [[] for _ in members]  # what a logger gets per epoch
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        te = time.perf_counter()
        lr = sched.get_last_lr()[0]
        for m in members:
            m.clock.current_epoch = epoch  # the datamodule seeds its order and augmentation with the epoch
        net.train()
        scores, loss_sum, n_steps, is_normal = [], torch.zeros(m_count, device=device), 0, None
        for batches in zip(*(m.datamodule.train_dataloader() for m in members)):
            is_normal = batches[0][1]
            out, loss = fused_step(net, opt, obj, batches)
            history.append(loss)
            loss_sum += history[-1]
            n_steps += 1
            if not bool(is_normal.all()):
                scores.append(obj.score(out))
        sched.step()
        if scores:
            s = torch.cat(scores, 1)
            labels = (~is_normal).repeat(len(scores))
            train_auroc = [auroc(s[i], labels) for i in range(m_count)]
        mean_loss = (loss_sum / max(n_steps, 1)).mean().item()
        for i, row in enumerate(epochs):
            row.append(
                {"train/lr": lr, "train/loss": (loss_sum[i] / max(n_steps, 1)).item(), "train/auroc": train_auroc[i]}
            )
        aucs = [a for a in train_auroc if a is not None]
        log.info(
            "epoch %d/%d, %d models: mean loss=%.4f%s (%.1f s)",
            epoch + 1,
            cfg.epochs,
            m_count,
            mean_loss,
            f" mean train auroc={np.mean(aucs):.4f}" if aucs else "",
            time.perf_counter() - te,
        )
    train_time = time.perf_counter() - t0
    test, scores = test_stack(net, members, obj.score)
    curves = torch.stack(history, 1).tolist() if history else [[] for _ in members]
    return [
        Outcome(test[i], train_auroc[i], train_time, str(device), curves[i], scores[i].cpu(), epochs[i])
        for i in range(m_count)
    ]


@torch.inference_mode()
def test_stack(net: StackedCNN32, members: Sequence[Member], score) -> tuple[list[float], torch.Tensor]:
    """Test AUROC of every model on its own test labels and normalisation, and the scores (models x images)."""
    net.eval()
    loaders = [m.datamodule.test_dataloader() for m in members]
    if len({len(m.datamodule.test_images) for m in members}) > 1:
        raise OEADError("launcher=vectorised: models of one stack need the same test set")
    scores = [score(net(torch.stack([b[0] for b in batches]))) for batches in zip(*loaders)]
    s = torch.cat(scores, 1)
    return [auroc(s[i], m.datamodule.test_labels) for i, m in enumerate(members)], s


def plan(members: Sequence[Member], device: torch.device, fraction: float, cap: int | None) -> list[list[int]]:
    """Stacks to train: members grouped by config and steps per epoch, each group cut to what fits."""
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(members):
        groups.setdefault((group_key(m.cfg), m.steps), []).append(i)
    stacks = []
    for idx in groups.values():
        cfg = members[idx[0]].cfg
        size = members[idx[0]].datamodule.train_normal.shape[-1]
        per_model = step_bytes(cfg.batch_size * (2 if uses_oe(cfg) else 1), size, check_net(members[idx[0]].method))
        m_max = models_per_step(per_model, device, fraction, cap)
        stacks += [[idx[i] for i in r] for r in chunks(len(idx), m_max)]
    return stacks


def train_all(
    members: Sequence[Member], device: torch.device, fraction: float = 0.8, cap: int | None = None
) -> list[Outcome]:
    """Train every member, in as few fused stacks as memory allows; outcomes in input order."""
    outcomes: list[Outcome | None] = [None] * len(members)
    with Progress(len(members), "models trained", "models") as bar:
        for stack in plan(members, device, fraction, cap):
            log.info("training %d models as one stack on %s", len(stack), device)
            for i, outcome in zip(stack, train_stack([members[i] for i in stack], device)):
                outcomes[i] = outcome
            bar.update(len(stack))
    return outcomes

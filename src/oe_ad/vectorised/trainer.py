"""Train M jobs as one stacked model: per-model data streams, weights, BatchNorm statistics and optimiser state.

Each member is a :class:`~oe_ad.train.Job` built by ``train.prepare`` exactly as a single job is built (seeded
initial weights, datamodule, OE subset, batch order, augmentation), then copied into the stack. The stack uses
the method's own optimiser and schedule (``AnomalyDetector.optimizers_for``: Adam is elementwise, and all models
of a group share lr, milestones and the number of steps), its own fit-start hook (``prepare_fit``: the Deep SVDD
centre) and its own loss and score per slice (``objectives.py``); at the end each member gets its trained
weights back, so it can be finished like any single job.
"""

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch
from omegaconf import DictConfig

from ..data.datamodule import FixedClock
from ..data.sources import OEPool
from ..errors import OEADError
from ..factory import SourceCache, uses_oe
from ..metrics import auroc
from ..progress import Progress
from ..train import Job, Outcome, prepare
from .grouping import group_key
from .memory import chunks, models_per_step, step_bytes
from .objectives import Objective, objective
from .stacked import StackedCNN32, check_net, stack_for

log = logging.getLogger(__name__)


def prepare_member(cfg: DictConfig, sources: SourceCache, oe_pool: OEPool | None = None) -> Job:
    """A job built as ``train.prepare`` builds it, its data loaded onto the stack's device."""
    if str(cfg.trainer.get("precision", "32-true")) not in ("32", "32-true"):
        raise OEADError(f"launcher=vectorised trains in float32: trainer.precision={cfg.trainer.precision}")
    job = prepare(cfg, sources, oe_pool, FixedClock(sources.device))
    check_net(job.method)
    job.datamodule.setup("fit")
    job.datamodule.test_batch_size = 2 * cfg.batch_size  # test chunks no larger than a training batch
    return job


def steps(job: Job) -> int:
    return len(job.datamodule.train_dataloader())


def build_stack(members: Sequence[Job], device: torch.device) -> tuple[StackedCNN32, Objective]:
    """The stacked network at every member's initial weights, and the members' objective."""
    methods = [m.method for m in members]
    obj = objective(methods)
    net = stack_for(methods, obj.head)
    per_model = sum(p.numel() for p in methods[0].parameters() if p.requires_grad)
    if per_model * len(methods) != sum(p.numel() for p in net.parameters()):
        raise OEADError(f"launcher=vectorised: {type(methods[0]).__name__} has weights outside CNN32 and a head")
    for i, method in enumerate(methods):
        net.load_model(i, method)
    return net.to(device), obj


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


def train_stack(members: Sequence[Job], device: torch.device) -> list[Outcome]:
    """Fit and test the members (one group: equal configs but for seed/class/OE size, equal steps); each
    member's method holds its trained weights afterwards."""
    cfg, m_count = members[0].cfg, len(members)
    if len({steps(m) for m in members}) > 1:
        raise OEADError("launcher=vectorised: models of one stack need the same number of steps per epoch")
    fits = members[0].method.needs_training and cfg.epochs > 0
    for m in members:
        m.method.to(device)  # the method's own state (e.g. the Deep SVDD centre) next to the stack
        if fits:
            m.method.prepare_fit(m.datamodule)
    net, obj = build_stack(members, device)
    opt, sched = members[0].method.optimizers_for(net.parameters())
    train_auroc: list[float | None] = [None] * m_count
    history: list[torch.Tensor] = []
    epochs: list[list[dict[str, float | None]]] = [[] for _ in members]  # what each member's logger gets
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs if fits else 0):
        te = time.perf_counter()
        lr = sched.get_last_lr()[0]
        for m in members:
            m.datamodule.clock.epoch = epoch  # the datamodule seeds its order and augmentation with the epoch
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
    for i, m in enumerate(members):
        net.export_model(i, m.method)
    curves = torch.stack(history, 1).tolist() if history else [[] for _ in members]
    n_steps = steps(members[0])
    return [
        Outcome(test[i], train_auroc[i], train_time, str(device), curves[i], scores[i].cpu(), epochs[i], n_steps)
        for i in range(m_count)
    ]


@torch.inference_mode()
def test_stack(net: StackedCNN32, members: Sequence[Job], score) -> tuple[list[float], torch.Tensor]:
    """Test AUROC of every model on its own test labels and normalisation, and the scores (models x images)."""
    net.eval()
    loaders = [m.datamodule.test_dataloader() for m in members]
    if len({len(m.datamodule.test_images) for m in members}) > 1:
        raise OEADError("launcher=vectorised: models of one stack need the same test set")
    scores = [score(net(torch.stack([b[0] for b in batches]))) for batches in zip(*loaders)]
    s = torch.cat(scores, 1)
    return [auroc(s[i], m.datamodule.test_labels) for i, m in enumerate(members)], s


def plan(members: Sequence[Job], device: torch.device, fraction: float, cap: int | None) -> list[list[int]]:
    """Stacks to train: members grouped by config and steps per epoch, each group cut to what fits."""
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(members):
        groups.setdefault((group_key(m.cfg), steps(m)), []).append(i)
    stacks = []
    for idx in groups.values():
        first = members[idx[0]]
        size = first.datamodule.train_normal.shape[-1]
        batch = first.cfg.batch_size * (2 if uses_oe(first.cfg) else 1)
        m_max = models_per_step(step_bytes(batch, size, check_net(first.method)), device, fraction, cap)
        stacks += [[idx[i] for i in r] for r in chunks(len(idx), m_max)]
    return stacks


def train_all(
    members: Sequence[Job], device: torch.device, fraction: float = 0.8, cap: int | None = None
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

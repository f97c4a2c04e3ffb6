"""The stack fitter: M jobs trained as one stacked model, each with its own data stream, weights, BatchNorm
statistics, optimiser state and :class:`~oe_ad.job.meter.Meter`.

The job loop (``job.loop.run_jobs``) hands it validated, claimed jobs. Each member is built by ``job.loop.prepare`` and
``job.loop.ready`` exactly as a single job (seeded initial weights, datamodule, OE subset, batch order,
augmentation, the method's facts such as the Deep SVDD centre), then copied into the stack. The stack uses the
method's own optimiser and schedule (``AnomalyDetector.optimizers_for``: Adam is elementwise, and all members of
a group share lr, milestones and the number of steps) and its own loss and score per slice
(``objectives.py``). A member whose loss or scores diverge fails alone (its meter's one-line error); the others
finish, with the numbers they would have without it. Every ``checkpoint.every_n_epochs`` each member writes its
own ``last.ckpt`` (weights, its slice of the optimiser state, the schedule, its history), from which a killed
stack resumes.
"""

import logging
import time
from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np
import torch

from ..config.factory import SourceCache, uses_oe
from ..data.datamodule import FixedClock
from ..errors import OEADError
from ..job.checkpoint import TrainingState, load_training_state, save_training_state, trained_names
from ..job.loop import Job, JobSpec, Outcome, prepare, ready, set_threads
from ..job.meter import Diverged
from ..progress import Progress
from .grouping import group_key
from .memory import chunks, models_per_step, step_bytes
from .objectives import Objective, objective
from .probe import choose, device_label, time_per_step
from .stacked import StackedCNN32, check_net, stack_for

log = logging.getLogger(__name__)


class Member:
    """A job in a stack: the job, where it resumes from (its ``last.ckpt``: epochs done and the state) and what it
    has recorded so far."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.resume = load_training_state(job.spec.dir, job.hash)
        self.start = self.resume.epochs_done if self.resume else 0
        self.losses: list[float] = []  # per training step of this run (a diagnostic)
        self.history: list[dict] = list(self.resume.history) if self.resume else []
        self.train_time = self.resume.train_time_s if self.resume else 0.0
        self.train_auroc: float | None = self.history[-1].get("train/auroc") if self.history else None
        self.error: Exception | None = None


class StackFitter:
    """Fits many jobs at once: jobs whose configs differ only in seed, normal class and OE size (and that have
    the same steps per epoch and resume epoch) train as stacks; per group, the stack size and convolution mode that
    train fastest on this device (``probe.choose``; ``max_models`` fixes the size, ``conv`` the mode), within what
    fits in memory."""

    def __init__(
        self, sources: SourceCache, max_models: int | None = None, memory_fraction: float = 0.8, conv: str = "auto"
    ) -> None:
        self.sources, self.max_models, self.memory_fraction, self.conv = sources, max_models, memory_fraction, conv

    @property
    def device(self) -> torch.device:
        return self.sources.device

    def fit_and_test(self, specs: Sequence[JobSpec]) -> Iterator[tuple[JobSpec, Job | None, Outcome | Exception]]:
        members: list[Member] = []
        for spec in specs:
            try:
                members.append(Member(self.prepare(spec)))
            except Exception as e:  # one job's bad data must not stop the others
                yield spec, None, e
        try:
            stacks = plan(members, self.device, self.memory_fraction, self.max_models, self.conv)
        except OEADError as e:
            for m in members:
                yield m.job.spec, m.job, e
            return
        with Progress(len(members), "models trained", "models") as bar:
            for stack, conv in stacks:
                group = [members[k] for k in stack]
                log.info("training %d models as one stack on %s", len(group), self.device)
                try:
                    outcomes: list[Outcome | Exception] = train_stack(group, self.device, conv)
                except Exception as e:  # one failing stack must not lose the others
                    if not isinstance(e, OEADError):
                        log.exception("stack failed")
                    outcomes = [e] * len(group)
                for m, outcome in zip(group, outcomes):
                    yield m.job.spec, m.job, outcome
                bar.update(len(group))

    def prepare(self, spec: JobSpec) -> Job:
        """A job built as a single job is built, its data loaded onto the stack's device."""
        cfg = spec.cfg
        if str(cfg.trainer.get("precision", "32-true")) not in ("32", "32-true"):
            raise OEADError(f"launcher=vectorised trains in float32: trainer.precision={cfg.trainer.precision}")
        set_threads(cfg.get("threads"))
        job = prepare(spec, self.sources, FixedClock(self.device))
        check_net(job.method)
        ready(job)
        job.datamodule.test_batch_size = 2 * cfg.batch_size  # test chunks no larger than a training batch
        return job


def steps(job: Job) -> int:
    return len(job.datamodule.train_dataloader())


def build_stack(jobs: Sequence[Job], device: torch.device) -> tuple[StackedCNN32, Objective]:
    """The stacked network at every member's weights, and the members' objective."""
    methods = [j.method for j in jobs]
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
    loss.sum().backward()  # model m's gradient is that of its own loss, whatever the others' (even NaN)
    opt.step()
    return out.detach(), loss.detach()


# -- per-member checkpoints: each member's last.ckpt is a single job's (job/checkpoint.py) ----------------------
def save_member(net: StackedCNN32, i: int, m: Member, opt: torch.optim.Optimizer, sched, epochs_done: int) -> None:
    """Member ``i``'s ``last.ckpt``: its weights and buffers, its slice of the optimiser state by parameter name, the
    schedule and what it has recorded so far, as a single job of the same config writes it."""
    method = m.job.method
    net.export_model(i, method)
    trained = set(trained_names(method))
    moments = {}
    for tensor, index, name in net.slots(i):
        state = opt.state.get(tensor)
        if state and name in trained:
            moments[name] = {k: (v if k == "step" else v[index]).detach().cpu().clone() for k, v in state.items()}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    state = TrainingState(
        epochs_done,
        epochs_done * steps(m.job),
        {k: v.detach().cpu() for k, v in method.state_dict().items()},
        {"state": moments, "param_groups": groups},
        sched.state_dict(),
        m.history,
        m.train_time,
    )
    save_training_state(m.job.spec.dir, m.job.hash, state)


def restore_members(net: StackedCNN32, members: Sequence[Member], opt: torch.optim.Optimizer, sched) -> None:
    """Load the members' checkpoints (all at the same epoch: ``plan`` groups them so) into the stack."""
    for i, m in enumerate(members):
        m.job.method.load_state_dict(m.resume.state_dict)
        net.load_model(i, m.job.method)
        for tensor, index, name in net.slots(i):
            for k, v in m.resume.optimizer["state"].get(name, {}).items():
                state = opt.state[tensor]
                if k == "step":
                    state["step"] = v.clone()
                else:
                    state.setdefault(k, torch.zeros_like(tensor))[index] = v.to(tensor.device)
    for group, saved in zip(opt.param_groups, members[0].resume.optimizer["param_groups"]):
        group.update({k: v for k, v in saved.items() if k != "params"})  # the schedule's current lr
    sched.load_state_dict(members[0].resume.scheduler)


# -- training ------------------------------------------------------------------------------------------------
def train_stack(members: Sequence[Member], device: torch.device, conv: str = "split") -> list[Outcome | Exception]:
    """Fit and test the members (one group: equal configs but for seed/class/OE size, equal steps and resume
    epoch) with ``conv`` convolutions; each member's method holds its trained weights afterwards. Per member: its
    outcome, or its error."""
    jobs = [m.job for m in members]
    cfg = jobs[0].cfg
    if len({steps(j) for j in jobs}) > 1 or len({m.start for m in members}) > 1:
        raise OEADError("launcher=vectorised: models of one stack need the same steps per epoch and resume epoch")
    fits = jobs[0].method.needs_training and cfg.epochs > 0
    net, obj = build_stack(jobs, device)
    net.conv = conv
    opt, sched = jobs[0].method.optimizers_for(net.parameters())
    if members[0].start:
        restore_members(net, members, opt, sched)
    every = int((cfg.get("checkpoint") or {}).get("every_n_epochs") or 0)
    live = [m.job.spec.dir is not None for m in members]  # a search fitness writes no checkpoints
    for epoch in range(members[0].start, cfg.epochs if fits else 0):
        t0 = time.perf_counter()
        losses = train_epoch(net, opt, obj, members, epoch, sched.get_last_lr()[0])
        for i, values in enumerate(losses.T.tolist()):  # one device sync per epoch, not per step
            members[i].losses += values
        sched.step()
        seconds = time.perf_counter() - t0
        for m in members:
            m.train_time += seconds
        log_epoch(members, epoch, cfg.epochs, seconds)
        if every and (epoch + 1) % every == 0:
            for i, m in enumerate(members):
                if live[i] and m.error is None:
                    save_member(net, i, m, opt, sched, epoch + 1)
    test_members(net, members, obj)
    for i, m in enumerate(members):
        net.export_model(i, m.job.method)
    n_steps = steps(jobs[0])
    return [
        m.error
        or Outcome(
            m.job.method.meter.last_test[0],
            m.train_auroc,
            m.train_time,
            str(device),
            m.losses,
            m.job.method.meter.last_test[1],
            m.history,
            n_steps,
        )
        for m in members
    ]


def train_epoch(
    net: StackedCNN32, opt, obj: Objective, members: Sequence[Member], epoch: int, lr: float
) -> torch.Tensor:
    """One epoch of every member on its own batches, each member's meter measuring it as Lightning's hooks do;
    the losses, (steps, members)."""
    for m in members:
        m.job.datamodule.clock.epoch = epoch  # the datamodule seeds its order and augmentation with the epoch
    net.train()
    losses = []
    for batches in zip(*(m.job.datamodule.train_dataloader() for m in members)):
        is_normal = batches[0][1]
        out, loss = fused_step(net, opt, obj, batches)
        losses.append(loss)
        scores = None if bool(is_normal.all()) else obj.score(out)
        for i, m in enumerate(members):
            if m.error is None:
                m.job.method.meter.train_step(loss[i], None if scores is None else scores[i], ~is_normal)
    for m in members:
        if m.error is not None:
            continue
        try:
            stats = m.job.method.meter.end_epoch(epoch)
        except Diverged as e:  # this member fails; the others train on, unaffected (their own weights)
            m.error = e
            continue
        m.train_auroc = stats.auroc
        m.history.append({"train/lr": lr, "train/loss": stats.loss, "train/auroc": stats.auroc})
    return torch.stack(losses).cpu()


def log_epoch(members: Sequence[Member], epoch: int, epochs: int, seconds: float) -> None:
    rows = [m.history[-1] for m in members if m.error is None and m.history]
    aucs = [r["train/auroc"] for r in rows if r["train/auroc"] is not None]
    failed = sum(m.error is not None for m in members)
    log.info(
        "epoch %d/%d, %d models%s: mean loss=%.4f%s (%.1f s)",
        epoch + 1,
        epochs,
        len(members),
        f" ({failed} diverged)" if failed else "",
        float(np.mean([r["train/loss"] for r in rows])) if rows else float("nan"),
        f" mean train auroc={np.mean(aucs):.4f}" if aucs else "",
        seconds,
    )


@torch.inference_mode()
def test_members(net: StackedCNN32, members: Sequence[Member], obj: Objective) -> None:
    """Every member's test scores on its own test labels and normalisation, into its meter."""
    net.eval()
    loaders = [m.job.datamodule.test_dataloader() for m in members]
    if len({len(m.job.datamodule.test_images) for m in members}) > 1:
        raise OEADError("launcher=vectorised: models of one stack need the same test set")
    for m in members:
        m.job.method.meter.start_test()
    for batches in zip(*loaders):
        scores = obj.score(net(torch.stack([b[0] for b in batches])))
        for i, m in enumerate(members):
            m.job.method.meter.test_step(scores[i], batches[i][1])
    for m in members:
        if m.error is None:
            try:
                m.job.method.meter.end_test()
            except Diverged as e:
                m.error = e


def plan(
    members: Sequence[Member], device: torch.device, fraction: float, cap: int | None, conv: str = "auto"
) -> list[tuple[list[int], str]]:
    """Stacks to train, each with its convolution mode: members grouped by config, steps per epoch and resume
    epoch, each group cut into near-equal stacks of the size :func:`~oe_ad.vectorised.probe.choose` finds fastest
    (``cap``: that size, the user's), at most what fits in ``fraction`` of the free memory."""
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(members):
        groups.setdefault((group_key(m.job.cfg), steps(m.job), m.start), []).append(i)
    stacks = []
    for idx in groups.values():
        first = members[idx[0]].job
        size = first.datamodule.train_normal.shape[-1]
        batch = first.cfg.batch_size * (2 if uses_oe(first.cfg) else 1)
        bound = min(len(idx), models_per_step(step_bytes(batch, size, check_net(first.method)), device, fraction))
        method = first.method
        key = (
            f"{device_label(device)} | {type(method).__name__} out_dim={method.net.out_dim} bias={method.net.bias}"
            f" head={objective([method]).head} batch={batch} image={size}"
        )
        measure = partial(time_stack, first, device, size)
        choice = choose(measure, key, bound, cap, conv, first.cfg.get("paths", {}).get("cache_dir"))
        if choice.seconds is not None:
            log.info(choice.describe(str(device), bound))
        stacks += [([idx[i] for i in r], choice.conv) for r in chunks(len(idx), choice.models)]
    return stacks


def time_stack(job: Job, device: torch.device, size: int, models: int, conv: str) -> float:
    """Seconds per fused step of a stack of ``models`` copies of ``job``'s model in ``conv`` mode on a batch of its
    shape (fixed pseudo-random images: the global random state, which seeds the jobs, is left as it is)."""
    net, obj = build_stack([job] * models, device)
    net.conv = conv
    opt, _ = job.method.optimizers_for(net.parameters())
    half = job.cfg.batch_size
    n = half * (2 if uses_oe(job.cfg) else 1)
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    batch = (x, (torch.arange(n) < half).to(device))
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    return time_per_step(lambda: fused_step(net, opt, obj, [batch] * models), sync)

"""Step by step: oe_ad's training loop against the paper's code's training step, on the same batches.

    python benchmarks/official/step_compare.py --eoe ../eoe --python ../eoe-venv/bin/python \\
        --data data/cifar10-jpeg --oe POOL.npy [--method hsc] [--seed 0] [--epochs 2] [OVERRIDES ...]

oe_ad trains one job (normal class 1 unless an override says otherwise) for ``--epochs`` epochs with its own
Lightning loop and records its initial weights, every training batch after augmentation and normalisation, each
step's loss, the test inputs and its test scores. ``replay.py`` then runs, in the paper's code's environment, the
paper's ``CNN32`` with the same initial weights, the paper's loss and score, and ``ADTrainer.train_cls``'s
optimiser and schedule on exactly those batches. With the same data in the same order, two implementations of
the same computation differ only by floating-point rounding: the first step's loss agrees to about 1e-7
(relative), and later steps drift apart slowly. A first-step difference above ``FIRST_STEP_TOLERANCE`` means a
different computation (network, loss, initialisation), and the script exits 1.

What this isolates: everything but the random streams. The batches (sampling, augmentation) come from oe_ad in
both runs, so agreement here leaves only the data pipeline as a source of any difference between the codes'
test AUCs (docs/fidelity.md). Extra arguments are oe_ad overrides, e.g. ``"oe.indices=[5654]"`` or
``oe_size=16``.
"""

import argparse
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

FIRST_STEP_TOLERANCE = 1e-5  # relative: float32 rounding of one forward pass is ~1e-7
METHODS = ("hsc", "bce", "focal", "deep_sad")  # replay.TRAINERS: the objectives with the plain CNN32 step
# oe_ad's CNN32 modules -> the paper's CNN32 attributes (the BCE/Focal head is its `linear`)
EOE_NAMES = {
    "net.convs.0": "conv1",
    "net.bns.0": "bn2d1",
    "net.convs.1": "conv2",
    "net.bns.1": "bn2d2",
    "net.convs.2": "conv3",
    "net.bns.2": "bn2d3",
    "net.fc1": "fc1",
    "net.bn1": "bn1d1",
    "net.fc2": "fc2",
    "head": "linear",
}


def eoe_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An oe_ad method's state dict under the paper's CNN32 names (every key mapped, or a KeyError naming it)."""
    out = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module not in EOE_NAMES:
            raise KeyError(f"{key}: no counterpart in the paper's CNN32")
        out[f"{EOE_NAMES[module]}.{param}"] = value.detach().clone()
    return out


@dataclass
class Run:
    """One code's training on the recorded batches: each step's loss and the test scores."""

    losses: list[float]
    scores: torch.Tensor


def record(overrides: list[str], epochs: int) -> tuple[dict, Run, torch.Tensor]:
    """Train oe_ad's job; return the record replay.py reads, oe_ad's run and the test labels (1 = anomalous)."""
    from hydra.utils import instantiate

    from oe_ad.config import compose, job_config
    from oe_ad.config.schema import validate_config
    from oe_ad.data.datamodule import TrainerClock
    from oe_ad.job.lightning import hide_srun_hint_outside_slurm
    from oe_ad.job.loop import JobSpec, prepare, ready

    cfg = validate_config(job_config(compose(overrides), resolve=True))
    if cfg.method.name not in METHODS:
        raise SystemExit(f"method={cfg.method.name}: the step comparison covers {', '.join(METHODS)}")
    if cfg.method.optimizer._target_ != "torch.optim.Adam":  # train_cls's optimiser for the CNN objectives
        raise SystemExit(f"method.optimizer={cfg.method.optimizer._target_}: the paper's code trains with Adam")
    job = prepare(JobSpec(cfg, None))
    init = eoe_state(job.method.state_dict())
    batches: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    losses: list[float] = []
    loss = job.method.loss

    def recording_loss(out: torch.Tensor, is_normal: torch.Tensor) -> torch.Tensor:
        value = loss(out, is_normal)
        losses.append(float(value.detach()))
        return value

    job.method.loss = recording_loss
    hide_srun_hint_outside_slurm()
    trainer = instantiate(
        cfg.trainer, logger=False, callbacks=[], enable_progress_bar=False, enable_checkpointing=False
    )
    job.datamodule.clock = TrainerClock(trainer)
    ready(job)
    epoch_batches = job.datamodule.train_dataloader

    class Recording:
        """The epoch's batches as oe_ad yields them, kept for the replay."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def __len__(self) -> int:
            return len(self.inner)

        def __iter__(self):
            batches.append([])
            for x, is_normal in self.inner:
                batches[-1].append((x.detach().clone(), is_normal.clone()))
                yield x, is_normal

    job.datamodule.train_dataloader = lambda: Recording(epoch_batches())
    trainer.fit(job.method, datamodule=job.datamodule)
    trainer.test(job.method, datamodule=job.datamodule, verbose=False)
    _, scores = job.method.meter.last_test
    test = list(job.datamodule.test_dataloader())
    labels = torch.cat([y for _, y in test])
    rec = {
        "method": cfg.method.name,
        "init": init,
        "epochs": batches,
        "milestones": list(job.method.milestones),
        "lr": float(job.method.lr),
        "weight_decay": float(cfg.method.optimizer.get("weight_decay", 0.0)),
        "test": [x for x, _ in test],
    }
    return rec, Run(losses, scores), labels


@dataclass
class Comparison:
    steps: int
    first_rel: float  # relative difference of the first step's losses
    max_rel: float  # the largest relative loss difference over all steps
    max_rel_step: int
    auc_ours: float
    auc_theirs: float

    @property
    def same_computation(self) -> bool:
        return self.first_rel <= FIRST_STEP_TOLERANCE


def compare(ours: Run, theirs: Run, labels: torch.Tensor) -> Comparison:
    """The two runs' step losses and test AUCs side by side (same steps required)."""
    from oe_ad.metrics import auroc

    if len(ours.losses) != len(theirs.losses) or not ours.losses:
        raise ValueError(f"steps differ: oe_ad {len(ours.losses)}, the paper's code {len(theirs.losses)}")
    rel = [abs(a - b) / max(abs(a), 1e-30) for a, b in zip(ours.losses, theirs.losses)]
    worst = max(range(len(rel)), key=rel.__getitem__)
    return Comparison(
        len(rel),
        rel[0],
        rel[worst],
        worst,
        100 * auroc(ours.scores, labels),
        100 * auroc(theirs.scores, labels),
    )


def report(c: Comparison, ours: Run, theirs: Run) -> list[str]:
    lines = [
        f"steps: {c.steps} (the same batches in both)",
        f"first step's loss: oe_ad {ours.losses[0]:.8g}, the paper's code {theirs.losses[0]:.8g} "
        f"(relative difference {c.first_rel:.1e}; tolerance {FIRST_STEP_TOLERANCE:.0e})",
        f"largest relative loss difference: {c.max_rel:.1e} at step {c.max_rel_step + 1}",
        f"last step's loss: oe_ad {ours.losses[-1]:.6g}, the paper's code {theirs.losses[-1]:.6g}",
        f"test AUC: oe_ad {c.auc_ours:.2f}, the paper's code {c.auc_theirs:.2f} "
        f"(difference {c.auc_ours - c.auc_theirs:+.2f})",
    ]
    verdict = "the same computation" if c.same_computation else "DIFFERENT computations (first step differs)"
    return lines + [f"verdict: {verdict}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eoe", type=Path, required=True, help="a checkout of liznerski/eoe")
    parser.add_argument("--python", required=True, help="the Python of the paper's code's environment")
    parser.add_argument("--data", type=Path, required=True, help="the CIFAR-10 JPEG copy (train/ and test/)")
    parser.add_argument("--oe", type=Path, required=True, help="the OE pool (.npy)")
    parser.add_argument("--method", default="hsc", choices=METHODS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2, help="epochs to train (the milestone: after the first)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the recorded batches in this file")
    parser.add_argument("overrides", nargs="*", help="extra oe_ad overrides, e.g. 'oe.indices=[5654]'")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: at least 1")
    if not (args.eoe / "src" / "eoe").is_dir():
        parser.error(f"--eoe {args.eoe}: not a checkout of liznerski/eoe (no src/eoe)")
    milestones = [max(1, math.ceil(args.epochs / 2))]
    overrides = [
        f"method={args.method}",
        f"seed={args.seed}",
        "normal_class=1",
        "data=folder",
        f"data.root={args.data}",
        "oe=npy",
        f"oe.path={args.oe}",
        f"epochs={args.epochs}",
        f"milestones=[{milestones[0]}]",
        "logger=none",
        "threads=1",
        *args.overrides,
    ]
    torch.set_num_threads(1)
    rec, ours, labels = record(overrides, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep if args.keep is not None else Path(tmp) / "record.pt"
        torch.save(rec, path)
        out = Path(tmp) / "replay.pt"
        replay = Path(__file__).resolve().parent / "replay.py"
        cmd = [args.python, str(replay), "--eoe", str(args.eoe), "--record", str(path), "--out", str(out)]
        if subprocess.run(cmd).returncode != 0:
            print(f"error: replay.py failed under --python {args.python} (its output above)", file=sys.stderr)
            return 2
        got = torch.load(out, weights_only=True)
    theirs = Run(got["losses"], got["scores"])
    comparison = compare(ours, theirs, labels)
    print("\n".join(report(comparison, ours, theirs)))
    return 0 if comparison.same_computation else 1


if __name__ == "__main__":
    sys.exit(main())

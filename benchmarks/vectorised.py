"""Does launcher=vectorised pay on this device? A sweep's wall time under ``launcher=vectorised`` against the same jobs
run one by one (Hydra's basic launcher), measured in one run; with ``--per-step``, fused-step times per stack size.

    python benchmarks/vectorised.py                        # 64 jobs: BCE, CIFAR-10 classes 0-7 x seeds 0-7, 1 epoch
    python benchmarks/vectorised.py --classes 2 --seeds 2  # a quick look
    python benchmarks/vectorised.py --per-step --models 1,4,16,64 [--device cuda]

The sweep reads a CIFAR-10 image folder (``--data``, default ``data/cifar10-jpeg``: ``make data``), cut to ``--train``
training and ``--test`` test images per class (links in the output folder; 0: all), and OE from ``--oe`` (a .npy of
32x32 images), ``oe_size=512``. The vectorised run goes first, with an empty probe cache: its time includes the probe
that chooses the stack size and convolution mode (``oe_ad.vectorised.probe``), and the run one by one gets whatever
the first left in the OS's file cache. Each run has its own fingerprint cache. Prints both wall times, their ratio,
the launcher's choice and the largest AUROC difference between the two records of a job (split convolutions and
stacks of one give the single job's numbers exactly).

``--per-step``: every model has its own data stream (its datamodule's balanced 128 + 128 batch, indexed and augmented
per model, as in training); a step is forward + backward + Adam. The single-model reference is the same step of one
ordinary CNN32, so M single runs take M times as long.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from throughput import RandomImages, RandomPool, _sync

from oe_ad.data.datamodule import FixedClock, OEDataModule
from oe_ad.job.loop import Job, JobSpec
from oe_ad.methods.bce import BCE
from oe_ad.nets.cnn32 import CNN32
from oe_ad.vectorised import CONV_MODES
from oe_ad.vectorised.memory import models_per_step, step_bytes
from oe_ad.vectorised.trainer import build_stack, fused_step

CFG = OmegaConf.create({})


def members(m: int, steps: int, device: torch.device, batch: int = 128) -> list[Job]:
    normal, pool = RandomImages(batch * steps), RandomPool(1000)
    out = []
    for seed in range(m):
        pl.seed_everything(seed, verbose=False)
        method = BCE(CNN32(), optimizer=torch.optim.Adam)
        dm = OEDataModule(
            normal, pool, normal_class=0, oe_size=None, seed=seed, batch_size=batch, clock=FixedClock(device)
        )
        dm.setup("fit")
        out.append(Job(JobSpec(CFG), method.to(device), dm))
    return out


def vectorised_step_time(m: int, steps: int, device: torch.device, conv: str, batch: int = 128) -> float:
    """Seconds per fused step of ``m`` models, ``batch`` normal + ``batch`` OE each (after one warm-up step)."""
    group = members(m, steps + 1, device, batch)
    net, obj = build_stack(group, device)
    opt, _ = group[0].method.optimizers_for(net.parameters())
    net.conv = conv
    loaders = zip(*(g.datamodule.train_dataloader() for g in group))
    fused_step(net, opt, obj, next(loaders))
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fused_step(net, opt, obj, next(loaders))
    _sync(device)
    return (time.perf_counter() - t0) / steps


def single_step_time(steps: int, device: torch.device) -> float:
    """Seconds per step of one ordinary CNN32 + BCE model on its own batches (what one job does)."""
    (member,) = members(1, steps + 1, device)
    model = member.method.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(member.datamodule.train_dataloader())
    for i in range(steps + 1):
        if i == 1:
            _sync(device)
            t0 = time.perf_counter()
        x, is_normal = next(batches)
        opt.zero_grad(set_to_none=True)
        model.loss(model(x), is_normal).backward()
        opt.step()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def per_step(args: argparse.Namespace) -> None:
    """The fused-step table: M models in one step against M single steps."""
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    fit = models_per_step(step_bytes(256), device)
    print(f"device {device} ({name}); 128 normal + 128 OE images per model and step; {fit} models fit in memory")
    single = single_step_time(args.steps, device)
    print(f"one model: {single * 1e3:.1f} ms/step, {256 / single:.0f} img/s")
    print(
        "|    M | vectorised s/step | img/s total | img/s per model | M single runs s/step | speed-up | M vec / one |"
    )
    print("|-----:|-----------------:|------------:|----------------:|---------------------:|---------:|------------:|")
    for m in (int(v) for v in args.models.split(",")):
        size = min(m, fit)  # a stack larger than memory runs in chunks, one after another
        t = vectorised_step_time(size, args.steps, device, args.conv) * -(-m // size)
        print(
            f"| {m:4d} | {t:16.3f} | {256 * m / t:11.0f} | {256 / t:15.1f} | {single * m:20.3f} | "
            f"{single * m / t:7.2f}x | {t / single:10.2f}x |",
            flush=True,
        )


# -- the sweep ----------------------------------------------------------------------------------------------------
def subset(data: Path, out: Path, train: int, test: int) -> Path:
    """``data`` with at most ``train``/``test`` images per class (the first by name), as links under ``out``."""
    if not (data / "train").is_dir():
        raise SystemExit(f"error: {data}/train not found: make data, or --data DIR (an image folder: train/, test/)")
    if not train and not test:
        return data
    for split, n in (("train", train), ("test", test)):
        for cls in sorted(p for p in (data / split).iterdir() if p.is_dir()):
            (out / split / cls.name).mkdir(parents=True, exist_ok=True)
            for f in sorted(cls.iterdir())[: n or None]:
                (out / split / cls.name / f.name).symlink_to(f.resolve())
    return out


def aurocs(experiment: Path) -> dict[str, float]:
    return {
        str(p.parent.relative_to(experiment)): json.loads(p.read_text())["test_auroc"]
        for p in experiment.rglob("result.json")
    }


def run_sweep(name: str, jobs: list[str], out: Path, extra: list[str]) -> tuple[float, str]:
    """Wall seconds of ``oe-ad-run -m`` for the jobs, and its output."""
    command = [sys.executable, "-m", "oe_ad.run", "-m", *jobs, f"name={name}", f"paths.cache_dir={out / name}-cache"]
    t0 = time.perf_counter()
    proc = subprocess.run([*command, *extra], capture_output=True, text=True, cwd=out)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"error: the {name} sweep failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def sweep(args: argparse.Namespace) -> None:
    out = Path(args.out or tempfile.mkdtemp(prefix="oe-ad-vectorised-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = subset(Path(args.data).resolve(), out / "data", args.train, args.test)
    jobs = [
        "data=folder",
        f"data.root={data}",
        "oe=npy",
        f"oe.path={Path(args.oe).resolve()}",
        "method=bce",
        "oe_size=512",
        f"epochs={args.epochs}",
        "milestones=[]",
        f"normal_class=range(0,{args.classes})",
        f"seed=range(0,{args.seeds})",
        "logger=csv",
        f"paths.output_dir={out}",
    ]
    n = args.classes * args.seeds
    print(
        f"{n} jobs (BCE, classes 0-{args.classes - 1} x seeds 0-{args.seeds - 1}, {args.epochs} epoch(s), "
        f"{args.train or 'all'} train / {args.test or 'all'} test images per class, OE 512) in {out}",
        flush=True,
    )
    vec_s, vec_output = run_sweep(
        "vectorised", jobs, out, ["launcher=vectorised", f"hydra.launcher.device={args.device}"]
    )
    print(f"launcher=vectorised: {vec_s:.1f} s", flush=True)
    seq_s, _ = run_sweep("one-by-one", jobs, out, [])
    print(f"one by one:          {seq_s:.1f} s", flush=True)
    choices = sorted(set(re.findall(r"(stacking does not pay[^\n]*|stacks of \d+ models[^\n]*)", vec_output)))
    vec, seq = aurocs(out / "vectorised"), aurocs(out / "one-by-one")
    if len(vec) != n or vec.keys() != seq.keys():
        raise SystemExit(f"error: {len(vec)} and {len(seq)} records of {n} jobs")
    diff = max(abs(vec[k] - seq[k]) for k in vec)
    print()
    print("| jobs | one by one | launcher=vectorised | vectorised / one by one | max abs AUROC difference |")
    print("|-----:|-----------:|--------------------:|------------------------:|-------------------------:|")
    print(f"| {n} | {seq_s:.1f} s | {vec_s:.1f} s | {vec_s / seq_s:.3f}x | {diff:.1e} |")
    for line in choices:
        print(f"launcher's choice: {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-step", action="store_true", help="the fused-step table instead of the sweep")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    sw = ap.add_argument_group("the sweep")
    sw.add_argument("--data", default="data/cifar10-jpeg", help="an image folder with train/<class>/ and test/<class>/")
    sw.add_argument("--oe", default=os.environ.get("OE_NPY", "../shared/data/tin32-oe-30k.npy"), help="OE images, .npy")
    sw.add_argument("--classes", type=int, default=8)
    sw.add_argument("--seeds", type=int, default=8)
    sw.add_argument("--epochs", type=int, default=1)
    sw.add_argument("--train", type=int, default=1000, help="training images per class (0: all)")
    sw.add_argument("--test", type=int, default=200, help="test images per class (0: all)")
    sw.add_argument("--out", help="output folder (default: a new temporary folder)")
    st = ap.add_argument_group("--per-step")
    st.add_argument("--models", default="1,4,16,64", help="comma-separated stack sizes")
    st.add_argument("--steps", type=int, default=1, help="timed steps per size (after one warm-up step)")
    st.add_argument("--conv", default="auto", choices=CONV_MODES)
    args = ap.parse_args()
    per_step(args) if args.per_step else sweep(args)


if __name__ == "__main__":
    main()

"""Vectorised training throughput: M CNN32 + BCE models in one fused step vs M single-model runs.

Every model has its own data stream (its datamodule's balanced 128 + 128 batch, indexed and augmented per
model, as in training); a step is forward + backward + Adam. The single-model reference is the same step of
one ordinary CNN32 (what each job of a sweep does), so M single runs take M times as long. Prints images/s
per model and in total, and the ratio wall time of M models vectorised / wall time of one model.

    python benchmarks/vectorised.py [--models 1,4,16,64] [--steps 1] [--device cpu|cuda]
"""

import argparse
import time
import warnings

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from throughput import RandomImages, RandomPool, _sync

from oe_ad.data.datamodule import FixedClock, OEDataModule
from oe_ad.job.loop import Job, JobSpec
from oe_ad.methods.bce import BCE
from oe_ad.nets.cnn32 import CNN32
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="1,4,16,64", help="comma-separated stack sizes")
    ap.add_argument("--steps", type=int, default=1, help="timed steps per size (after one warm-up step)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--conv", default="auto", choices=["auto", "grouped", "split"])
    ap.add_argument("--compare-conv", type=int, default=4, help="also time both conv modes at this M (0: skip)")
    args = ap.parse_args()
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
    if args.compare_conv:
        m = args.compare_conv
        times = {c: vectorised_step_time(m, args.steps, device, c) for c in ("grouped", "split")}
        print(f"conv modes at M={m}: " + ", ".join(f"{c} {t:.3f} s/step" for c, t in times.items()))


if __name__ == "__main__":
    main()

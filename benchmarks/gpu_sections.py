"""The measuring sections 1-5 of gpu_check.py; each fills its Section's data and table rows.

They reuse the package and the other benchmarks: the real job path (``python -m oe_ad.run``), the raw step of
throughput.py, the stacked trainer of vectorised.py, the CLIP and ResNet nets, clip_throughput's timer.
"""

import functools
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from oe_ad.data.augment import channel_stats
from oe_ad.data.sources import ImageFolder

REPO = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 40  # CIFAR-10 one vs. rest: 5,000 normal images in halves of 128


@dataclass
class Row:
    """One line of the table: what was measured, its value, the goal and the verdict."""

    section: int
    measure: str
    value: str
    goal: str = ""
    check: str = "info"  # pass | fail | n/a on CPU | info | failed: <reason> | skipped: <reason>


@dataclass
class Section:
    number: int
    title: str
    status: str = "not run"  # ok | failed | skipped
    reason: str = ""
    seconds: float = 0.0
    data: dict = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def add(self, measure: str, value: str, goal: str = "", check: str = "info") -> None:
        self.rows.append(Row(self.number, measure, value, goal, check))


@dataclass
class Context:
    """What every section may read: sizes, paths, the stored CPU reference, earlier sections' results."""

    s: "object"  # gpu_check.Settings
    out: Path
    data: Path | None
    oe: Path | None
    verdict: Callable[[bool, object], str]
    results: dict[int, Section] = field(default_factory=dict)
    cache: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gpu-check-cache-")))

    @property
    def device(self) -> torch.device:
        return torch.device(self.s.device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def gib(value: float | None) -> str:
    return "n/a (CPU)" if value is None else f"{value:.1f} GiB"


# -- section 1: the real job, the raw step, the official-style DataLoader ---------------------------------
def smoke_data(root: Path) -> tuple[Path, Path]:
    """A tiny image folder (2 colour classes) and a 64-image OE .npy: the smoke run needs no real data."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 32), ("test", 16)):
        for k, colour in enumerate(((200, 40, 40), (40, 40, 200))):
            d = root / split / f"class{k}"
            d.mkdir(parents=True, exist_ok=True)
            noise = rng.normal(0, 12, (n, 32, 32, 3))
            for i, img in enumerate(np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)):
                Image.fromarray(img).save(d / f"{i:03d}.png")
    oe = root / "oe.npy"
    np.save(oe, rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8))
    return root, oe


def reference() -> dict:
    return json.loads((Path(__file__).resolve().parent / "gpu_check_reference.json").read_text())


def job_overrides(ctx: Context) -> list[str]:
    """The stored reference job (section 2 compares its AUC); in smoke mode a tiny job on synthetic data."""
    if ctx.s.smoke:
        ctx.data, ctx.oe = smoke_data(ctx.out / "smoke-data")
        overrides = [
            "method=bce",
            "normal_class=0",
            "seed=0",
            "oe_size=32",
            "epochs=1",
            "milestones=[]",
            "batch_size=16",
        ]
        overrides += ["data=folder", "oe=npy", "logger=none"]
    else:
        overrides = list(reference()["overrides"])
    return overrides + [
        f"data.root={ctx.data}",
        f"oe.path={ctx.oe}",
        "name=gpu-check",
        f"paths.output_dir={ctx.out / 'job'}",
        f"paths.cache_dir={ctx.cache}",
        "checkpoint.every_n_epochs=0",
        "checkpoint.save_model=false",
        "force=true",
    ]


def option(overrides: list[str], key: str, default: str) -> str:
    values = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == key]
    return values[-1] if values else default


def run_job(ctx: Context, overrides: list[str]) -> tuple[dict, float]:
    """``python -m oe_ad.run`` in a child process, as a user runs it; (its record, wall seconds)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
    log = ctx.out / "job.log"
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "oe_ad.run", *overrides], cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT
        )
    wall = time.perf_counter() - t0
    if proc.returncode:
        tail = [line for line in log.read_text().splitlines() if line.strip()][-1:] or [""]
        raise RuntimeError(f"oe_ad.run exited {proc.returncode}: {tail[0][:200]} (see job.log)")
    (record,) = (ctx.out / "job" / "gpu-check").rglob("result.json")
    return json.loads(record.read_text()), wall


def normal_images(ctx: Context, normal_class: int) -> np.ndarray:
    """The normal class's training images as (N, H, W, 3) uint8, from the decode cache the job filled."""
    train, _ = ImageFolder(str(ctx.data), 32, str(ctx.cache)).load()
    images = train.images[train.labels == normal_class]
    return images.permute(0, 2, 3, 1).numpy()


class AddNoise:
    """x + 0.001 * N(0, 1), per sample (a class, not a lambda, so DataLoader workers can pickle it)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.001 * torch.randn_like(x)


def official_transform(mean: torch.Tensor, std: torch.Tensor) -> transforms.Compose:
    """The official code's per-sample CIFAR-10 training pipeline (PIL image -> normalised tensor)."""
    return transforms.Compose(
        [
            transforms.ColorJitter(0.01, 0.01, 0.01, 0.01),
            transforms.RandomHorizontalFlip(),
            transforms.RandomCrop(32, padding=4),
            transforms.ToTensor(),
            AddNoise(),
            transforms.Normalize(mean.tolist(), std.tolist()),
        ]
    )


class OfficialStyle(Dataset):
    """Sample i of a 128 + 128 batch: normal for the first half, OE for the second, each a PIL image."""

    def __init__(self, normal: np.ndarray, oe: np.ndarray, steps: int, half: int, transform) -> None:
        self.normal, self.oe, self.steps, self.half, self.transform = normal, oe, steps, half, transform

    def __len__(self) -> int:
        return self.steps * 2 * self.half

    def __getitem__(self, i: int) -> tuple[torch.Tensor, bool]:
        step, j = divmod(i, 2 * self.half)
        is_normal = j < self.half
        k = step * self.half + (j if is_normal else j - self.half)
        img = self.normal[k % len(self.normal)] if is_normal else self.oe[k % len(self.oe)]
        return self.transform(Image.fromarray(img)), is_normal


def dataloader_rate(
    normal: np.ndarray, oe: np.ndarray, steps: int, workers: int, half: int, device: torch.device
) -> float:
    """img/s of the same CNN32 + BCE step fed by the official-style DataLoader (3 warm-up steps excluded)."""
    from throughput import make_model

    mean, std = channel_stats(torch.from_numpy(normal).permute(0, 3, 1, 2))
    warm = 3
    data = OfficialStyle(normal, oe, warm + steps, half, official_transform(mean, std))
    loader = DataLoader(data, batch_size=2 * half, num_workers=workers, pin_memory=False)
    model = make_model().to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i, (x, is_normal) in enumerate(loader):
        if i == warm:
            sync(device)
            t0 = time.perf_counter()
        x, is_normal = x.to(device, non_blocking=True), is_normal.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        model.loss(model(x), is_normal).backward()
        opt.step()
    sync(device)
    return steps * 2 * half / (time.perf_counter() - t0)


def end_to_end(sec: Section, ctx: Context) -> None:
    from throughput import raw_step_time

    s, device = ctx.s, ctx.device
    overrides = job_overrides(ctx)
    record, wall = run_job(ctx, overrides)
    epochs, batch = int(option(overrides, "epochs", "3")), int(option(overrides, "batch_size", "128"))
    normal = normal_images(ctx, record["normal_class"])
    steps = math.ceil(len(normal) / batch)
    images = epochs * steps * 2 * batch
    job_rate, wall_rate = images / record["train_time_s"], images / wall
    raw_rate = 2 * s.half / raw_step_time(s.raw_steps, str(device), 2 * s.half)
    oe = np.load(ctx.oe, mmap_mode="r")[np.asarray(record["oe_indices"])]
    base_rate = dataloader_rate(normal, np.ascontiguousarray(oe), s.loader_steps, s.loader_workers, s.half, device)
    sec.data = {
        "overrides": overrides,
        "record_device": record["device"],
        "test_auroc": record["test_auroc"],
        "oe_indices_sha256": record["oe_indices_sha256"],
        "train_auroc": record["train_auroc"],
        "images_trained": images,
        "train_time_s": record["train_time_s"],
        "job_wall_s": wall,
        "fixed_s": wall - record["train_time_s"],  # start-up, data, test: per job, not per epoch
        "job_img_s": job_rate,
        "job_wall_img_s": wall_rate,
        "raw_img_s": raw_rate,
        "job_over_raw": job_rate / raw_rate,
        "dataloader_img_s": base_rate,
        "job_over_dataloader": job_rate / base_rate,
        "dataloader_workers": s.loader_workers,
    }
    sec.add("job img/s (training loop of oe_ad.run)", f"{job_rate:,.0f}", ">= 20,000", ctx.verdict(job_rate >= 2e4, s))
    sec.add("job img/s incl. start-up, decoding, test", f"{wall_rate:,.0f} ({wall:.0f} s)")
    sec.add(f"raw model step img/s (ready tensors, batch {2 * s.half})", f"{raw_rate:,.0f}")
    sec.add("job / raw", f"{job_rate / raw_rate:.2f}")
    sec.add(f"official-style DataLoader ({s.loader_workers} workers) img/s", f"{base_rate:,.0f}")
    ratio = job_rate / base_rate
    sec.add("job / DataLoader baseline", f"{ratio:.1f}x", ">= 3x", ctx.verdict(ratio >= 3, s))


# -- section 2: the GPU job's AUC vs the CPU's ------------------------------------------------------------
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(functools.partial(fh.read, 1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def agreement(sec: Section, ctx: Context) -> None:
    ref = reference()
    first = ctx.results.get(1)
    if first is None or "test_auroc" not in first.data:
        raise RuntimeError("section 1 gave no test AUC")
    auc, cpu = first.data["test_auroc"], ref["test_auroc"]
    sec.data = {"cpu_test_auroc": cpu, "test_auroc": auc, "device": first.data["record_device"]}
    if ctx.s.smoke:
        sec.add("CPU reference test AUC (stored, real data)", f"{100 * cpu:.2f}", "", "info")
        sec.add("smoke job test AUC (synthetic data)", f"{100 * auc:.2f}", "|GPU - CPU| <= 1.0", "n/a on CPU")
        return
    # Another OE pool (a user's own data, make gpu-check GPU_DATA=... GPU_OE=...) has no stored CPU value: the AUC
    # is shown, not judged. The reference pool with another OE subset is a failure (same seed, same pool).
    reference_pool = (
        list(np.load(ctx.oe, mmap_mode="r").shape) == ref["oe_shape"] and sha256(ctx.oe) == ref["oe_sha256"]
    )
    sec.data["reference_pool"] = reference_pool
    if not reference_pool:
        sec.add("CPU test AUC (stored, for the reference data only)", f"{100 * cpu:.2f}", "", "info")
        sec.add("GPU test AUC on your data (no CPU value to compare)", f"{100 * auc:.2f}", "", "info")
        return
    same_oe = first.data["oe_indices_sha256"] == ref["oe_indices_sha256"]
    diff = 100 * abs(auc - cpu)
    sec.data |= {"diff_points": diff, "same_oe_pool": same_oe}
    sec.add("CPU test AUC (stored)", f"{100 * cpu:.2f}")
    sec.add("same OE pool and OE subset as the reference (sha256)", str(same_oe), "true", ctx.verdict(same_oe, ctx.s))
    sec.add("GPU test AUC, |GPU - CPU|", f"{100 * auc:.2f}, {diff:.2f} points", "<= 1.0", ctx.verdict(diff <= 1, ctx.s))


# -- section 3: vectorised training ------------------------------------------------------------------------
class fp32_matmuls:
    """No TF32 in convolutions and matrix products (CUDA's default uses TF32 for convolutions)."""

    def __enter__(self):
        self.saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc):
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved


def conv_losses(
    models: int, steps: int, device: torch.device, conv: str, half: int, dtype: torch.dtype
) -> torch.Tensor:
    """(steps, models) training losses of a stack on seeded synthetic data, with the given convolution mode, in
    ``dtype`` (the members are built in float32 as every job is, then the stack and its batches are cast)."""
    from vectorised import members

    from oe_ad.vectorised.trainer import build_stack, fused_step

    torch.manual_seed(0)  # vectorised.members draws its OE pool from the global generator
    group = members(models, steps, device, half)
    net, obj = build_stack(group, device)
    net = net.to(dtype)
    opt, _ = group[0].method.optimizers_for(net.parameters())
    net.conv = conv
    loaders = zip(*(g.datamodule.train_dataloader() for g in group))
    return torch.stack(
        [fused_step(net, opt, obj, [(x.to(dtype), n) for x, n in batches])[1] for batches in loaders]
    ).cpu()


# Grouped and split convolutions compute the same function; in float64 their losses agree to far below 1e-7 over
# the steps (on the CPU: exactly). In float32 they need not stay close: the first losses agree to rounding (1.7e-7
# relative here), but Adam's first updates move each weight by about lr * sign(gradient), so a gradient element
# within rounding of zero moves its weight by +-lr depending on the order of summation (2e-4 relative after one
# step, 3e-2 after 20, 4 models of 32 + 32 on this CPU); a pre-activation within rounding of the leaky ReLU kink
# does the same (tests/test_vectorised.py). So float64 is the check; float32 and TF32 are reported for information.
FLOAT64_RTOL = 1e-7


def compare_convs(models: int, steps: int, device: torch.device, half: int, dtype: torch.dtype) -> dict:
    """Grouped vs split losses in ``dtype``: largest absolute and relative difference, first step beyond
    ``FLOAT64_RTOL`` (relative)."""
    a, b = (conv_losses(models, steps, device, conv, half, dtype) for conv in ("grouped", "split"))
    diff = (a - b).abs()
    rel = diff / b.abs().clamp_min(1e-12)
    bad = (rel > FLOAT64_RTOL).any(1).nonzero()
    return {
        "max_abs_diff": diff.max().item(),
        "max_rel_diff": rel.max().item(),
        "first_step_beyond_rtol": int(bad[0]) if len(bad) else None,
        "within_tolerance": not len(bad),
    }


def vectorised(sec: Section, ctx: Context) -> None:
    from vectorised import vectorised_step_time

    from oe_ad.vectorised.memory import models_per_step, step_bytes
    from oe_ad.vectorised.probe import choose

    s, device = ctx.s, ctx.device
    fit = models_per_step(step_bytes(256), device)
    epochs: dict[int, float] = {}
    for m in s.vec_models:
        size = min(m, fit)  # a stack larger than memory runs in chunks, one after the other
        reset_peak(device)  # the peak is set beside the planner's estimate (step_bytes per model, docs/gpu.md)
        step = vectorised_step_time(size, s.vec_steps, device, "auto", s.half) * math.ceil(m / size)
        epochs[m] = step * STEPS_PER_EPOCH
        images = m * STEPS_PER_EPOCH * 2 * s.half
        value = f"{epochs[m]:.2f} s, {images / epochs[m]:,.0f} img/s, {epochs[m] / epochs[1]:.2f}x M=1"
        sec.add(
            f"M={m}: one epoch (40 steps of {s.half} + {s.half} per model)", f"{value}, peak {gib(peak_gib(device))}"
        )
    big = max(s.vec_models)
    ratio = epochs[big] / epochs[1]
    goal_check = ctx.verdict(ratio <= 3, s) if big == 64 else "n/a on CPU"
    sec.add(f"epoch M={big} / epoch M=1", f"{ratio:.2f}x", "<= 3x (M=64)", goal_check)
    sec.add(
        "planner's estimate per model (step_bytes), models that fit", f"{step_bytes(2 * s.half) / 2**30:.2f} GiB, {fit}"
    )
    sec.data = {"epoch_s": epochs, "models_fit": fit, "steps_timed": s.vec_steps}
    # what launcher=vectorised chooses here for a 64-job group (oe_ad.vectorised.probe, as its trainer calls it)
    choice = choose(lambda m, conv: vectorised_step_time(m, 2, device, conv, s.half), "gpu-check", min(64, fit))
    sec.add(
        "launcher=vectorised's measured choice for 64 jobs: models per stack, convolutions",
        f"{choice.models}, {choice.conv}: {1e3 * choice.seconds:.1f} ms per model step ({1e3 * choice.alone:.1f} alone)"
        if choice.seconds is not None
        else choice.describe(device.type, 1),  # one model fits: the probe measured nothing
        "faster than alone",
        "pass" if choice.models == 1 or choice.seconds < choice.alone else "fail",
    )
    sec.data["probe"] = {"models": choice.models, "conv": choice.conv, "s": choice.seconds, "alone_s": choice.alone}
    with fp32_matmuls():
        exact = compare_convs(s.conv_models, s.conv_steps, device, s.half, torch.float64)
        fp32 = compare_convs(s.conv_models, s.conv_steps, device, s.half, torch.float32)
    sec.data["grouped_vs_split"] = exact
    sec.data["grouped_vs_split_fp32"] = fp32
    sec.add(
        f"grouped vs split losses, {s.conv_models} models x {s.conv_steps} steps, float64",
        f"max rel diff {exact['max_rel_diff']:.1e}",
        f"rtol {FLOAT64_RTOL:.0e}",
        "pass" if exact["within_tolerance"] else "fail",
    )
    sec.add("the same in float32 (information: kinks make float32 trajectories part)", _diffs(fp32))
    if device.type == "cuda":  # informative: the same with CUDA's default TF32 convolutions
        tf32 = compare_convs(s.conv_models, s.conv_steps, device, s.half, torch.float32)
        sec.data["grouped_vs_split_tf32"] = tf32
        sec.add("the same with TF32 convolutions (CUDA default)", _diffs(tf32))


def _diffs(c: dict) -> str:
    return f"max |diff| {c['max_abs_diff']:.1e} (rel {c['max_rel_diff']:.1e})"


# -- sections 4 and 5: CLIP and ResNet-18-CBAM -----------------------------------------------------------
def rate(fn: Callable[[], None], batch: int, steps: int, device: torch.device) -> tuple[float, float | None]:
    """(images/s, peak GiB) of ``fn`` on a batch of ``batch``, timed over ``steps`` calls after one warm-up."""
    from clip_throughput import timed

    reset_peak(device)
    wall, _ = timed(fn, steps, device.type)
    return batch / wall, peak_gib(device)


def clip(sec: Section, ctx: Context) -> None:
    from clip_throughput import clip_steps

    from oe_ad.methods.clip_bce import CLIPBCE
    from oe_ad.nets.clip import CLIPNet

    s, device = ctx.s, ctx.device
    torch.manual_seed(0)
    net = CLIPNet(model=s.clip_model, pretrained=None, autocast="bfloat16")
    sgd = functools.partial(torch.optim.SGD, momentum=0.9, nesterov=True, weight_decay=1e-3)
    method = CLIPBCE(net, optimizer=sgd, lr=2e-5)
    method.set_normal_classes(["automobile"])
    method.to(device)
    x = torch.rand(s.batch, 3, 32, 32, device=device)  # CLIP's resize to 224 px runs inside the net
    is_normal = torch.arange(s.batch, device=device) < s.batch // 2
    opt = method.configure_optimizers()["optimizer"]
    dtypes, losses = set(), []
    hook = net.clip.visual.register_forward_hook(lambda mod, inp, out: dtypes.add(str(out.dtype)))

    zero_shot, train_step = clip_steps(method, opt, x, is_normal, losses)

    zs, zs_mem = rate(zero_shot, s.batch, s.big_steps, device)
    tr, tr_mem = rate(train_step, s.batch, s.big_steps, device)
    hook.remove()
    finite = bool(torch.stack(losses).isfinite().all())
    sec.data = {"zero_shot_img_s": zs, "zero_shot_peak_gib": zs_mem, "bce_cl_img_s": tr, "bce_cl_peak_gib": tr_mem}
    sec.data |= {"encoder_dtypes": sorted(dtypes), "finite_losses": finite, "batch": s.batch}
    half = f"{s.batch // 2} + {s.batch // 2}"
    sec.add(f"zero-shot img/s, batch {s.batch}", f"{zs:,.0f}, peak {gib(zs_mem)}")
    sec.add(f"BCE-CL training img/s, {half}", f"{tr:,.0f}, peak {gib(tr_mem)}")
    ok = finite and dtypes == {"torch.bfloat16"}
    value = f"{'/'.join(sorted(dtypes))}, {finite}"
    sec.add("image encoder runs in bf16, finite losses", value, "bf16, true", ctx.verdict(ok, s))


def resnet_rate(bf16: bool, x: torch.Tensor, is_normal: torch.Tensor, steps: int) -> tuple[float, float | None, bool]:
    """(images/s, peak GiB, finite losses) of ResNet-18-CBAM + BCE training steps with Adam on ``x``."""
    from oe_ad.methods.bce import BCE
    from oe_ad.methods.losses import bce_loss
    from oe_ad.nets.resnet_cbam import ResNet18CBAM

    torch.manual_seed(0)
    model = BCE(ResNet18CBAM(), optimizer=torch.optim.Adam).to(x.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16 and x.is_cuda):
            loss = bce_loss(model(x), is_normal)
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    r, mem = rate(step, len(x), steps, x.device)
    return r, mem, bool(torch.stack(losses).isfinite().all())


def resnet(sec: Section, ctx: Context) -> None:
    s, device = ctx.s, ctx.device
    size, half = s.resnet_size, f"{s.batch // 2} + {s.batch // 2}"
    x = torch.randn(s.batch, 3, size, size, device=device)
    is_normal = torch.arange(s.batch, device=device) < s.batch // 2
    sec.data = {"size": size, "batch": s.batch}
    for precision in ("fp32", "bf16"):
        r, mem, finite = resnet_rate(precision == "bf16", x, is_normal, s.big_steps)
        sec.data[precision] = {"img_s": r, "peak_gib": mem, "finite_losses": finite}
        check = ctx.verdict(finite, s) if precision == "bf16" else ("pass" if finite else "fail")
        sec.add(f"training img/s {size} px, {half}, {precision}", f"{r:,.1f}, peak {gib(mem)}", "finite loss", check)

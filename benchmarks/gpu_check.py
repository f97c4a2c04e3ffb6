"""GPU evidence in one run: throughput, CPU agreement, vectorised training, CLIP, ResNet, cost projections.

Sections (docs/gpu.md): 1 CNN32 end to end through ``oe_ad.run`` vs the raw step and an official-style
DataLoader pipeline; 2 the job's test AUC vs the stored CPU value; 3 M stacked models for one epoch, grouped vs
split convolutions; 4 CLIP ViT-B/32; 5 ResNet-18-CBAM at 224 px; 6 projections of the paper's sweeps. Every
section runs under its own time cap; one that fails is marked failed with its reason and the rest still run.
Prints a markdown table and writes OUTDIR/gpu_check.json (+ gpu_check.md).

    python benchmarks/gpu_check.py OUTDIR --data DIR/cifar10-jpeg --oe tin32-oe-10k.npy   # on a GPU (make gpu-check)
    python benchmarks/gpu_check.py OUTDIR --smoke                                         # tiny, CPU, synthetic data
"""

import argparse
import json
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import gpu_sections  # noqa: E402
from gpu_projections import projections  # noqa: E402
from gpu_sections import Row, Section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Settings:
    """Sizes of every measurement: the real ones on a GPU, tiny ones for ``--smoke`` on a CPU."""

    smoke: bool
    device: str
    budget_s: float  # the whole script
    caps_s: dict[int, float]  # per section
    raw_steps: int = 30
    loader_steps: int = 40  # one CIFAR-10 epoch of 128 + 128 (5,000 normal images)
    loader_workers: int = 8
    vec_models: tuple[int, ...] = (1, 8, 32, 64)
    vec_steps: int = 40  # steps of one epoch
    conv_models: int = 4
    conv_steps: int = 50
    batch: int = 256  # 128 normal + 128 OE (CLIP, ResNet)
    half: int = 128  # CNN32 batches: half normal + half OE
    big_steps: int = 10
    resnet_size: int = 224
    clip_model: str = "ViT-B-32"


def settings(smoke: bool, budget: float | None) -> Settings:
    if smoke:
        return Settings(
            smoke=True,
            device="cpu",
            budget_s=budget or 110,
            caps_s={1: 50, 2: 5, 3: 20, 4: 30, 5: 15, 6: 5},
            raw_steps=2,
            loader_steps=2,
            loader_workers=2,
            vec_models=(1, 2),
            vec_steps=1,
            conv_models=2,
            conv_steps=3,
            batch=4,
            half=8,
            big_steps=1,
            resnet_size=64,
        )
    caps = {1: 120, 2: 5, 3: 70, 4: 45, 5: 45, 6: 5}
    return Settings(smoke=False, device="cuda", budget_s=budget or 300, caps_s=caps)


class SectionTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise SectionTimeout("time cap reached")


def verdict(ok: bool, s: Settings) -> str:
    """pass/fail on a GPU; on the CPU the GPU goals do not apply."""
    if s.smoke:
        return "n/a on CPU"
    return "pass" if ok else "fail"


def run_section(sec: Section, fn: Callable[..., None], budget_left: float, cap: float, *args) -> None:
    """Run one section under ``min(cap, budget_left)`` seconds; an error or timeout marks it failed."""
    limit = min(cap, budget_left)
    if limit < 3:
        sec.status, sec.reason = "skipped", f"out of time budget ({budget_left:.0f} s left)"
        return
    t0 = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        fn(sec, *args)
        sec.status = "ok"
    except SectionTimeout:
        sec.status, sec.reason = "failed", f"time cap of {limit:.0f} s reached"
    except Exception as e:  # one broken section must not stop the others
        sec.status, sec.reason = "failed", f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
        traceback.print_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        sec.seconds = time.perf_counter() - t0
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if sec.status == "failed":
        sec.rows.append(Row(sec.number, sec.title, "", check=f"failed: {sec.reason}"))
    print(f"[gpu_check] section {sec.number} {sec.status} in {sec.seconds:.0f} s {sec.reason}", file=sys.stderr)


def environment(s: Settings) -> dict:
    env = {
        "device": s.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "smoke": s.smoke,
        "threads": torch.get_num_threads(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if s.device == "cuda":
        env |= {
            "gpu": torch.cuda.get_device_name(0),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
        }
    return env


def table(sections: list[Section]) -> str:
    lines = ["| § | measure | value | goal | check |", "|---|---|---|---|---|"]
    for sec in sections:
        status = sec.status + (f": {sec.reason}" if sec.reason else "")
        rows = sec.rows or [Row(sec.number, sec.title, "", check=status)]
        for r in rows:
            lines.append(f"| {r.section} | {r.measure} | {r.value} | {r.goal} | {r.check} |")
    return "\n".join(lines)


def write(out: Path, env: dict, sections: list[Section], wall: float) -> None:
    checks = [r.check for sec in sections for r in sec.rows]
    result = {
        "environment": env,
        "wall_s": round(wall, 1),
        "all_passed": bool(checks) and all(c in ("pass", "info") for c in checks) and not env["smoke"],
        "sections": {str(sec.number): asdict(sec) for sec in sections},
        "table": table(sections),
    }
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (out / "gpu_check.md").write_text(result["table"] + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path, help="where gpu_check.json, gpu_check.md and the job's folder go")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, synthetic data (< 2 min)")
    ap.add_argument("--data", type=Path, help="the CIFAR-10 copy: DIR with train/<class>/ and test/<class>/")
    ap.add_argument("--oe", type=Path, help="the OE pool .npy (make gpu-bundle: the first 10,000 of tin32-oe-30k)")
    ap.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated sections to run (e.g. a rerun of 3)")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole script (300; smoke 110)")
    ap.add_argument("--cap-scale", type=float, default=1.0, help="multiply every time cap and the budget (a busy CPU)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.smoke:
        if not torch.cuda.is_available():
            print("error: no CUDA device: run with --smoke on a CPU", file=sys.stderr)
            return 2
        for key in ("data", "oe"):
            path = getattr(args, key)
            if path is None or not path.exists():
                print(
                    f"error: --{key} {path}: not found (make gpu-check GPU_DATA=DIR GPU_OE=FILE.npy, docs/gpu.md)",
                    file=sys.stderr,
                )
                return 2
    only = {int(v) for v in args.only.split(",")}
    s = settings(args.smoke, args.budget)
    s.budget_s *= args.cap_scale
    s.caps_s = {k: v * args.cap_scale for k, v in s.caps_s.items()}
    args.outdir.mkdir(parents=True, exist_ok=True)
    env = environment(s)
    ctx = gpu_sections.Context(s, args.outdir, args.data, args.oe, verdict)
    steps = [
        (1, "CNN32 end to end (oe_ad.run) vs raw step vs DataLoader baseline", gpu_sections.end_to_end),
        (2, "GPU vs CPU test AUC", gpu_sections.agreement),
        (3, "vectorised training", gpu_sections.vectorised),
        (4, "CLIP ViT-B/32, random weights", gpu_sections.clip),
        (5, "ResNet-18-CBAM 224 px", gpu_sections.resnet),
        (6, "projections", projections),
    ]
    t0 = time.perf_counter()
    sections = []
    for number, title, fn in steps:
        sec = Section(number, title)
        sections.append(sec)
        if number not in only:
            sec.status = "skipped"
            sec.reason = "not in --only"
            continue
        print(f"[gpu_check] section {number}: {title}", file=sys.stderr, flush=True)
        run_section(sec, fn, s.budget_s - (time.perf_counter() - t0), s.caps_s[number], ctx)
        ctx.results[number] = sec
        write(args.outdir, env, sections, time.perf_counter() - t0)  # whatever happens next, this much is kept
    wall = time.perf_counter() - t0
    write(args.outdir, env, sections, wall)
    print(table(sections))
    where = env.get("gpu", "CPU")
    print(f"\n{where}, torch {env['torch']}, wall {wall:.0f} s -> {args.outdir / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

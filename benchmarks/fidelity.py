"""Fidelity check: BCE and HSC on CIFAR-10 class 1 (automobile) next to the paper's own code on the same data.

Trains each method with seeds 0, 1, 2 through the ordinary job path (``python -m oe_ad.run``, one process per
job; a job whose record is already in the experiment folder is skipped), 12 epochs with milestones [6, 9] and
the full OE pool, then prints per method the mean +- sample std of the test AUC over the seeds, the value the
paper's code (liznerski/eoe) reached on this data with this schedule, and the difference. Exits 1 when a mean
is more than ``--tolerance`` points away, 2 when a job failed. See docs/fidelity.md.

    python benchmarks/fidelity.py --data data/cifar10-jpeg --oe ../shared/data/tin32-oe-30k.npy [--jobs 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Test AUC (%) of the paper's code (liznerski/eoe, train_cifar.py) on the CIFAR-10 JPEG copy and the 30k OE
# pool, normal class 1, 12 epochs, milestones [6, 9]: HSC mean of 3 runs (89.56, 87.90, 87.24), BCE 1 run.
OFFICIAL = {"hsc": 88.23, "bce": 91.12}
SEEDS = (0, 1, 2)
NORMAL_CLASS = 1
REPO = Path(__file__).resolve().parents[1]


def job_args(method: str, seed: int, args: argparse.Namespace) -> list[str]:
    return [
        f"name={args.name}",
        f"method={method}",
        f"seed={seed}",
        f"normal_class={NORMAL_CLASS}",
        "data=folder",
        f"data.root={Path(args.data).resolve()}",
        "oe=npy",
        f"oe.path={Path(args.oe).resolve()}",
        "epochs=12",
        "milestones=[6,9]",
        "logger=csv",
        "checkpoint.save_model=false",
        f"threads={args.threads}",
        f"paths.output_dir={Path(args.runs).resolve()}",
        *args.overrides,
    ]


def run(method: str, seed: int, args: argparse.Namespace) -> int:
    """One job in its own process (this checkout's code first on the path); its log goes to the job's stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "oe_ad.run", *job_args(method, seed, args)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{method} seed {seed} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    return proc.returncode


def aurocs(runs: Path, name: str, method: str) -> dict[int, float]:
    """Test AUC (%) per seed from this experiment's records of the fidelity jobs."""
    out = {}
    for path in sorted((runs / name / method).rglob("result.json")):
        r = json.loads(path.read_text())
        if r["normal_class"] == NORMAL_CLASS and r["seed"] in SEEDS and r["epochs"] == 12 and r["oe_size"] is None:
            out[r["seed"]] = 100 * r["test_auroc"]
    return out


def table(results: dict[str, dict[int, float]], tolerance: float) -> tuple[str, bool]:
    lines = [
        "| method | AUC per seed (0, 1, 2) | mean ± std | paper's code | difference |",
        "|---|---|---|---|---|",
    ]
    ok = True
    for method, per_seed in results.items():
        values = [per_seed[s] for s in SEEDS]
        mean, std = statistics.mean(values), statistics.stdev(values)
        diff = mean - OFFICIAL[method]
        ok &= abs(diff) <= tolerance
        seeds = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {method} | {seeds} | {mean:.2f} ± {std:.2f} | {OFFICIAL[method]:.2f} | {diff:+.2f} |")
    return "\n".join(lines), ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/cifar10-jpeg", help="the CIFAR-10 JPEG copy (train/ and test/ folders)")
    p.add_argument("--oe", default="../shared/data/tin32-oe-30k.npy", help="the 30k OE pool (.npy)")
    p.add_argument("--runs", default=os.environ.get("OE_AD_RUNS", "runs"), help="output folder (paths.output_dir)")
    p.add_argument("--name", default="fidelity", help="experiment name: the records go to RUNS/NAME")
    p.add_argument("--jobs", type=int, default=1, help="jobs in parallel (each its own process)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job")
    p.add_argument("--tolerance", type=float, default=1.0, help="largest allowed |mean - paper's code| in points")
    p.add_argument("overrides", nargs="*", help="extra job overrides, e.g. trainer.accelerator=cpu")
    args = p.parse_args()
    for path, what in ((args.data, "--data"), (args.oe, "--oe")):
        if not Path(path).exists():
            sys.exit(f"error: {what} {path} not found")
    jobs = [(m, s) for m in OFFICIAL for s in SEEDS]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        codes = list(pool.map(lambda job: run(*job, args), jobs))
    if any(codes):
        sys.exit(2)
    results = {m: aurocs(Path(args.runs), args.name, m) for m in OFFICIAL}
    missing = [f"{m} seed {s}" for m in OFFICIAL for s in SEEDS if s not in results[m]]
    if missing:
        print(f"error: no record for {', '.join(missing)} in {Path(args.runs) / args.name}", file=sys.stderr)
        sys.exit(2)
    text, ok = table(results, args.tolerance)
    print(text)
    if ok:
        print(f"\nPASS: every mean within {args.tolerance} points of the paper's code")
    else:
        print(f"\nFAIL: a mean is more than {args.tolerance} points from the paper's code")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

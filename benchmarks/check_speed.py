"""How long `oe-ad-sweep --check` takes on a large sweep: every job composed and passed through the one validation a
job runs before reading data (no image is read), timed as a user runs it, each run a fresh process.

Prints the jobs, how many pass, the wall time of each run and the milliseconds per job of the fastest.

    python benchmarks/check_speed.py [--runs 3] [OVERRIDES ...]    (default: experiment=fig2-cifar10, 3,800 jobs)

To compare two checkouts on one machine, run it twice, with each checkout's `src` first on PYTHONPATH.
"""

import argparse
import re
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", default=["experiment=fig2-cifar10"], help="Hydra overrides of the sweep")
    ap.add_argument("--runs", type=int, default=3, help="fresh processes timed (default 3)")
    args = ap.parse_args()
    command = [sys.executable, "-m", "oe_ad.sweep", "--check", *args.overrides]
    times, summary = [], ""
    for _ in range(args.runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        summary = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        if done.returncode not in (0, 2) or not re.match(r"\d+ jobs, ", summary):
            sys.exit(f"error: {' '.join(command[1:])} failed (exit {done.returncode}): {summary}")
    jobs = int(summary.split()[0])
    runs = ", ".join(f"{t:.1f}" for t in times)
    print(f"oe-ad-sweep --check {' '.join(args.overrides)}: {summary}")
    print(f"{min(times):.1f} s, {1e3 * min(times) / jobs:.2f} ms per job (fastest of {args.runs} runs: {runs} s)")


if __name__ == "__main__":
    main()

"""benchmarks/check_speed.py times `oe-ad-sweep --check` as a user runs it."""

import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "check_speed.py"


def test_the_check_benchmark_prints_the_sweeps_summary_and_its_time_per_job(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--runs", "2", "method=bce", "normal_class=0,10", "seed=0,1"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary, timing = done.stdout.strip().splitlines()
    # CIFAR-10 has no class 10
    assert summary.endswith(": 4 jobs, 2 pass the check, 2 fail"), summary
    assert " ms per job (fastest of 2 runs: " in timing, timing


def test_the_check_benchmark_stops_in_one_line_when_the_sweep_cannot_be_composed(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--runs", "1", "method=nope"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: ") and "unknown method 'nope'" in done.stderr, done.stderr

"""The command line as a user runs it: multirun, report, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import merged, tiny_overrides


def run_cli(*args: str, cwd: Path, module: str = "oe_ad.run", env: dict | None = None):
    full_env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}  # None: unset the variable
    return subprocess.run(
        [sys.executable, "-m", module, *merged(args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in root.rglob("result.json")]


def test_multirun_of_two_jobs_writes_two_records_and_report_tabulates_them(folder_root, oe_npy, tmp_path):
    out = tmp_path / "runs"
    proc = run_cli(
        "-m",
        *tiny_overrides(folder_root, oe_npy, out),
        "method=hsc",
        "normal_class=1",
        "seed=0,1",
        "name=cli",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    recs = records(out / "cli")
    assert sorted(r["seed"] for r in recs) == [0, 1] and {r["normal_class"] for r in recs} == {1}
    assert all(0 <= r["test_auroc"] <= 1 and r["config"]["method"]["name"] == "hsc" for r in recs)
    rep = run_cli(str(out / "cli"), module="oe_ad.report", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    md = (out / "cli" / "report.md").read_text()
    assert "hsc (OE full)" in md and "1: class1" in md and "(n=2)" in md
    csv = (out / "cli" / "report.csv").read_text().splitlines()
    assert csv[0].startswith("data,benchmark,method,oe_size,normal_class") and len(csv) == 2


def _bad_npy(tmp_path: Path) -> Path:
    path = tmp_path / "wrong.npy"
    np.save(path, np.zeros((3, 32, 32), dtype=np.float32))
    return path


@pytest.mark.parametrize(
    "override, message",
    [
        ("method=nope", "unknown method 'nope'"),
        ("normal_class=7", "normal_class=7"),
        ("oe_size=0", "oe_size=0"),
        ("oe_size=100000", "oe_size=100000"),
        ("data.root=/no/such/dir", "data.root=/no/such/dir"),
        ("oe.path=BAD_NPY", "wrong.npy"),
    ],
)
def test_errors_are_one_line_with_exit_code_and_no_record(override, message, folder_root, oe_npy, tmp_path):
    out = tmp_path / "runs"
    override = override.replace("BAD_NPY", str(_bad_npy(tmp_path)))
    proc = run_cli(*tiny_overrides(folder_root, oe_npy, out), override, cwd=tmp_path)
    assert proc.returncode != 0
    err_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1 and message in err_lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert records(tmp_path) == []


def test_wandb_without_account_runs_offline_and_says_so(folder_root, oe_npy, tmp_path):
    out = tmp_path / "runs"
    args = [a for a in tiny_overrides(folder_root, oe_npy, out) if not a.startswith("logger=")]
    env = {"HOME": str(tmp_path), "WANDB_API_KEY": None, "WANDB_MODE": None, "WANDB_DIR": str(tmp_path)}
    proc = run_cli(*args, "logger=wandb", "epochs=1", "milestones=[]", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sum("logging offline" in line for line in (proc.stdout + proc.stderr).splitlines()) == 1
    assert len(records(out)) == 1
    assert list(out.rglob("offline-run-*")), "no offline W&B run directory was written"


@pytest.mark.slow
def test_every_method_end_to_end_on_the_cifar10_format(cifar_root, oe_npy, tmp_path):
    """A multirun over all end-to-end methods on a fake cifar-10-batches-py, W&B offline, then the report."""
    out = tmp_path / "runs"
    methods = "bce,focal,hsc,deep_sad,deep_svdd"
    env = {"HOME": str(tmp_path), "WANDB_API_KEY": None, "WANDB_MODE": None, "WANDB_DIR": str(tmp_path)}
    proc = run_cli(
        "-m",
        f"method={methods}",
        "data=cifar10",
        f"data.root={cifar_root}",
        "data.download=false",
        "oe=npy",
        f"oe.path={oe_npy}",
        "normal_class=2",
        "seed=0",
        "epochs=2",
        "milestones=[1]",
        "batch_size=8",
        "logger=wandb",
        f"paths.output_dir={out}",
        "name=e2e",
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(r["method"] for r in records(out)) == sorted(methods.split(","))
    rep = run_cli(str(out / "e2e"), module="oe_ad.report", cwd=tmp_path)
    assert rep.returncode == 0 and "deep_svdd (OE none)" in rep.stdout and "2: bird" in rep.stdout


def test_sweep_check_lists_each_job_that_would_fail_and_exits_2(folder_root, oe_npy, tmp_path):
    """``oe-ad-sweep --check``: 4 classes x 3 OE sizes on a 3-class folder and a 64-image pool. Class 3 does not
    exist (3 jobs) and 128 > 64 OE images (3 more jobs among classes 0-2): 6 of 12 jobs fail, each on one line."""
    data = ["data=folder", f"data.root={folder_root}", "oe=npy", f"oe.path={oe_npy}", "seed=0"]
    proc = run_cli(
        "method=hsc", *data, "normal_class=0,1,2,3", "oe_size=32,64,128", "--check", cwd=tmp_path, module="oe_ad.sweep"
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 6 and len(proc.stdout.splitlines()) == 12
    assert sum("normal_class=3: must be <= 2" in e for e in errors) == 3
    assert sum("oe_size=128: larger than the OE pool" in e and "(64 images)" in e for e in errors) == 3
    assert proc.stderr.splitlines()[-1] == "12 jobs, 6 pass the check, 6 fail"
    ok = run_cli("method=hsc", *data, "normal_class=0,2", "oe_size=1,64", "--check", cwd=tmp_path, module="oe_ad.sweep")
    assert ok.returncode == 0 and ok.stderr.splitlines()[-1] == "4 jobs, 4 pass the check, 0 fail", ok.stderr
    assert list(tmp_path.rglob("result.json")) == [] and not (tmp_path / "runs").exists()

"""One job loop, two fitters: every job ends the same way through Hydra's basic launcher (Lightning, one job at a
time) and ``launcher=vectorised`` (stacks): the same record, files and predictions, or the same one error line,
exit code and no files; a diverging member of a stack fails alone; a killed stack resumes."""

import json
import os
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import interrupt_single_job_at, interrupt_stack_at, merged, tiny_overrides
from oe_ad.config import CONF_DIR, job_dirname
from oe_ad.job.checkpoint import LAST_CKPT, MODEL_FILE
from oe_ad.job.locks import LOCK_NAME
from oe_ad.job.records import ERROR_FILE, RECORD_NAME
from oe_ad.job.scores import SCORES_NAME, read_scores
from oe_ad.predict import predict
from oe_ad.vectorised.launcher import train_jobs
from oe_ad.vectorised.objectives import Objective
from test_cli import run_cli
from test_robust import _popen, _wait_for
from test_vectorised import stackable_methods

METHODS = stackable_methods()  # every CNN32 method of the package: bce, deep_sad, deep_svdd, focal, hsc
OUTPUTS = (RECORD_NAME, SCORES_NAME, MODEL_FILE, ERROR_FILE, LAST_CKPT)
DIVERGING = "1000000000000.0"  # lr=1e12 (written as Hydra writes a swept float into the job's overrides)
EXCLUDE = ["method", "logger", "name", "force", "launcher", "experiment", "paths.output_dir", "report"]


def job_folder(exp: Path, method: str, overrides: list[str]) -> Path:
    """The folder Hydra gives the job with these task overrides (the config's hydra.sweep.subdir)."""
    return exp / method / job_dirname(overrides, EXCLUDE)


def outputs(job_dir: Path) -> set[str]:
    return {name for name in OUTPUTS if (job_dir / name).exists()}


def sweep(launcher: str, folder_root: Path, oe_npy: Path, tmp_path: Path):
    """Five CNN methods x (a good lr, a diverging lr), one of them already finished, one locked by another
    process; returns the process, the experiment folder and each job's task overrides."""
    out = tmp_path / launcher
    base = [
        *tiny_overrides(folder_root, oe_npy, out),
        "epochs=2",
        "milestones=[]",
        "normal_class=1",
        "seed=0",
        "name=loop",
    ]
    base.append("checkpoint.every_n_epochs=0")
    jobs = {(m, lr): merged([*base, f"method={m}", f"lr={lr}"]) for m in METHODS for lr in ("0.001", DIVERGING)}
    exp = out / "loop"
    finished = run_cli(*jobs[("hsc", "0.001")], cwd=tmp_path)  # a record that exists before the sweep
    assert finished.returncode == 0, finished.stderr[-2000:]
    locked = job_folder(exp, "bce", jobs[("bce", "0.001")])
    locked.mkdir(parents=True)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}  # a live holder
    (locked / LOCK_NAME).write_text(json.dumps(info))
    extra = ["launcher=vectorised"] if launcher == "vectorised" else []
    proc = run_cli("-m", *base, f"method={','.join(METHODS)}", f"lr=0.001,{DIVERGING}", *extra, cwd=tmp_path)
    return proc, exp, jobs


def error_lines(stderr: str) -> list[str]:
    return sorted(line for line in stderr.splitlines() if line.startswith("error:"))


def test_both_launchers_end_every_job_the_same_way(folder_root, oe_npy, tmp_path):
    runs = {launcher: sweep(launcher, folder_root, oe_npy, tmp_path) for launcher in ("basic", "vectorised")}
    (basic, exp_b, jobs), (vec, exp_v, _) = runs["basic"], runs["vectorised"]
    assert basic.returncode == vec.returncode != 0  # some jobs failed: the sweep says so, the same way
    assert error_lines(basic.stderr) == error_lines(vec.stderr)
    assert len(error_lines(basic.stderr)) == len(METHODS)  # one line per diverging job, nothing else
    for (method, lr), overrides in jobs.items():
        a, b = job_folder(exp_b, method, overrides), job_folder(exp_v, method, overrides)
        assert outputs(a) == outputs(b), (method, lr)
        if lr == DIVERGING:  # diverged: one error line, and no record, scores or model
            assert outputs(a) == {ERROR_FILE}
            assert json.loads((a / ERROR_FILE).read_text()) == json.loads((b / ERROR_FILE).read_text())
            assert "became NaN or infinite" in json.loads((a / ERROR_FILE).read_text())["error"]
        elif method == "bce":  # locked by another process: it writes the record; nothing here
            assert outputs(a) == set()
        else:  # trained (or, hsc, finished before the sweep and reused): the same record
            assert outputs(a) == {RECORD_NAME, SCORES_NAME, MODEL_FILE}
            ra, rb = (json.loads((d / RECORD_NAME).read_text()) for d in (a, b))
            assert ra["config_hash"] == rb["config_hash"] and ra["oe_indices"] == rb["oe_indices"]
            assert abs(ra["test_auroc"] - rb["test_auroc"]) <= 1e-3, (method, ra["test_auroc"], rb["test_auroc"])
            for d in (a, b):  # model.pt scores the test set as the job did
                rows = predict(d / MODEL_FILE, folder_root / "test")
                expected, _ = read_scores(d / SCORES_NAME)
                np.testing.assert_allclose([s for _, s in rows], expected.numpy(), rtol=1e-4, atol=1e-4)


# -- in a stack -------------------------------------------------------------------------------------------------
STACK = dict(max_models=3, conv="split")  # the three jobs as one stack (no probe: it might choose stacks of 1)


def make_cfgs(folder_root, oe_npy, out, *overrides):
    base = [*tiny_overrides(folder_root, oe_npy, out), "method=hsc", "epochs=4", "milestones=[3]", *overrides]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return [compose("config", overrides=[*base, f"seed={s}", f"normal_class={s}"]) for s in range(3)]


def test_a_diverging_member_fails_alone_and_the_others_end_as_in_a_stack_without_it(
    folder_root, oe_npy, tmp_path, monkeypatch
):
    cfgs = make_cfgs(folder_root, oe_npy, tmp_path / "without")
    without = train_jobs(
        [cfgs[0], cfgs[2]], [tmp_path / "without" / "0", tmp_path / "without" / "2"], device="cpu", **STACK
    )
    loss, steps = Objective.loss, []

    def member_1_blows_up(self, out, is_normal):  # a fault in member 1's loss from its second epoch on
        values = loss(self, out, is_normal)
        steps.append(1)
        if len(steps) > 2:
            values = values * torch.tensor([1.0, float("nan"), 1.0])
        return values

    monkeypatch.setattr(Objective, "loss", member_1_blows_up)
    cfgs = make_cfgs(folder_root, oe_npy, tmp_path / "with")
    results = train_jobs(cfgs, [tmp_path / "with" / str(i) for i in range(3)], device="cpu", **STACK)
    assert "became NaN or infinite" in results[1].message
    assert outputs(tmp_path / "with" / "1") == set()
    for alone, kept in zip(without, (results[0], results[2])):
        assert kept["test_auroc"] == alone["test_auroc"] and kept["train_auroc"] == alone["train_auroc"]


class Interrupt(Exception):
    pass


def test_a_stack_interrupted_mid_training_resumes_from_its_members_checkpoints(
    folder_root, oe_npy, tmp_path, monkeypatch
):
    full = train_jobs(
        make_cfgs(folder_root, oe_npy, tmp_path / "full"), [tmp_path / f"f{i}" for i in range(3)], "cpu", **STACK
    )
    cfgs = make_cfgs(folder_root, oe_npy, tmp_path / "cut", "checkpoint.every_n_epochs=1")
    dirs = [tmp_path / f"c{i}" for i in range(3)]
    interrupt_stack_at(monkeypatch, 2, Interrupt)  # in epoch 3
    cut = train_jobs(cfgs, dirs, device="cpu", **STACK)
    assert all("Interrupt" in r.message for r in cut)
    for d in dirs:
        assert outputs(d) == {LAST_CKPT}
        assert torch.load(d / LAST_CKPT, weights_only=False)["epochs_done"] == 2  # epochs 0 and 1 done
    monkeypatch.undo()
    resumed = train_jobs(cfgs, dirs, device="cpu", **STACK)
    for r, f in zip(resumed, full):
        assert r["test_auroc"] == f["test_auroc"] and r["train_auroc"] == f["train_auroc"]
    assert all(outputs(d) == {RECORD_NAME, SCORES_NAME, MODEL_FILE} for d in dirs)  # the checkpoint is dropped


@pytest.mark.slow
def test_a_killed_vectorised_sweep_resumes_with_the_uninterrupted_aucs(folder_root, oe_npy, tmp_path):
    args = [*tiny_overrides(folder_root, oe_npy, tmp_path / "runs"), "method=hsc", "epochs=30", "milestones=[20]"]
    args += ["checkpoint.every_n_epochs=1", "normal_class=0", "seed=0,1", "launcher=vectorised"]
    args += ["hydra.launcher.max_models=2", "hydra.launcher.conv=split"]  # one stack (the probe might choose two)
    proc = _popen(["-m", *args, "name=kill"], tmp_path)
    _wait_for(lambda: len(list((tmp_path / "runs" / "kill").rglob(LAST_CKPT))) == 2, proc)
    time.sleep(1.0)  # a few more epochs
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "runs").rglob(RECORD_NAME))
    second = run_cli("-m", *args, "name=kill", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from" in second.stdout + second.stderr
    straight = run_cli("-m", *args, "name=straight", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]
    aucs = {
        name: sorted(json.loads(p.read_text())["test_auroc"] for p in (tmp_path / "runs" / name).rglob(RECORD_NAME))
        for name in ("kill", "straight")
    }
    assert len(aucs["kill"]) == 2 and aucs["kill"] == aucs["straight"]


def test_a_job_interrupted_under_one_launcher_resumes_under_the_other(folder_root, oe_npy, tmp_path, monkeypatch):
    """One checkpoint format (job/checkpoint.py): a stack member's last.ckpt resumes as a single job and a single
    job's inside a stack. Interrupted in epoch 4 of 4, after the milestone at 3 (the schedule's lr is restored)."""
    from oe_ad.job.lightning import run_job

    def cfgs(phase: str) -> list:  # each phase its own experiment (no record of another phase is reused)
        return make_cfgs(folder_root, oe_npy, tmp_path / phase, "checkpoint.every_n_epochs=1")

    single = [run_job(c, tmp_path / f"single{i}") for i, c in enumerate(cfgs("single"))]
    stacked = train_jobs(cfgs("stacked"), [tmp_path / f"stack{i}" for i in range(3)], device="cpu", **STACK)

    interrupt_stack_at(monkeypatch, 3, Interrupt)  # in epoch 4
    dirs = [tmp_path / f"from_stack{i}" for i in range(3)]
    assert all("Interrupt" in r.message for r in train_jobs(cfgs("a"), dirs, device="cpu", **STACK))
    monkeypatch.undo()
    resumed = [run_job(c, d) for c, d in zip(cfgs("a"), dirs)]  # a single job resumes each member's checkpoint

    interrupt_single_job_at(monkeypatch, 3, Interrupt)
    singles = [tmp_path / f"from_single{i}" for i in range(3)]
    for c, d in zip(cfgs("b"), singles):
        with pytest.raises(Interrupt):
            run_job(c, d)
    monkeypatch.undo()
    restacked = train_jobs(cfgs("b"), singles, device="cpu", **STACK)  # a stack resumes each single job's checkpoint
    for r, s, f in zip(resumed, restacked, single):
        assert r["test_auroc"] == f["test_auroc"] and s["test_auroc"] == f["test_auroc"], (r, s, f)
    assert [s["test_auroc"] for s in stacked] == [f["test_auroc"] for f in single]

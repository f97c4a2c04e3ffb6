"""Sweeps that survive: skip finished jobs, resume interrupted ones, atomic records, clear errors,
determinism, W&B failure isolation, launchers, data-parallel sharding."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import interrupt_single_job_at, merged, tiny_overrides
from oe_ad import atomic, config
from oe_ad.config import CONF_DIR, factory
from oe_ad.data.datamodule import BalancedBatches
from oe_ad.errors import OEADError
from oe_ad.job import loop as train
from oe_ad.job.checkpoint import (
    HASH_KEY,
    LAST_CKPT,
    MODEL_FILE,
    TrainingState,
    load_training_state,
    save_training_state,
    write_checksum,
)
from oe_ad.job.lightning import run_job
from oe_ad.job.records import (
    INDEX_DIR,
    RECORD_NAME,
    claim_job_dir,
    config_hash,
    find_record,
    index_record,
    write_record,
)
from test_cli import records, run_cli
from test_data import decode_ids, identity_images, no_aug

SRC = str(Path(__file__).parents[1] / "src")


# -- records: hash, atomic write, skip, one config per job folder ---------------------------------------------
def test_config_hash_ignores_where_and_how_a_job_runs_but_not_what_it_computes():
    base = {"seed": 0, "lr": 1e-3, "paths": {"output_dir": "a"}, "checkpoint": {"keep": False}, "threads": 1}
    moved = {**base, "paths": {"output_dir": "b"}, "checkpoint": {"keep": True}, "threads": 8, "name": "x"}
    assert config_hash(base) == config_hash(moved)
    assert config_hash(base) != config_hash({**base, "seed": 1})


def test_crash_between_temp_file_and_rename_leaves_no_record(tmp_path, monkeypatch):
    def crash(*args):
        raise OSError("killed before the rename")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError):
        write_record(tmp_path, {"config_hash": "abc", "test_auroc": 0.5})
    assert list(tmp_path.iterdir()) == []  # neither a record nor a temp file
    monkeypatch.undo()
    write_record(tmp_path, {"config_hash": "abc", "test_auroc": 0.5})
    assert [p.name for p in tmp_path.iterdir()] == [RECORD_NAME]


def test_finished_job_is_skipped_anywhere_in_the_experiment_unless_forced(make_cfg, tmp_path, monkeypatch, caplog):
    calls = []

    class FakeFitter:  # stands in for training: the loop's finish writes and indexes the record a real job would
        def fit_and_test(self, specs):
            for spec in specs:
                calls.append(spec.dir)
                yield spec, spec, train.Outcome(0.75, None, 0.0, "cpu")

    def fake_finish(job, outcome):
        rec = {"config_hash": job.hash, "test_auroc": outcome.test_auroc}
        index_record(train.experiment_dir(job.cfg), write_record(job.dir, rec), job.hash)
        return rec

    monkeypatch.setattr(train, "finish", fake_finish)

    def run_or_skip(cfg, job_dir):
        (result,) = train.run_jobs([train.JobSpec(cfg, job_dir)], FakeFitter())
        return result

    caplog.set_level(logging.INFO, logger="oe_ad")
    exp = tmp_path / "default"
    cfg = make_cfg("method=hsc")
    assert run_or_skip(cfg, exp / "hsc" / "a")["test_auroc"] == 0.75 and len(calls) == 1
    assert run_or_skip(cfg, exp / "hsc" / "a")["test_auroc"] == 0.75 and len(calls) == 1  # same folder: skipped
    # found through the index:
    assert run_or_skip(cfg, exp / "hsc" / "b")["test_auroc"] == 0.75 and len(calls) == 1
    assert sum("skip:" in r.getMessage() for r in caplog.records) == 2
    assert len(list((exp / INDEX_DIR).iterdir())) == 1
    run_or_skip(make_cfg("method=hsc", "force=true"), exp / "hsc" / "a")
    assert len(calls) == 2
    run_or_skip(make_cfg("method=hsc", "seed=1"), exp / "hsc" / "c")  # another config runs
    assert len(calls) == 3 and len(list((exp / INDEX_DIR).iterdir())) == 2


def test_a_job_folder_holding_another_configs_record_is_never_overwritten(tmp_path):
    write_record(tmp_path, {"config_hash": "old", "test_auroc": 0.5})
    claim_job_dir(tmp_path, "old", force=False)  # its own record: fine (a re-run or a resume)
    with pytest.raises(OEADError, match="another config.*force=true"):
        claim_job_dir(tmp_path, "new", force=False)
    claim_job_dir(tmp_path, "new", force=True)  # kept aside, out of the reports' way
    assert not (tmp_path / RECORD_NAME).exists()
    assert json.loads((tmp_path / "result.old.json").read_text())["config_hash"] == "old"
    assert find_record(tmp_path, tmp_path, "old") is None


def test_the_refusal_names_the_keys_that_differ(tmp_path):
    old = {"epochs": 3, "lr": 0.001, "data": {"root": "/a", "fingerprint": "f1"}, "paths": {"output_dir": "x"}}
    write_record(tmp_path, {"config_hash": config_hash(old), "config": old})
    new = {**old, "epochs": 2, "data": {"root": "/b", "fingerprint": "f2"}, "paths": {"output_dir": "y"}}
    with pytest.raises(OEADError) as e:
        claim_job_dir(tmp_path, config_hash(new), force=False, config=new)
    assert "(data.fingerprint differs: the images under data.root changed since this record; " in str(e.value)
    assert "epochs differs (the record's 3, this job's 2))" in str(e.value)  # paths: not what the job computes


# -- resume ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["hsc", "deep_svdd"])  # deep_svdd: its centre is a buffer and must resume too
def test_interrupted_job_resumes_from_last_ckpt_and_ends_as_an_uninterrupted_run(
    method, make_cfg, tmp_path, monkeypatch
):
    overrides = (f"method={method}", "epochs=4", "milestones=[2]", "checkpoint.every_n_epochs=1")
    cfg = make_cfg(*overrides)
    full = run_job(make_cfg(*overrides, "name=full"), tmp_path / "full")  # its own experiment: not reused

    class Interrupt(Exception):
        pass

    interrupt_single_job_at(monkeypatch, 3, Interrupt)
    with pytest.raises(Interrupt):
        run_job(cfg, tmp_path / "cut")
    assert (tmp_path / "cut" / LAST_CKPT).exists() and not (tmp_path / "cut" / RECORD_NAME).exists()
    saved = torch.load(tmp_path / "cut" / LAST_CKPT, map_location="cpu", weights_only=False)
    assert saved["epochs_done"] == 3  # epochs 0-2 done
    monkeypatch.undo()
    resumed = run_job(cfg, tmp_path / "cut")
    assert resumed["test_auroc"] == full["test_auroc"] and resumed["train_auroc"] == full["train_auroc"]
    assert not (tmp_path / "cut" / LAST_CKPT).exists()  # checkpoint.keep=false: gone once the record is written
    assert (tmp_path / "cut" / MODEL_FILE).exists()


def test_only_a_checkpoint_of_the_same_config_is_resumed(tmp_path):
    state = TrainingState(1, 4, {}, {"state": {}, "param_groups": [{"lr": 0.1}]}, {})
    save_training_state(tmp_path, "abc", state)
    assert load_training_state(tmp_path, "abc") == state
    assert load_training_state(tmp_path, "xyz") is None  # another config's unfinished job: train from scratch
    (tmp_path / LAST_CKPT).write_bytes(b"truncated")
    assert load_training_state(tmp_path, "abc") is None
    torch.save({HASH_KEY: "abc", "epoch": 1}, tmp_path / LAST_CKPT)  # an older oe_ad's (Lightning's own format)
    write_checksum(tmp_path / LAST_CKPT)
    assert load_training_state(tmp_path, "abc") is None


# -- determinism ----------------------------------------------------------------------------------------------
def test_same_seed_same_initial_weights_and_same_augmented_batches(make_cfg):
    def weights(seed):
        pl.seed_everything(seed, verbose=False)
        return factory.build_method(make_cfg("method=bce", f"seed={seed}")).state_dict()

    a, b, c = weights(0), weights(0), weights(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)

    def first_batches(seed):
        dm = factory.build_datamodule(make_cfg("method=bce", "oe_size=5", f"seed={seed}"))
        dm.setup("fit")
        return torch.cat([x for x, _ in dm.train_dataloader()]), dm.oe_indices

    (x0, oe0), (x1, oe1), (x2, oe2) = first_batches(0), first_batches(0), first_batches(1)
    assert torch.equal(x0, x1) and np.array_equal(oe0, oe1)  # order and augmentation
    assert not torch.equal(x0, x2) and not np.array_equal(oe0, oe2)


# -- data-parallel sharding -----------------------------------------------------------------------------------
@pytest.mark.parametrize("world", [2, 3])
def test_ranks_split_one_epoch_into_equal_numbers_of_balanced_batches(world):
    normal, oe = identity_images(300), identity_images(7, offset=1000)

    def rank_ids(rank):
        b = BalancedBatches(normal, oe, 16, 0, no_aug, lambda: 0, rank=rank, world_size=world)
        out = []
        for x, is_normal in b:
            assert x.shape[0] == 32 and is_normal[:16].all() and not is_normal[16:].any()
            assert (decode_ids(x[16:]) >= 1000).all()
            out.append(decode_ids(x[:16]))
        assert len(out) == len(b)
        return out

    per_rank = [rank_ids(r) for r in range(world)]
    assert len({len(steps) for steps in per_rank}) == 1  # DDP needs the same step count on every rank
    single = torch.cat([decode_ids(x[:16]) for x, _ in BalancedBatches(normal, oe, 16, 0, no_aug, lambda: 0)])
    interleaved = torch.cat([per_rank[s % world][s // world] for s in range(world * len(per_rank[0]))])
    assert torch.equal(interleaved[: len(single)], single)  # the same epoch order, dealt out to the ranks
    assert set(interleaved.tolist()) == set(range(300))


# -- launchers ------------------------------------------------------------------------------------------------
def compose_hydra(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_launchers_compose_and_the_slurm_launcher_instantiates():
    assert compose_hydra().hydra.launcher._target_.endswith("BasicLauncher")
    assert compose_hydra("launcher=joblib", "hydra.launcher.n_jobs=3").hydra.launcher.n_jobs == 3
    cfg = compose_hydra("launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.array_parallelism=8")
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    p = launcher.params
    assert (p["partition"], p["gpus_per_node"], p["array_parallelism"], p["timeout_min"]) == ("gpu", 1, 8, 720)


def test_parallel_jobs_share_the_cores():
    cores = len(os.sched_getaffinity(0))
    assert config.cpu_share(1) == cores and config.cpu_share(-1) == 1
    for n in (2, 3, 64):
        assert n * config.cpu_share(n) <= max(cores, n) and config.cpu_share(n) >= 1


# -- clear errors (the other cases are in test_cli.py) ----------------------------------------------------------
@pytest.mark.parametrize("override", ["data=nope", "oe=nope", "experiment=nope", "launcher=nope"])
def test_unknown_group_option_is_one_line(override, tmp_path):
    proc = run_cli(override, cwd=tmp_path)
    key, value = override.split("=")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: unknown {key} '{value}'")


def _undecodable_root(folder_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(folder_root, root)
    (root / "train" / "class1" / "zz_broken.png").write_bytes(b"not a png")
    return root


@pytest.mark.parametrize(
    "case, message",
    [
        ("undecodable", "zz_broken.png"),
        ("npy_dtype", "float32"),
        ("npy_shape", "(4, 32, 32, 4)"),
        ("contradictory", "oe_size=4 must be null"),
        ("negative_class", "normal_class=-1"),
    ],
)
def test_bad_inputs_are_one_line_errors_without_a_record(case, message, folder_root, oe_npy, tmp_path):
    out = tmp_path / "runs"
    args = tiny_overrides(folder_root, oe_npy, out)
    if case == "undecodable":
        args.append(f"data.root={_undecodable_root(folder_root, tmp_path)}")
    elif case.startswith("npy"):
        bad = np.zeros((4, 32, 32, 3), np.float32) if case == "npy_dtype" else np.zeros((4, 32, 32, 4), np.uint8)
        np.save(tmp_path / "bad.npy", bad)
        args.append(f"oe.path={tmp_path / 'bad.npy'}")
    elif case == "contradictory":
        args += ["method=deep_svdd", "oe_size=4"]
    else:
        args.append("normal_class=-1")
    proc = run_cli(*args, cwd=tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and records(tmp_path) == []


# -- W&B isolation --------------------------------------------------------------------------------------------
def test_unreachable_wandb_costs_one_warning_and_the_job_still_records(folder_root, oe_npy, tmp_path):
    import socket

    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "runs"
    args = [a for a in tiny_overrides(folder_root, oe_npy, out) if not a.startswith("logger=")]
    env = {
        "HOME": str(tmp_path),
        "WANDB_MODE": "online",
        "WANDB_API_KEY": "x" * 40,
        "WANDB_BASE_URL": f"http://127.0.0.1:{port}",
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": None,
    }
    t0 = time.monotonic()
    proc = run_cli(*args, "logger=wandb", "logger.init_timeout=3", "epochs=1", "milestones=[]", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (proc.stdout + proc.stderr).splitlines()
    warnings = [line for line in lines if "W&B" in line or line.startswith("wandb:") or "Traceback" in line]
    assert len(warnings) == 1 and "W&B unavailable" in warnings[0], warnings
    assert len(records(out)) == 1
    assert time.monotonic() - t0 < 120


# -- end to end: kills, launchers ------------------------------------------------------------------------------
def _popen(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(
        [sys.executable, "-m", "oe_ad.run", *merged(args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert proc.poll() is None, f"finished before it could be killed:\n{proc.stdout.read()[-2000:]}"
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_job_resumes_from_its_checkpoint_with_the_uninterrupted_result(folder_root, oe_npy, tmp_path, make_cfg):
    out = tmp_path / "runs"
    job = ["method=hsc", "epochs=40", "milestones=[20]", "checkpoint.every_n_epochs=1", "name=kill"]
    args = [*tiny_overrides(folder_root, oe_npy, out), *job]
    proc = _popen(args, tmp_path)
    ckpts = lambda: list(out.rglob(LAST_CKPT))  # noqa: E731
    _wait_for(lambda: bool(ckpts()), proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert records(out) == []
    second = run_cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from" in second.stdout + second.stderr
    (resumed,) = records(out)
    uninterrupted = run_job(make_cfg(*job), tmp_path / "uninterrupted")
    assert resumed["config_hash"] == uninterrupted["config_hash"]
    assert resumed["test_auroc"] == uninterrupted["test_auroc"]


@pytest.mark.slow
def test_sweep_killed_mid_way_reruns_only_the_missing_jobs(folder_root, oe_npy, tmp_path):
    out = tmp_path / "runs"
    args = [
        "-m",
        *tiny_overrides(folder_root, oe_npy, out),
        "method=hsc",
        "normal_class=0",
        "seed=0,1,2,3",
        "epochs=6",
        "name=sweep",
    ]
    proc = _popen(args, tmp_path)
    _wait_for(lambda: len(list(out.rglob(RECORD_NAME))) >= 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p: p.stat().st_mtime_ns for p in out.rglob(RECORD_NAME)}
    assert 2 <= len(before) < 4
    second = run_cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    skipped = [line for line in (second.stdout + second.stderr).splitlines() if "skip:" in line]
    assert len(skipped) == len(before)
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # finished jobs untouched
    recs = records(out)
    assert (
        len(recs) == 4
        and len({r["config_hash"] for r in recs}) == 4
        and sorted(r["seed"] for r in recs) == [0, 1, 2, 3]
    )
    third = run_cli(*args, cwd=tmp_path)  # a finished sweep does no training
    assert third.returncode == 0 and (third.stdout + third.stderr).count("skip:") == 4
    assert "epoch 1/" not in third.stdout + third.stderr


def test_a_job_run_again_forgets_its_last_failure(folder_root, oe_npy, tmp_path):
    """The sweep's summary counts the error.json files written since it started: one left by the previous run of the
    same command moments before (a SLURM task cancelled just before the re-run) must not count once its job runs."""
    out = tmp_path / "runs"
    args = ["-m", *tiny_overrides(folder_root, oe_npy, out), "method=hsc", "normal_class=0", "seed=0", "epochs=1"]
    args += ["milestones=[]", "name=again"]
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    (record,) = out.rglob(RECORD_NAME)
    stale = record.parent / "error.json"
    stale.write_text(json.dumps({"error": "SLURM task 1_0 ended CANCELLED without a result", "kind": "interrupted"}))
    os.utime(stale, (time.time() + 30, time.time() + 30))  # as new as the next run's start
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and "1 skipped, 0 failed" in again.stderr, again.stderr[-2000:]
    assert not stale.exists()


@pytest.mark.slow
def test_joblib_launcher_runs_two_jobs_in_parallel_with_a_share_of_the_cores(folder_root, oe_npy, tmp_path):
    out = tmp_path / "runs"
    args = [
        *tiny_overrides(folder_root, oe_npy, out),
        "method=hsc",
        "normal_class=0",
        "seed=0,1",
        "epochs=1",
        "milestones=[]",
        "name=par",
    ]
    proc = run_cli("-m", *args, "launcher=joblib", "hydra.launcher.n_jobs=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = records(out)
    assert sorted(r["seed"] for r in recs) == [0, 1]
    cores = len(os.sched_getaffinity(0))
    assert all(r["threads"] == max(1, cores // 2) for r in recs)


@pytest.mark.slow
def test_slurm_launcher_runs_a_sweep_with_submits_local_executor_standing_in(folder_root, oe_npy, tmp_path):
    """The real SLURM launcher code path; only submitit's executor is swapped for its local one."""
    out = tmp_path / "runs"
    args = [
        *tiny_overrides(folder_root, oe_npy, out),
        "method=hsc",
        "normal_class=0",
        "seed=0,1",
        "epochs=1",
        "milestones=[]",
        "name=slurm",
    ]
    argv = ["oe_ad.run", "-m", *merged(args), "launcher=slurm", "hydra.launcher.partition=gpu"]
    argv += ["hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1"]
    script = (
        "import sys, submitit\n"
        "auto = submitit.AutoExecutor\n"
        "submitit.AutoExecutor = lambda cluster, **kw: auto(cluster='local', **kw)\n"
        f"sys.argv = {argv!r}\n"
        "from oe_ad.run import main\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(r["seed"] for r in records(out)) == [0, 1]
    assert list((out / "slurm" / ".submitit").iterdir())


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_one_job_and_writes_one_record(folder_root, oe_npy, tmp_path):
    out = tmp_path / "runs"
    ddp = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "threads=1"]
    proc = run_cli(*tiny_overrides(folder_root, oe_npy, out), "method=hsc", "epochs=2", *ddp, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GLOBAL_RANK: 1" in proc.stdout + proc.stderr
    (record,) = records(out)
    assert record["config"]["trainer"]["devices"] == 2 and record["test_auroc"] > 0.9
    assert len(list(out.rglob(MODEL_FILE))) == 1

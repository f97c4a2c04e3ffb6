"""Faults that must not turn into wrong numbers: planted or corrupted checkpoints, truncated records, concurrent
sweeps over one folder, stale locks, reports over records of different configs."""

import json
import logging
import os
import socket
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import tiny_overrides
from oe_ad import atomic, config, report, run
from oe_ad.job import loop as train
from oe_ad.job.checkpoint import CHECKSUM_SUFFIX, LAST_CKPT, load_training_state, write_checksum
from oe_ad.job.lightning import run_job
from oe_ad.job.locks import LOCK_NAME, JobLock
from oe_ad.job.records import RECORD_NAME, config_hash, write_record
from test_cli import records, run_cli


# -- checkpoints ---------------------------------------------------------------------------------------------
class Payload:
    """Unpickling this creates a file: the proof that a checkpoint ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant_malicious(job_dir: Path, marker: Path, chash: str, with_checksum: bool) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"oe_ad_config_hash": chash, "epoch": 0, "state_dict": {}, "x": Payload(marker)}, job_dir / LAST_CKPT)
    if with_checksum:  # whoever can plant a checkpoint can plant its checksum too
        write_checksum(job_dir / LAST_CKPT)


@pytest.mark.parametrize("with_checksum", [False, True])
def test_a_planted_malicious_last_ckpt_does_not_execute(with_checksum, tmp_path, caplog):
    marker = tmp_path / "pwned"
    plant_malicious(tmp_path / "job", marker, "abc", with_checksum)
    with caplog.at_level(logging.WARNING):
        assert load_training_state(tmp_path / "job", "abc") is None
    assert not marker.exists()
    assert sum("ignoring" in r.getMessage() for r in caplog.records) == 1


def test_a_job_with_a_planted_checkpoint_trains_from_scratch_without_running_it(make_cfg, tmp_path):
    cfg = make_cfg("method=hsc", "epochs=1", "milestones=[]")
    train.validate(cfg)
    marker = tmp_path / "pwned"
    plant_malicious(tmp_path / "job", marker, config_hash(OmegaConf.to_container(cfg, resolve=True)), True)
    record = run_job(cfg, tmp_path / "job")
    assert not marker.exists() and 0 <= record["test_auroc"] <= 1


def test_a_corrupted_last_ckpt_is_not_resumed_but_an_intact_one_is(make_cfg, tmp_path, caplog):
    cfg = make_cfg("method=hsc", "epochs=2", "checkpoint.every_n_epochs=1", "checkpoint.keep=true")
    full = run_job(cfg, tmp_path / "job")
    chash = full["config_hash"]
    ckpt = tmp_path / "job" / LAST_CKPT
    assert Path(f"{ckpt}{CHECKSUM_SUFFIX}").exists()
    assert load_training_state(tmp_path / "job", chash) is not None  # intact: loads with weights_only=True and resumes
    data = bytearray(ckpt.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = os.urandom(4096)  # 4 KiB overwritten inside a tensor
    ckpt.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert load_training_state(tmp_path / "job", chash) is None
    assert [r.getMessage() for r in caplog.records if "checksum mismatch" in r.getMessage()]
    (tmp_path / "job" / RECORD_NAME).unlink()
    again = run_job(cfg, tmp_path / "job")  # trains from scratch: the same numbers as the first run
    assert again["test_auroc"] == full["test_auroc"]


def test_temp_files_have_unique_names(tmp_path, monkeypatch):
    seen = []
    replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda src, dst: (seen.append(Path(src).name), replace(src, dst)))
    write_record(tmp_path, {"a": 1})
    write_record(tmp_path, {"a": 2})
    assert len(set(seen)) == 2 and all(str(os.getpid()) in s for s in seen)


def test_vectorised_members_pass_the_same_validation(make_cfg, tmp_path):
    from oe_ad.vectorised.launcher import train_jobs

    cfgs = [make_cfg("method=hsc", "augment=maybe"), make_cfg("method=hsc", "epochs=1.5")]
    results = train_jobs(cfgs, [tmp_path / "a", tmp_path / "b"], device="cpu")
    assert "augment=maybe" in results[0].message and "epochs=1.5" in results[1].message
    assert not list(tmp_path.rglob(RECORD_NAME))
    assert not list(tmp_path.rglob(".lock"))  # train_jobs releases its locks


# -- records and folders -------------------------------------------------------------------------------------
def test_a_truncated_result_json_is_moved_aside_and_the_job_trained_again(make_cfg, tmp_path, caplog):
    cfg = make_cfg("method=hsc", "epochs=1", "milestones=[]")
    job = tmp_path / "default" / "hsc" / "job"
    job.mkdir(parents=True)
    (job / RECORD_NAME).write_text('{"config_hash": "abc", "test_au')
    with caplog.at_level(logging.WARNING):
        auroc = run_job(cfg, job)["test_auroc"]
    assert 0 <= auroc <= 1 and json.loads((job / RECORD_NAME).read_text())["test_auroc"] == auroc
    assert len(list(job.glob("result.unreadable-*.json"))) == 1
    assert sum("unreadable" in r.getMessage() for r in caplog.records) == 1


def test_job_folder_names_leave_out_what_the_config_hash_leaves_out():
    lines = ["seed=1", "checkpoint.every_n_epochs=5", "threads=2", "paths.data_dir=/x", "method=hsc", "force=true"]
    assert config.job_dirname(lines, ["method", "force"]) == "seed=1"
    assert config.job_dirname(["checkpoint.keep=true"], []) == "defaults"


# -- locks ---------------------------------------------------------------------------------------------------
def test_a_job_lock_is_exclusive_and_released(tmp_path):
    a, b = JobLock(tmp_path), JobLock(tmp_path)
    assert a.acquire() and not b.acquire() and str(os.getpid()) in b.holder
    a.release()
    assert b.acquire()
    b.release()
    assert not (tmp_path / LOCK_NAME).exists()


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


@pytest.mark.parametrize(
    "info, heartbeat_age_s, stale",
    [
        ({"host": socket.gethostname()}, 0, True),  # a dead pid on this host
        ({"host": "elsewhere"}, 3600, True),  # another host's lock without a heartbeat for an hour
        ({"host": "elsewhere"}, 5, False),  # another host's lock with a recent heartbeat: alive
    ],
)
def test_stale_locks_are_taken_over_and_live_ones_are_not(info, heartbeat_age_s, stale, tmp_path):
    path = tmp_path / LOCK_NAME
    path.write_text(json.dumps({"pid": _dead_pid(), "time": time.time() - 86400, **info}))
    os.utime(path, (time.time() - heartbeat_age_s,) * 2)
    lock = JobLock(tmp_path)
    assert lock.acquire() is stale
    lock.release()


def test_a_held_lock_keeps_its_heartbeat(tmp_path, monkeypatch):
    from oe_ad.job import locks

    monkeypatch.setattr(locks, "HEARTBEAT_S", 0.05)
    lock = JobLock(tmp_path)
    assert lock.acquire()
    old = time.time() - 3600
    os.utime(tmp_path / LOCK_NAME, (old, old))
    time.sleep(0.5)
    assert time.time() - (tmp_path / LOCK_NAME).stat().st_mtime < 60
    lock.release()


def test_an_empty_lock_counts_as_stale_only_after_a_grace_period(tmp_path):
    path = tmp_path / LOCK_NAME
    path.write_text("")
    assert not JobLock(tmp_path).acquire()
    old = time.time() - 120
    os.utime(path, (old, old))
    assert JobLock(tmp_path).acquire()


def test_two_concurrent_identical_sweeps_train_each_job_once_and_match_one_sweep(folder_root, oe_npy, tmp_path):
    import subprocess
    import sys

    from conftest import merged

    def sweep(name: str) -> subprocess.Popen:
        args = merged([*tiny_overrides(folder_root, oe_npy, tmp_path / "runs"), "epochs=1", "milestones=[]"])
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
        cmd = [
            sys.executable,
            "-m",
            "oe_ad.run",
            "-m",
            *args,
            "method=hsc",
            "normal_class=0",
            "seed=0,1,2",
            f"name={name}",
        ]
        return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    procs = [sweep("twice"), sweep("twice")]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    trained = sum(line.count("test AUROC") for log in logs for line in log.splitlines())
    assert trained == 3, logs  # every job trained by exactly one of the two sweeps
    single = run_cli(
        "-m",
        *merged([*tiny_overrides(folder_root, oe_npy, tmp_path / "runs"), "epochs=1", "milestones=[]"]),
        "method=hsc",
        "normal_class=0",
        "seed=0,1,2",
        "name=once",
        cwd=tmp_path,
    )
    assert single.returncode == 0, single.stderr[-2000:]

    def by_seed(name: str) -> dict:
        return {r["seed"]: (r["config_hash"], r["test_auroc"]) for r in records(tmp_path / "runs" / name)}

    assert by_seed("twice") == by_seed("once") and len(by_seed("once")) == 3
    assert not list((tmp_path / "runs").rglob(LOCK_NAME))


# -- report --------------------------------------------------------------------------------------------------
def _record(folder: Path, seed: int, epochs: int, auc: float, lr: float = 1e-3) -> None:
    config = {"method": {"name": "hsc"}, "data": {"name": "folder"}, "seed": seed, "epochs": epochs, "lr": lr}
    config["normal_class"], config["oe_size"] = 0, None
    rec = {"config_hash": config_hash(config), "method": "hsc", "data": "folder", "oe": "npy", "benchmark": "ovr"}
    rec.update(normal_class=0, class_name="class0", seed=seed, oe_size=None, test_auroc=auc, config=config)
    write_record(folder, rec)


def test_the_report_survives_a_truncated_record_and_never_pools_different_epochs(tmp_path, caplog):
    _record(tmp_path / "a", seed=0, epochs=1, auc=0.5)
    _record(tmp_path / "b", seed=0, epochs=3, auc=1.0)
    _record(tmp_path / "c", seed=1, epochs=3, auc=0.9)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / RECORD_NAME).write_text('{"config_hash": "x", "test_auroc": 0.')
    assert report.main([str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "hsc (OE full) epochs=1" in md and "hsc (OE full) epochs=3" in md
    assert "50.0 (n=1)" in md and "95.0 ± 7.1 [31.5, 158.5] (n=2)" in md and "75.0" not in md
    warned = [r.getMessage() for r in caplog.records if str(tmp_path / "d" / RECORD_NAME) in r.getMessage()]
    assert len(warned) == 1 and "unreadable" in warned[0]


def test_the_report_warns_when_two_records_share_config_and_seed(tmp_path, caplog):
    _record(tmp_path / "a", seed=0, epochs=3, auc=0.8)
    _record(tmp_path / "b", seed=0, epochs=3, auc=0.8)
    _record(tmp_path / "c", seed=1, epochs=3, auc=0.6)
    assert report.main([str(tmp_path)]) == 0
    assert "(n=2)" in (tmp_path / "report.md").read_text()  # distinct seeds, not records
    assert sum("same config and seed" in r.getMessage() for r in caplog.records) == 1


# -- issue 19: faults that crashed or exited 0 ------------------------------------------------------------------
def test_a_checksum_file_of_binary_garbage_is_a_warning_and_a_fresh_start(tmp_path, caplog):
    torch.save({"oe_ad_config_hash": "abc", "epoch": 1}, tmp_path / LAST_CKPT)
    Path(f"{tmp_path / LAST_CKPT}{CHECKSUM_SUFFIX}").write_bytes(b"\xff\xfe\x00\x9c" + os.urandom(60))
    with caplog.at_level(logging.WARNING):
        assert load_training_state(tmp_path, "abc") is None
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "unreadable checksum file last.ckpt.sha256" in warned[0], warned


def test_an_empty_wandb_mode_counts_as_unset_and_the_job_keeps_wandb(make_cfg, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_MODE", "")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key: offline, chosen for lack of one
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    cfg = make_cfg("logger=wandb", "method=hsc", "epochs=1", "milestones=[]")
    with caplog.at_level(logging.INFO):
        record = run_job(cfg, tmp_path / "job")
    assert 0 <= record["test_auroc"] <= 1
    assert not [r for r in caplog.records if "W&B unavailable" in r.getMessage()]
    assert list((tmp_path / "job").rglob("offline-run-*")), "no offline W&B run"


def _wait_for_text(path_glob, root: Path, text: str, proc, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while not any(text in p.read_text(errors="replace") for p in root.rglob(path_glob)):
        assert proc.poll() is None, f"finished before it could be interrupted:\n{proc.stdout.read()[-2000:]}"
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sweep, every_n_epochs, rerun",
    [
        (False, 1, "resume from last.ckpt"),
        (False, 0, "start it again"),
        (True, 1, "resume from last.ckpt (finished jobs are skipped)"),
    ],
    ids=["job with last.ckpt", "job without", "sweep"],
)
def test_sigterm_mid_epoch_exits_143_with_one_line_and_no_record(
    sweep, every_n_epochs, rerun, folder_root, oe_npy, tmp_path
):
    import signal
    import subprocess
    import sys

    from conftest import merged

    out = tmp_path / "runs"
    job = ["method=hsc", "epochs=400", "milestones=[200]", f"checkpoint.every_n_epochs={every_n_epochs}", "name=term"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    sweep_args = ["-m", "seed=0,1"] if sweep else []  # the sweep stops at its first job
    cmd = [sys.executable, "-m", "oe_ad.run", *merged([*sweep_args, *tiny_overrides(folder_root, oe_npy, out), *job])]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_text("run.log", out, "epoch 2/400", proc)  # two epochs done: inside the third
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert proc.returncode == 143, output[-3000:]
    assert len(errors) == 1 and "Traceback" not in output, output[-3000:]
    assert errors[0].startswith("error: interrupted (SIGTERM) during epoch ")
    assert errors[0].endswith(f"/400: re-run the same command to {rerun}"), errors[0]
    assert not list(out.rglob(RECORD_NAME)) and not list(out.rglob("error.json"))
    (job_dir,) = {p.parent for p in out.rglob("run.log")}
    assert (load_training_state(job_dir, json_hash(job_dir)) is not None) == bool(every_n_epochs)


def json_hash(job_dir: Path) -> str:
    """The config hash the job's last.ckpt is tagged with (as the job computes it)."""
    from omegaconf import OmegaConf

    from oe_ad.config.factory import validate

    cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    validate(cfg)  # the schema, then the data's fingerprints, which the hash names the data by
    return config_hash(OmegaConf.to_container(cfg, resolve=True))


# -- the schedule: milestones as fractions of epochs -----------------------------------------------------------
def _default(*overrides: str):
    from hydra import compose, initialize_config_dir

    from oe_ad.config.schema import validate_config

    with initialize_config_dir(str(run.CONF_DIR), version_base="1.3"):
        return validate_config(compose("config", overrides=list(overrides)))


@pytest.mark.parametrize(
    "overrides, milestones",
    [
        ([], [100, 150]),  # the paper's CIFAR-10 schedule
        (["epochs=12"], [6, 9]),  # shortened with the run
        (["epochs=3"], [2]),  # 1.5 and 2.25 round to 2 and 2: one milestone
        (["epochs=1"], [1]),
        (["method=clip_bce"], [50, 60, 70, 75]),
        (["method=clip_bce", "epochs=8"], [5, 6, 7, 8]),
        (["data=mvtec", "method=deep_svdd"], [200, 250]),
        (["data=mvtec", "method=deep_svdd", "epochs=30"], [20, 25]),  # the paper's code's MVTec-AD schedule
        (["epochs=12", "milestones=[4,8]"], [4, 8]),  # explicit epochs keep their meaning
        (["epochs=10", "milestones=[0.25]"], [3]),  # 2.5 rounds half up
    ],
)
def test_default_milestones_are_fractions_of_epochs_resolved_in_the_config(overrides, milestones):
    cfg = _default(*overrides)
    assert list(cfg.milestones) == milestones and all(type(m) is int for m in cfg.milestones)


def test_fraction_milestones_keep_the_config_hash_of_the_epochs_they_resolve_to(folder_root, tmp_path):
    """At the paper's epochs the resolved schedule is the old one, so existing records keep their hash."""
    from omegaconf import OmegaConf

    def chash(*overrides):
        return config_hash(OmegaConf.to_container(_default(*overrides), resolve=True))

    root = [f"data.root={folder_root}", f"oe.root={tmp_path}"]
    assert chash() == chash("milestones=[100,150]")
    assert chash("method=hsc") == chash("method=hsc", "milestones=[100,150]")
    assert chash("method=clip_bce") == chash("method=clip_bce", "milestones=[50,60,70,75]")
    assert chash("data=imagenet30", *root) == chash("data=imagenet30", *root, "milestones=[100,125]")
    assert chash("data=mvtec", f"oe.root={tmp_path}") == chash(
        "data=mvtec", f"oe.root={tmp_path}", "milestones=[200,250]"
    )
    assert chash("epochs=12") == chash("epochs=12", "milestones=[6,9]")


def test_a_job_trains_and_records_the_resolved_milestones(make_cfg, tmp_path):
    from oe_ad.config.factory import build_method

    cfg = make_cfg("method=hsc", "epochs=3", "milestones=[0.5,0.75]")
    train.validate(cfg)
    assert build_method(cfg).milestones == [2]
    record = run_job(cfg, tmp_path / "job")
    assert record["config"]["milestones"] == [2]


def test_the_schema_imports_neither_torch_nor_lightning(tmp_path):
    """Refusing a bad option must not wait for the ~10 s those imports take."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from hydra import compose, initialize_config_dir\n"
        "from oe_ad.config import CONF_DIR\n"
        "from oe_ad.config.schema import validate_config\n"
        "for method in ('bce', 'focal', 'hsc', 'deep_sad', 'deep_svdd', 'clip_bce', 'clip_zero_shot'):\n"
        "    with initialize_config_dir(str(CONF_DIR), version_base='1.3'):\n"
        "        validate_config(compose('config', overrides=[f'method={method}', 'trainer.accelerator=cpu']))\n"
        "heavy = [m for m in ('torch', 'pytorch_lightning', 'lightning', 'open_clip') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_kill_between_the_checkpoint_and_its_checksum_leaves_a_pair_that_verifies(tmp_path, monkeypatch):
    """The new digest joins the checksum file before the new last.ckpt replaces the old one, and the old digest
    leaves after: a kill at either moment leaves a file whose digest the checksum file holds."""
    from oe_ad.job import checkpoint

    path = tmp_path / LAST_CKPT
    checkpoint.write_verified(path, {"epoch": 1})
    replace = os.replace

    def killed(src, dst):
        if Path(dst).name == LAST_CKPT:
            raise KeyboardInterrupt  # the kill, just before the new file is renamed into place
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.write_verified(path, {"epoch": 2})
    assert checkpoint.checksum_ok(path) == (True, "") and len(checkpoint.digests(path)) == 2
    assert torch.load(path, weights_only=True) == {"epoch": 1}  # the previous checkpoint, still verified
    monkeypatch.setattr(os, "replace", replace)
    write = checkpoint.write_checksum
    monkeypatch.setattr(checkpoint, "write_checksum", lambda p, d=None: write(p, d) if len(d or []) > 1 else 1 / 0)
    with pytest.raises(ZeroDivisionError):  # the kill after the rename, before the old digest leaves
        checkpoint.write_verified(path, {"epoch": 3})
    assert checkpoint.checksum_ok(path) == (True, "") and torch.load(path, weights_only=True) == {"epoch": 3}

"""Sweeps through a real one-node SLURM (``tools/slurm.sh start``: slurmctld + slurmd on this machine, accounting
off): ``launcher=slurm`` and ``launcher=vectorised_slurm`` with submitit's SLURM executor, nothing patched. Where
SLURM cannot run here (not root, no apt-get) the slow tests skip with the script's one line. The fast tests at the
end check the pieces that need no controller."""

import json
import math
import os
import shutil
import statistics
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from conftest import merged, tiny_overrides
from test_cli import records, run_cli
from test_robust import _popen, _undecodable_root

ROOT = Path(__file__).parents[1]
SLURM_SH = ROOT / "tools" / "slurm.sh"
CANNOT_RUN = 77  # tools/slurm.sh: this machine cannot run SLURM (its one line says why)
SRUN_HINT = "The `srun` command is available on your system but is not used"
# One CPU per task and no GPU: two tasks at once on a 2-core machine; mem_gb fits any machine.
ON_THIS_NODE = ["hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]


# -- the controller, the shared sweep and its references ------------------------------------------------------
@pytest.fixture(scope="module")
def slurm():
    """A running one-node SLURM (started here if it is not running, and then stopped at the end)."""
    running = subprocess.run(["bash", str(SLURM_SH), "status"], capture_output=True, text=True).returncode == 0
    if not running:
        proc = subprocess.run(["bash", str(SLURM_SH), "start"], capture_output=True, text=True, timeout=900)
        if proc.returncode == CANNOT_RUN:
            pytest.skip(proc.stdout.strip())
        assert proc.returncode == 0, proc.stdout + proc.stderr
    yield
    if not running:
        subprocess.run(["bash", str(SLURM_SH), "stop"], capture_output=True, text=True)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slurm")


def sweep(folder_root: Path, oe_npy: Path, out: Path, *extra: str) -> list[str]:
    """The 4-job sweep (2 classes x 2 seeds, 12 short epochs, last.ckpt every epoch), one thread per job."""
    return merged(
        [
            *tiny_overrides(folder_root, oe_npy, out),
            *("method=hsc", "normal_class=0,1", "seed=0,1", "epochs=12", "milestones=[6]", "threads=1"),
            "checkpoint.every_n_epochs=1",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def references(folder_root, oe_npy, out) -> dict[str, tuple[dict[str, dict], str]]:
    """The sweep under launcher=local and under launcher=vectorised in stacks of 2, run side by side: per launcher,
    (its jobs, the command's output)."""
    commands = {
        "local": sweep(folder_root, oe_npy, out, "name=local"),
        "vec": sweep(folder_root, oe_npy, out, "name=vec", "launcher=vectorised", "hydra.launcher.max_models=2"),
    }
    procs = {name: _popen(["-m", *args], out) for name, args in commands.items()}
    found = {}
    for name, proc in procs.items():
        output = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, output[-3000:]
        found[name] = jobs(out / name), output
    return found


@pytest.fixture(scope="module")
def local_ref(references):
    return references["local"]


@pytest.fixture(scope="module")
def vectorised_ref(references):
    return references["vec"]


# -- helpers --------------------------------------------------------------------------------------------------
def jobs(experiment: Path) -> dict[str, dict]:
    """Per job folder (relative to the experiment): its record plus its scores.csv bytes under ``_scores``."""
    found = {}
    for p in experiment.rglob("result.json"):
        found[str(p.parent.relative_to(experiment))] = {
            **json.loads(p.read_text()),
            "_scores": (p.parent / "scores.csv").read_bytes(),
        }
    return found


def assert_same_results(got: dict[str, dict], want: dict[str, dict], scores: set[str] | None = None) -> None:
    """The same jobs with bit-identical numbers: the config hash, the OE subset, AUROCs and AUPR, and scores.csv
    (of the jobs in ``scores``; None: of all)."""
    assert got.keys() == want.keys()
    for job, record in want.items():
        keys = ["config_hash", "oe_indices_sha256", "test_auroc", "test_aupr", "train_auroc"]
        for key in [*keys, "_scores"] if scores is None or job in scores else keys:
            assert got[job][key] == record[key], (job, key)


def array_ids(experiment: Path) -> list[str]:
    """The SLURM jobs submitted for this experiment (submitit's .submitit/<id>/ folders; array tasks are <id>_<i>)."""
    return sorted(p.name for p in (experiment / ".submitit").iterdir() if "_" not in p.name)


def controller_view(job_id: str, timeout: float = 60) -> str:
    """``scontrol show job``: the controller's own record (kept MinJobAge = 1 h after the job, accounting off), once
    no task is still pending, running or completing (a task's result is written before its process exits)."""
    t0 = time.monotonic()
    while True:
        view = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True).stdout
        busy = any(f"JobState={s}" in view for s in ("PENDING", "RUNNING", "COMPLETING", "REQUEUED"))
        if not busy or time.monotonic() - t0 > timeout:
            return view
        time.sleep(1)


def task_logs(experiment: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (experiment / ".submitit").rglob("*_log.*"))


def assert_polls_quiet(output: str) -> None:
    """(e) Accounting is off: no sacct error lines from submitit's status polls, at most one line saying so."""
    assert "Bypassing sacct" not in output and "status may be inaccurate" not in output, output[-3000:]
    assert sum("accounting" in line.lower() for line in output.splitlines()) <= 1, output[-3000:]


def wait_until(predicate, proc: subprocess.Popen, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert proc.poll() is None, f"the sweep ended before it could be cancelled:\n{proc.stdout.read()[-3000:]}"
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.2)


def cancel_mid_run(args: list[str], experiment: Path, cwd: Path, finished: int) -> tuple[str, set[str], set[str]]:
    """Run the sweep, ``scancel`` its array once ``finished`` jobs have their record and another job has written its
    last.ckpt; then the command's output, the jobs finished by then and the unfinished jobs that can resume."""
    from oe_ad.job.checkpoint import checksum_ok

    proc = _popen(["-m", *args], cwd)
    done = lambda: {str(p.parent.relative_to(experiment)) for p in experiment.rglob("result.json")}  # noqa: E731
    # a last.ckpt that passes its checksum (SIGTERM may come between writing a checkpoint and its checksum)
    resumable = lambda: {  # noqa: E731
        str(p.parent.relative_to(experiment)) for p in experiment.rglob("last.ckpt") if checksum_ok(p)[0]
    }
    wait_until(lambda: len(done()) >= finished and bool(resumable() - done()), proc)
    (array,) = array_ids(experiment)
    subprocess.run(["scancel", array], check=True)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output[-3000:]  # the sweep summary: some jobs failed
    finished_jobs = done()
    unfinished = {str(p.parent.relative_to(experiment)) for p in experiment.rglob("error.json")}
    assert finished_jobs and unfinished and not finished_jobs & unfinished
    errors = [line for line in output.splitlines() if line.startswith("error: SLURM task")]
    assert len(errors) == len(unfinished) and all("CANCELLED" in e and "re-run the same command" in e for e in errors)
    return output, finished_jobs, resumable() & unfinished


# -- a. one array, array_parallelism=2, the same records as launcher=local; f. the srun hint ---------------------
@pytest.mark.slow
def test_a_sweep_runs_as_one_array_and_records_what_the_local_launcher_records(
    slurm, local_ref, folder_root, oe_npy, out
):
    args = sweep(folder_root, oe_npy, out, "name=a", "launcher=slurm", "hydra.launcher.array_parallelism=2")
    proc = run_cli("-m", *args, *ON_THIS_NODE, cwd=out)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    want, local_output = local_ref
    assert_same_results(jobs(out / "a"), want)
    (array,) = array_ids(out / "a")
    view = controller_view(array)
    assert view.count("JobState=COMPLETED") == 4 and view.count(f"ArrayJobId={array} ") == 4
    assert "ArrayTaskThrottle=2" in view
    assert_polls_quiet(output)
    # f: on this machine srun is installed. The local launcher's jobs do not get Lightning's hint; the SLURM tasks
    # run under srun, where Lightning takes the SLURM environment (its requeue handler) and has no hint to give.
    assert shutil.which("srun") and SRUN_HINT not in local_output
    task_outputs = [p.read_text() for p in (out / "a" / ".submitit").glob("*_*/*_log.*")]
    assert not any(SRUN_HINT in text for text in task_outputs)
    assert sum("SLURM auto-requeueing enabled" in text for text in task_outputs) == 4  # Lightning's SLURM handlers


# -- b. scancel mid-run, then the same command: finished jobs skipped, interrupted ones resumed ------------------
@pytest.mark.slow
def test_b_scancelled_array_resumes_when_the_same_command_runs_again(slurm, local_ref, folder_root, oe_npy, out):
    args = [*sweep(folder_root, oe_npy, out, "name=b", "launcher=slurm", "hydra.launcher.array_parallelism=2")]
    args += ON_THIS_NODE
    output, finished, resumable = cancel_mid_run(args, out / "b", out, finished=2)
    assert_polls_quiet(output)
    first_arrays = array_ids(out / "b")
    again = run_cli("-m", *args, cwd=out)
    assert again.returncode == 0, again.stderr[-3000:]
    (second,) = set(array_ids(out / "b")) - set(first_arrays)
    logs = task_logs(out / "b")
    second_logs = "".join(p.read_text() for p in (out / "b" / ".submitit").glob(f"{second}_*/*_log.*"))
    for job in finished:
        assert f"skip: {out / 'b' / job} is finished" in second_logs, job
    for job in resumable:  # (an interrupted job that had not written last.ckpt yet starts again)
        assert f"resuming from {out / 'b' / job / 'last.ckpt'}" in second_logs, job
    assert "Traceback" not in logs
    assert_same_results(jobs(out / "b"), local_ref[0])


# -- c. a job that reaches its time limit is requeued and resumes from its checkpoint -----------------------------
@pytest.mark.slow
def test_c_job_at_its_time_limit_is_requeued_and_resumes(slurm, local_ref, folder_root, oe_npy, out):
    """SLURM checks time limits every 30 s, so with a 1-minute limit and ``signal_delay_s=5`` submitit's signal comes
    25 to 55 s into each run: the job is sized to train about 60 s on this machine (from the reference sweep's
    epoch time), so its first run is cut, and it may be cut more than once (``max_num_timeout=6``)."""
    per_epoch = statistics.median(r["time_per_epoch_s"] for r in local_ref[0].values())
    epochs = min(1500, max(60, math.ceil(60 / per_epoch)))
    job = [f"epochs={epochs}", f"milestones=[{epochs // 2}]", "normal_class=1", "seed=0"]
    slurm_args = sweep(folder_root, oe_npy, out, *job, "name=c", "launcher=slurm", *ON_THIS_NODE)
    slurm_args += ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=5"]
    slurm_args += ["hydra.launcher.max_num_timeout=6"]
    runs = [_popen(["-m", *slurm_args], out), _popen(["-m", *sweep(folder_root, oe_npy, out, *job, "name=c_ref")], out)]
    outputs = [p.communicate(timeout=900)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert_polls_quiet(outputs[0])
    (job_id,) = array_ids(out / "c")
    view = controller_view(job_id)
    restarts = int(view.split("Restarts=")[1].split()[0])
    assert restarts >= 1 and "JobState=COMPLETED" in view and "TimeLimit=00:01:00" in view, view
    (log,) = (out / "c" / ".submitit").glob("*/*_log.out")  # the task's stdout, over all its runs
    lines = log.read_text().splitlines()
    requeued = [line for line in lines if line.startswith("submitit INFO") and f"Requeued job {job_id}" in line]
    assert len(requeued) == restarts and any(
        line.startswith("submitit WARNING") and "timed-out" in line for line in lines
    )
    assert sum("resuming from" in line for line in lines) >= 1, lines[-50:]
    assert_same_results(jobs(out / "c"), jobs(out / "c_ref"))


# -- d. one job's data is broken: its one-line error, the others finish, the command exits non-zero ---------------
@pytest.mark.slow
def test_d_a_job_with_broken_data_fails_alone_with_its_one_line_error(slurm, folder_root, oe_npy, out, tmp_path):
    roots = tmp_path / "roots"  # each class's job reads its own copy of the data; class 1's has an undecodable file
    roots.mkdir()
    for k in (0, 2):
        (roots / str(k)).symlink_to(folder_root)
    (roots / "1").symlink_to(_undecodable_root(folder_root, tmp_path))
    args = [*tiny_overrides(folder_root, oe_npy, out), f"data.root={roots}/${{normal_class}}", "name=d"]
    args += ["method=hsc", "normal_class=0,1,2", "seed=0", "epochs=1", "milestones=[]", "launcher=slurm", *ON_THIS_NODE]
    proc = run_cli("-m", *args, cwd=out)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert sorted(r["normal_class"] for r in records(out / "d")) == [0, 2]
    (error_file,) = (out / "d").rglob("error.json")
    error = json.loads(error_file.read_text())
    assert "normal_class=1" in error_file.parent.name and "zz_broken.png" in error["error"] and error["kind"] == "error"
    assert f"{error_file.parent}: {error['error']}" in output  # the sweep summary's line, in the submitting command
    assert "1 failed" in output and "Traceback" not in output
    assert_polls_quiet(output)


# -- g. vectorised stacks as SLURM array tasks, one stack per task ----------------------------------------------
@pytest.mark.slow
def test_g_vectorised_stacks_run_as_array_tasks_with_the_vectorised_records(
    slurm, vectorised_ref, folder_root, oe_npy, out
):
    args = sweep(folder_root, oe_npy, out, "name=g", "launcher=vectorised_slurm", "hydra.launcher.max_models=2")
    proc = run_cli("-m", *args, "hydra.launcher.array_parallelism=2", *ON_THIS_NODE, cwd=out)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    want, vectorised_output = vectorised_ref
    assert_same_results(jobs(out / "g"), want)
    (array,) = array_ids(out / "g")
    view = controller_view(array)
    assert view.count("JobState=COMPLETED") == 2 and "ArrayTaskThrottle=2" in view  # 4 jobs, 2 stacks
    assert task_logs(out / "g").count("training 2 models as one stack") == 2
    assert_polls_quiet(output)
    assert SRUN_HINT not in vectorised_output + output


@pytest.mark.slow
def test_g_scancelled_stacks_resume_when_the_same_command_runs_again(slurm, vectorised_ref, folder_root, oe_npy, out):
    args = sweep(folder_root, oe_npy, out, "name=gb", "launcher=vectorised_slurm", "hydra.launcher.max_models=2")
    args += ["hydra.launcher.array_parallelism=1", *ON_THIS_NODE]  # one stack after the other
    output, finished, resumable = cancel_mid_run(args, out / "gb", out, finished=2)
    assert_polls_quiet(output)
    again = run_cli("-m", *args, cwd=out)
    assert again.returncode == 0, again.stderr[-3000:]
    logs = task_logs(out / "gb")
    for job in finished:
        assert f"skip: {out / 'gb' / job} is finished" in logs, job
    for job in resumable:
        assert f"resuming from {out / 'gb' / job / 'last.ckpt'}" in logs, job
    # The AUROCs are the uninterrupted ones. scores.csv is bit-identical for the finished jobs; a resumed job's may
    # differ in the last float32 digits: its stack is cut anew (members stopped at different epochs train apart).
    assert_same_results(jobs(out / "gb"), vectorised_ref[0], scores=finished)


# -- fast: the pieces that need no controller ---------------------------------------------------------------------
def test_slurm_script_refuses_in_one_line_where_it_cannot_run(tmp_path):
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is needed to run the script as another user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(SLURM_SH), "start"]
    else:
        command = ["bash", str(SLURM_SH), "start"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == CANNOT_RUN and proc.stderr == ""
    (line,) = proc.stdout.splitlines()
    assert line.startswith("slurm.sh: needs root")


def fake_slurm(tmp_path: Path, monkeypatch, squeue: str) -> None:
    """``scontrol`` and ``squeue`` stand-ins on PATH: accounting off, and ``squeue`` printing ``squeue``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 'AccountingStorageType   = accounting_storage/none'\n")
    (bin_dir / "squeue").write_text(f"#!/bin/sh\nprintf '{squeue}'\n")
    (bin_dir / "sacct").write_text("#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_with_accounting_off_task_states_come_from_squeue_and_it_is_said_once(tmp_path, monkeypatch, caplog):
    pytest.importorskip("submitit")
    from oe_ad.cli.slurm import GONE, ControllerWatcher

    fake_slurm(tmp_path, monkeypatch, "5_0|RUNNING|vm\\n5_1|CANCELLED|vm\\n")
    watcher = ControllerWatcher()
    with caplog.at_level("INFO", logger="oe_ad.cli.slurm"):
        states = {job: watcher.get_state(job, mode="force") for job in ("5_0", "5_1", "6")}
        watcher.update()
    assert states == {"5_0": "RUNNING", "5_1": "CANCELLED", "6": GONE}  # 6: no longer known to the controller
    assert watcher.is_done("5_1", mode="cache") and watcher.is_done("6", mode="cache")
    assert not watcher.is_done("5_0", mode="cache")
    assert [r.getMessage() for r in caplog.records] == ["SLURM accounting is off: the tasks' states come from squeue"]


def test_lightnings_srun_hint_is_hidden_outside_a_slurm_job_and_kept_inside_one(tmp_path, monkeypatch):
    import pytorch_lightning as pl

    from oe_ad.job.lightning import hide_srun_hint_outside_slurm

    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    for job_id, shown in ((None, False), ("123", True)):  # a shell or launcher=local; an sbatch script without srun
        if job_id is None:
            monkeypatch.delenv("SLURM_JOB_ID", raising=False)
        else:
            monkeypatch.setenv("SLURM_JOB_ID", job_id)
        monkeypatch.delenv("SLURM_NTASKS", raising=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hide_srun_hint_outside_slurm()
            pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
        assert any(SRUN_HINT in str(w.message) for w in caught) == shown

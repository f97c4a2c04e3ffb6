"""Sweeps on SLURM through submitit (``launcher=slurm``, ``launcher=vectorised_slurm``): one job array per sweep,
its tasks' states from the controller, and one line for every task that ended without a result.

submitit learns a task's state from ``sacct``. With accounting off (``AccountingStorageType=accounting_storage/none``,
common on small clusters) sacct fails: submitit logs three lines per status poll and, never learning that a task was
cancelled or killed, waits for its result forever. :class:`ControllerWatcher` asks ``squeue`` instead (the
controller keeps a finished job ``MinJobAge`` seconds, 300 by default) and says so once. :func:`wait_for` waits for
every task of an array at once; a task that ends without a result (``scancel``, its time limit without a requeue, a
node failure) becomes one line that names its state and its log, not a traceback.
"""

import logging
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import DictConfig, OmegaConf
from submitit.core.utils import FailedJobError, UncompletedJobError
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

from ..job.failure import Failure, report

log = logging.getLogger(__name__)
POLL_S = 60  # the longest wait between two state queries (submitit's default, 600 s, is for sacct on big clusters)
RESULT_GRACE_S = 15.0  # how long a task that ended by itself may take to show its result file (NFS)
ENDED_BY_ITSELF = ("COMPLETED", "FAILED")  # states whose task wrote its result (a value or an error) before exiting
GONE = "PURGED"  # the state of a task the controller no longer knows (finished more than MinJobAge ago)
RERUN = "re-run the same command to resume it (from its last.ckpt if it wrote one; finished jobs are skipped)"


def accounting_on() -> bool:
    """Whether the cluster keeps job accounting (sacct works); True when ``scontrol`` cannot tell."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return True
    return "accounting_storage/none" not in out


class ControllerWatcher(SlurmInfoWatcher):
    """submitit's watcher, asking ``squeue`` when accounting is off (sacct then fails on every poll)."""

    def __init__(self, delay_s: int = POLL_S) -> None:
        super().__init__(delay_s)
        self.accounting: bool | None = None  # asked once, at the first poll

    def update(self) -> None:
        if self.accounting is None:
            self.accounting = accounting_on()
            if not self.accounting:
                log.info("SLURM accounting is off: the tasks' states come from squeue")
        if self.accounting:
            return super().update()
        arrays = sorted({job_id.split("_")[0] for job_id in self._registered - self._finished})
        if not arrays:
            return
        self._num_calls += 1
        self._last_status_check = time.time()
        command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%N", f"--jobs={','.join(arrays)}"]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:  # something is wrong: say so, ask again at the next poll
            log.warning("squeue failed (%s); the tasks' states are unknown until the next poll", e)
            return
        # squeue fails with "Invalid job id" only when it knows none of the ids: then every task is gone
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
            log.warning("squeue failed: %s", (proc.stderr.strip() or f"exit {proc.returncode}").splitlines()[0])
            return
        info = self.read_info("JobID|State|NodeList\n" + proc.stdout)
        for job_id in self._registered - self._finished:
            self._info_dict[job_id] = info.get(job_id) or {"State": GONE}
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)


def executor(params: dict[str, Any]) -> submitit.AutoExecutor:
    """submitit's SLURM executor for a launcher's options (hydra-submitit-launcher's keys, mapped as it maps them)."""
    params = dict(params)
    folder = params.pop("submitit_folder")
    init = {"slurm_max_num_timeout": params.pop("max_num_timeout")} if "max_num_timeout" in params else {}
    ex = submitit.AutoExecutor(cluster="slurm", folder=folder, **init)
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    ex.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()})
    return ex


@dataclass
class Ended:
    """How an array task ended: its return value, or (``line``) why it gave none, in one line."""

    value: Any = None
    line: str | None = None
    kind: str = "interrupted"  # interrupted: no result (cancelled, time limit, node failure); crash: an exception

    @property
    def message(self) -> str:
        """The job's error line: for an interrupted task, with what re-running the command does."""
        return f"{self.line}: {RERUN}" if self.kind == "interrupted" else str(self.line)


def _ended(job: submitit.Job) -> Ended:
    try:
        return Ended(job.results()[0])
    except FailedJobError as e:  # the task raised: its last line (the exception), its log
        parts = str(e).split("-" * 22)  # submitit's message: a header, the trace between two rules, the logs
        trace = parts[1] if len(parts) > 2 else str(e)
        last = ([line.strip() for line in trace.splitlines() if line.strip()] or ["?"])[-1]
        return Ended(line=f"SLURM task {job.job_id} failed: {last} (log {job.paths.stderr})", kind="crash")
    except UncompletedJobError:
        return Ended(line=_no_result(job))


def _no_result(job: submitit.Job) -> str:
    return f"SLURM task {job.job_id} ended {job.state} without a result (log {job.paths.stderr})"


def _no_result_to_wait_for(job: submitit.Job, since: float) -> bool:
    """Whether an ended task without a result file will get none: at once for a task SLURM ended (cancelled, timed
    out, node failure), after :data:`RESULT_GRACE_S` for one that ended by itself (a network file system may show
    its result late)."""
    return job.state.split()[0] not in ENDED_BY_ITSELF or time.monotonic() - since > RESULT_GRACE_S


def wait_for(jobs: Sequence[submitit.Job]) -> list[Ended]:
    """Wait for every task (their states polled together, from the controller when accounting is off); per task,
    in order, how it ended."""
    watcher = ControllerWatcher()
    for job in jobs:
        if isinstance(job, SlurmJob):
            job.watcher = watcher  # this sweep's tasks only; submitit's own watcher is left as it is
    ended: dict[int, Ended] = {}
    no_result_since: dict[int, float] = {}
    while len(ended) < len(jobs):
        for i, job in enumerate(jobs):
            if i in ended:
                continue
            if job.paths.result_pickle.exists():
                ended[i] = _ended(job)
            elif job.done() and _no_result_to_wait_for(job, no_result_since.setdefault(i, time.monotonic())):
                ended[i] = Ended(line=_no_result(job))
        if len(ended) < len(jobs):
            time.sleep(1)
    return [ended[i] for i in range(len(jobs))]


def report_unfinished(job_dir: Path, end: Ended) -> None:
    """A job whose task ended without a result: its ``error:`` line here, and its ``error.json`` for the sweep's
    summary (which then counts it as failed and exits non-zero)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    report(Failure(end.message, RuntimeError(end.message), end.kind), job_dir)


def job_dir(hydra_context: Any, config: DictConfig, overrides: Sequence[str]) -> Path:
    """A sweep job's folder, composed as Hydra composes it."""
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    HydraConfig.instance().set_config(sweep_config)
    return Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)


def launch_jobs(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """``launcher=slurm``: hydra-submitit-launcher's launch (one array, a task per job, ``launcher`` itself the
    task), then :func:`wait_for` all tasks; a task without a result gets its job's ``error.json``."""
    config = launcher.config
    setup_globals()
    ex = executor(launcher.params)
    log.info(f"Submitit 'slurm' sweep output dir : {config.hydra.sweep.dir}")
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(config.hydra.sweep.mode), 8))
    params = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
    jobs = ex.map_array(launcher, *zip(*params))
    returns = []
    for overrides, end in zip(job_overrides, wait_for(jobs)):
        if end.line is None:
            returns.append(end.value)
            continue
        report_unfinished(job_dir(launcher.hydra_context, config, overrides), end)
        returns.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None))
    return returns

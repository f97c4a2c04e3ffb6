"""Hydra's callback of a sweep: a line per finished job (job i of N, finished / skipped / failed, rate, ETA) and, at
the end, the failures. Hydra instantiates it when any run starts, so it imports nothing heavy (no torch, no
Lightning): the job's first log line comes before their import.
"""

import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from tqdm import tqdm

from ..job.records import ERROR_FILE, RECORD_NAME


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the basic sweeper will launch: the product of the swept values per key (the command line
    overriding ``hydra.sweeper.params``); None for other sweepers."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    try:
        overrides = OverridesParser.create().parse_overrides([*params, *config.hydra.overrides.task])
    except Exception:
        return None
    counts = {
        o.get_key_element(): len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1 for o in overrides
    }
    return math.prod(counts.values())


class SweepSummary(Callback):
    """With a parallel launcher (joblib) each worker process counts its own jobs; the final line counts all."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.time() - 1
        self.total = sweep_size(config)
        self.counts = {"finished": 0, "skipped": 0, "failed": 0}

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not hasattr(self, "counts"):  # a single run (no multirun): nothing to count
            return
        status = self._status(Path(config.hydra.runtime.output_dir), job_return)
        self.counts[status] += 1
        done = sum(self.counts.values())
        meter = tqdm.format_meter(
            done, self.total, time.time() - self.start, unit="jobs", bar_format="[{elapsed}<{remaining}, {rate_fmt}]"
        )
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        print(f"sweep: job {done}/{self.total or '?'} {status} · {counts} {meter}", file=sys.stderr, flush=True)

    def _status(self, job_dir: Path, job_return: JobReturn) -> str:
        if job_return.status == JobStatus.FAILED or self._new(job_dir / ERROR_FILE):
            return "failed"
        return "finished" if self._new(job_dir / RECORD_NAME) else "skipped"

    def _new(self, path: Path) -> bool:
        return path.is_file() and path.stat().st_mtime >= getattr(self, "start", 0)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The counts, each failed job's line, and the exit code: 0 when nothing failed, 2 when every job failed
        on bad input (refused by the schema or an ``error:`` found later, as a single job exits 2), else 1 (a crash,
        or a SLURM task that ended without a result: ``kind`` ``interrupted``, ``oe_ad.cli.slurm``). A job
        the schema refused leaves no folder (only Hydra's ``.hydra/`` and log, and ``error.json``, were in it)."""
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = []
        for path in sorted(sweep_dir.rglob(ERROR_FILE)):
            if self._new(path):
                error = json.loads(path.read_text())
                failed.append((path.parent, error["error"], error.get("kind", "crash")))
        finished = sum(self._new(p) for p in sweep_dir.rglob(RECORD_NAME))
        total = getattr(self, "total", None)
        if total:
            skipped = max(0, total - finished - len(failed))
            print(
                f"sweep: {total} jobs: {finished} finished, {skipped} skipped, {len(failed)} failed",
                file=sys.stderr,
            )
        if not failed:
            return
        print(f"{len(failed)} job(s) failed:", file=sys.stderr)
        for job_dir, err, kind in failed:
            print(f"  {job_dir}: {err}", file=sys.stderr)
            if kind == "refused":
                remove_refused_job_dir(job_dir, sweep_dir)
        bad_input = all(kind in ("refused", "error") for _, _, kind in failed)  # not a crash, nor an interrupted task
        every_job = finished == 0 and (total is None or len(failed) >= total)
        sys.exit(2 if bad_input and every_job else 1)


def remove_refused_job_dir(job_dir: Path, top: Path) -> None:
    """Remove what a refused sweep job left (Hydra's ``.hydra/`` and log, its ``error.json``), and the folders
    above it that are then empty, up to ``top``; a folder holding anything else (an earlier run's) only loses
    ``error.json``."""
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
    left = [p for p in job_dir.iterdir() if p.name != ".hydra" and p.suffix != ".log"]
    if left:
        return
    shutil.rmtree(job_dir, ignore_errors=True)
    for parent in job_dir.parents:
        if parent == top or top not in parent.parents:
            break
        try:
            parent.rmdir()  # only if empty
        except OSError:
            break

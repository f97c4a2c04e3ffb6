"""The entrance of the Hydra commands (``oe-ad-run``, ``oe-ad-search``): the command line checked, Hydra's
composition errors as one line, each job's config validated once, failures through :mod:`oe_ad.job.failure`, a
sweep's progress and summary.

Hydra composes a job's config once. :class:`Entrance` (Hydra's callback, so nothing heavy is imported here)
validates a single job on the config Hydra is about to run, before its folder exists (a refused job writes
nothing); a sweep's jobs are validated by their task, and a refused job's folder is removed when the sweep ends.
Every error is one ``error:`` line; a single job exits 2.
"""

import json
import logging
import os
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException
from tqdm import tqdm

from ..config import composition_error, job_config
from ..config.schema import check_output_dir, validate_config
from ..errors import Interrupted, OEADError
from ..job.failure import describe, report
from ..job.records import ERROR_FILE, RECORD_NAME
from ..version import version_text

log = logging.getLogger("oe_ad")
# Overrides that would move records away from the experiment's skip-index (README, Sweeps).
MOVING_OVERRIDES = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir")


def quiet_third_party() -> None:
    """Drop per-run noise that says nothing about the job (deprecations inside Lightning, ads)."""
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )


# -- before Hydra: the command line alone ------------------------------------------------------------------------
def _split(line: str) -> tuple[str, str, str]:
    """(prefix, key, value) of ``+key=value`` / ``~key`` / ``key=value``."""
    prefix = line[: len(line) - len(line.lstrip("+~"))]
    key, _, value = line[len(prefix) :].partition("=")
    return prefix, key.strip(), value


def check_argv(argv: list[str]) -> None:
    """One-line errors for a value Hydra cannot parse (e.g. unquoted non-ASCII), a key given twice, and overrides
    that would move records away from their skip-index; no config is composed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser, seen = OverridesParser.create(), {}
    for line in (a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))):
        prefix, key, value = _split(line)
        try:
            parser.parse_overrides([line])
        except OverrideParseException as e:
            quoted = f"{prefix}{key}='{value}'"
            if not value.isascii():
                raise OEADError(
                    f"{line}: a value with non-ASCII characters must be quoted for Hydra: {quoted} "
                    f'(in a shell, quote it once more: "{quoted}")'
                ) from None
            why = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
            raise OEADError(f'{line}: Hydra cannot read this override ({why}); quote the value: "{quoted}"') from None
        if key in seen:
            raise OEADError(f"{key} given twice on the command line ('{seen[key]}' and '{line}')")
        seen[key] = line
        # Lightning relaunches DDP ranks > 0 with hydra.run.dir set to rank 0's folder: allowed there only
        if key in MOVING_OVERRIDES and os.environ.get("LOCAL_RANK", "0") == "0":
            raise OEADError(
                f"{key}= is not supported: outputs go to paths.output_dir=DIR and name=NAME "
                "(where their skip-index lives)"
            )


# -- Hydra's callback -----------------------------------------------------------------------------------------------
class Entrance(Callback):
    """A single job's config passes the schema before Hydra makes its folder, its normalised values written into the
    config the job receives; a sweep's output folder is checked first, each job ends with a progress line (i of N,
    finished / skipped / failed, rate, ETA), the sweep with its failures and exit code. With a parallel launcher
    (joblib) each worker process counts its own jobs; the final line counts all."""

    validated = False  # the single job this process runs passed the schema here: its task does not check again

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        cfg = job_config(config)
        try:
            validate_config(cfg)
        except (OEADError, OmegaConfBaseException) as e:
            exit_with(describe(e, refused=True).message)
        with read_write(config), open_dict(config):
            for key in cfg:
                config[key] = cfg[key]
        Entrance.validated = True

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_output_dir(job_config(config))
        except OEADError as e:
            exit_with(str(e))
        self.start, self.counts = time.time() - 1, {"finished": 0, "skipped": 0, "failed": 0}
        self.total = sweep_size(config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not hasattr(self, "counts"):  # a single run: nothing to count
            return
        job_dir = Path(config.hydra.runtime.output_dir)
        failed = job_return.status == JobStatus.FAILED or self._new(job_dir / ERROR_FILE)
        status = "failed" if failed else "finished" if self._new(job_dir / RECORD_NAME) else "skipped"
        self.counts[status] += 1
        done, elapsed = sum(self.counts.values()), time.time() - self.start
        meter = tqdm.format_meter(
            done, self.total, elapsed, unit="jobs", bar_format="[{elapsed}<{remaining}, {rate_fmt}]"
        )
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        print(f"sweep: job {done}/{self.total or '?'} {status} · {counts} {meter}", file=sys.stderr, flush=True)

    def _new(self, path: Path) -> bool:
        return path.is_file() and path.stat().st_mtime >= getattr(self, "start", 0)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The counts, each failed job's line, and the exit code: 0 when nothing failed, 2 when every job failed on
        bad input (``refused`` by the schema or an ``error`` found later, as a single job exits 2), else 1 (a crash,
        or a SLURM task ended without a result). A refused job leaves no folder (only Hydra's ``.hydra/`` and log,
        and ``error.json``, were in it)."""
        sweep_dir, total = Path(config.hydra.sweep.dir), getattr(self, "total", None)
        errors = [(p.parent, json.loads(p.read_text())) for p in sorted(sweep_dir.rglob(ERROR_FILE)) if self._new(p)]
        failed = [(job_dir, e["error"], e.get("kind", "crash")) for job_dir, e in errors]
        finished = sum(self._new(p) for p in sweep_dir.rglob(RECORD_NAME))
        if total:
            skipped = max(0, total - finished - len(failed))
            print(f"sweep: {total} jobs: {finished} finished, {skipped} skipped, {len(failed)} failed", file=sys.stderr)
        if not failed:
            return
        print(f"{len(failed)} job(s) failed:", file=sys.stderr)
        for job_dir, err, kind in failed:
            print(f"  {job_dir}: {err}", file=sys.stderr)
            if kind == "refused":
                remove_refused_job_dir(job_dir, sweep_dir)
        bad_input = all(kind in ("refused", "error") for _, _, kind in failed)
        sys.exit(2 if bad_input and finished == 0 and (total is None or len(failed) >= total) else 1)


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the basic sweeper launches (None for other sweepers)."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    from ..sweep import combinations

    try:
        return len(combinations(config.hydra.sweeper.get("params") or {}, list(config.hydra.overrides.task)))
    except Exception:
        return None


def remove_refused_job_dir(job_dir: Path, top: Path) -> None:
    """Remove what a refused sweep job left (Hydra's ``.hydra/`` and log, its ``error.json``), and the folders
    above it that are then empty, up to ``top``; a folder holding anything else only loses ``error.json``."""
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
    if [p for p in job_dir.iterdir() if p.name != ".hydra" and p.suffix != ".log"]:
        return
    shutil.rmtree(job_dir, ignore_errors=True)
    for parent in job_dir.parents:
        if parent == top or top not in parent.parents:
            break
        try:
            parent.rmdir()  # only if empty
        except OSError:
            break


def exit_with(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


# -- the task ------------------------------------------------------------------------------------------------------
def run_task(cfg: DictConfig, job_dir: Path, multirun: bool, work: Callable[[], Any], rerun: Callable[[], str]) -> Any:
    """A Hydra task's body: a sweep job's config passes the schema first (a single job's has, in
    :class:`Entrance`), then ``work()``; a failure is its one line (a sweep job's also in its
    ``error.json``; a single job exits 2, a crash raises); on SIGTERM, ``rerun()`` says what running the same
    command again does."""
    validated, Entrance.validated = Entrance.validated and not multirun, False
    stage = "refused"
    try:
        if not validated:
            validate_config(cfg)
        stage = "run"
        if multirun:  # a job run again forgets how it failed last time (the sweep's summary counts error.json files)
            (job_dir / ERROR_FILE).unlink(missing_ok=True)
        return work()
    except Interrupted as e:
        e.rerun = rerun()
        raise
    except Exception as e:
        failure = describe(e, refused=stage == "refused")
        if failure.kind == "crash":
            if not multirun:
                raise
            log.exception("job failed")
        report(failure, job_dir if multirun else None)
        if not multirun:
            sys.exit(2)
    return None


_interrupted = False


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM stops the job at once as :class:`Interrupted` (Lightning, which handles SIGTERM itself during
    ``fit``, calls this after its own handler; unhandled, its exit code would be 0)."""
    global _interrupted
    if _interrupted:  # a second SIGTERM while the first unwinds
        return
    _interrupted = True
    raise Interrupted(signal.Signals(signum).name)


def cli(task: Callable[[], object]) -> None:
    """Answer ``--version`` (oe_ad's, not Hydra's); refuse a bad command line in one line; run the Hydra ``task``
    with Hydra's composition errors raised to us (``HYDRA_FULL_ERROR``) and turned into one line, exit 2; SIGTERM
    ends it with one line, exit 143."""
    global _interrupted
    argv = sys.argv[1:]
    if "--version" in argv:
        print(version_text())
        sys.exit(0)
    try:
        check_argv(argv)
    except OEADError as e:
        exit_with(str(e))
    _interrupted, full_error = False, os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        task()
    except Interrupted as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except (HydraException, OmegaConfBaseException, OEADError) as e:
        exit_with(str(e) if isinstance(e, OEADError) else composition_error(e))
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.environ.pop("HYDRA_FULL_ERROR") if full_error is None else os.environ.update(HYDRA_FULL_ERROR=full_error)

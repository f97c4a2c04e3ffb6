"""Hydra entry point: ``python -m oe_ad.run method=bce oe_size=256 [-m]``.

Without ``-m`` one job runs (normal_class=0, seed=0 by default); with ``-m`` the sweep in
``hydra.sweeper.params`` runs, narrowed by the command line (``normal_class=3 seed=0,1``).
"""

import copy
import hashlib
import logging
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from .config import CONF_DIR, GROUPS
from .config.schema import check_command_line, check_output_dir, validate_config
from .errors import Interrupted, OEADError
from .job.records import ERROR_FILE, NON_EFFECTIVE_KEYS, write_json_atomic
from .version import version_text

log = logging.getLogger("oe_ad")


def _names_the_folder(line: str, exclude: list[str]) -> bool:
    """Whether an override goes into the job folder's name: not if the config hash leaves its key out
    (``checkpoint.*``, ``paths.*``, ``threads``, ...), nor if it is in ``exclude`` (Hydra's exclude_keys)."""
    key = line.lstrip("+~").partition("=")[0]
    dropped = (*NON_EFFECTIVE_KEYS, *exclude)
    return not any(key == k or key.startswith(f"{k}.") for k in dropped)


def job_dirname(overrides: str | list, exclude: list | None = None) -> str:
    """A job folder name from its overrides (Hydra's ``override_dirname`` format: sorted ``k=v`` joined by
    commas), without the keys the config hash ignores; one path level, not too long for a file system."""
    if not isinstance(overrides, str):
        lines = sorted(str(o) for o in overrides if _names_the_folder(str(o), [str(k) for k in exclude or []]))
        overrides = ",".join(lines)
    name = overrides.replace("/", "_") or "defaults"
    if len(name) > 180:
        name = f"{name[:160]}-{hashlib.sha1(name.encode()).hexdigest()[:12]}"
    return name


def cpu_share(n_jobs: int) -> int:
    """Torch threads per job when ``n_jobs`` run at once (joblib's n_jobs: -1 = one per core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
    return max(1, cores // parallel)


OmegaConf.register_new_resolver("oe_ad.job_dirname", job_dirname, replace=True)
OmegaConf.register_new_resolver("oe_ad.cpu_share", cpu_share, replace=True)


def quiet_third_party() -> None:
    """Drop per-run noise that says nothing about the job (deprecations inside Lightning, ads)."""
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )


def user_config_dirs(argv: list[str], searchpath: bool = True) -> list[Path]:
    """The config folders a command line adds to the package's: ``--config-dir``/``-cd`` and (``searchpath``)
    file paths in ``hydra.searchpath=[...]`` (``pkg://`` entries name packages, not folders, and are left out)."""
    dirs = []
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif arg.startswith("--config-dir="):
            dirs.append(arg.partition("=")[2])
        elif searchpath and arg.lstrip("+").startswith("hydra.searchpath="):
            for entry in (e.strip() for e in arg.partition("=")[2].strip("[]").split(",")):
                if entry.startswith("file://") or (entry and "://" not in entry):
                    dirs.append(entry.removeprefix("file://"))
    return [Path(d) for d in dirs]


def check_group_choices(argv: list[str], conf_dirs: list[Path] | None = None) -> None:
    """Fail fast, in one line, on ``method=nope`` (Hydra's own message spans a screen). The options are
    the package's configs plus those of any config folder the command line adds."""
    dirs = [CONF_DIR, *user_config_dirs(argv)] if conf_dirs is None else conf_dirs
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or value in ("null", ""):
            continue
        options = sorted({p.stem for d in dirs for p in (d / key).glob("*.yaml")})
        for choice in value.split(","):
            if choice not in options:
                raise OEADError(f"unknown {key} '{choice}' (choose from: {', '.join(options)})")


def one_line(e: BaseException) -> str:
    """The first line of an exception's message (Hydra's and OmegaConf's span several)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else e.__class__.__name__


def missing_value(e: MissingMandatoryValue) -> str:
    """The line for a value left ``???`` (as the schema words it for the keys it knows)."""
    return f"{e.full_key} is not set: give it on the command line"


def instantiation_error(e: InstantiationException) -> str:
    """``trainer: MisconfigurationException: No supported gpu backend found!`` from Hydra's screenful."""
    key = re.search(r"full_key: (\S+)", str(e))
    cause = e.__cause__
    if isinstance(cause, OEADError):
        return str(cause)
    what = f"{cause.__class__.__name__}: {one_line(cause)}" if cause else one_line(e)
    return f"{key.group(1) if key else 'config'}: {what}"


def _fail(message: str, job_dir: Path, multirun: bool, kind: str) -> None:
    """One ``error:`` line; a single job exits 2, a sweep job records ``error.json`` (``kind``: ``refused`` by the
    schema before anything ran, ``error`` found later, ``crash``) for the summary and the sweep goes on."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    if multirun:
        from .job.loop import is_rank_zero

        if is_rank_zero():
            write_json_atomic(job_dir / ERROR_FILE, {"error": message, "kind": kind})
        return
    sys.exit(2)


def run_task(
    cfg: DictConfig, job_dir: Path, multirun: bool, work: Callable[[], float | None], rerun: Callable[[], str]
) -> float | None:
    """A Hydra task's body: the schema first (before torch and Lightning are imported), then ``work``; every
    failure is one line (``_fail``); on SIGTERM, ``rerun()`` says what running the same command again does."""
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
    try:
        validate_config(cfg)
    except OEADError as e:
        return _fail(str(e), job_dir, multirun, "refused")
    except MissingMandatoryValue as e:
        return _fail(missing_value(e), job_dir, multirun, "refused")
    except OmegaConfBaseException as e:
        return _fail(f"bad config: {one_line(e)}", job_dir, multirun, "refused")
    try:
        return work()
    except Interrupted as e:
        e.rerun = rerun()
        raise
    except OEADError as e:
        _fail(str(e), job_dir, multirun, "error")
    except MissingMandatoryValue as e:
        _fail(missing_value(e), job_dir, multirun, "error")
    except InstantiationException as e:
        _fail(instantiation_error(e), job_dir, multirun, "error")
    except OmegaConfBaseException as e:
        _fail(f"bad config: {one_line(e)}", job_dir, multirun, "error")
    except Exception as e:
        if not multirun:
            raise
        log.exception("job failed")
        _fail(f"{e.__class__.__name__}: {e}", job_dir, multirun, "crash")
    return None


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _task(cfg: DictConfig) -> float | None:
    quiet_third_party()
    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    loading = "" if "pytorch_lightning" in sys.modules else " (loading torch and Lightning)"
    log.info("job %s%s", job_dir, loading)  # the first word, before seconds of imports

    def work() -> float | None:
        from .job.lightning import run_job  # heavy imports once the config has passed the schema

        record = run_job(cfg, job_dir, validated=True)  # run_task has just passed it through the schema
        return None if record is None else record["test_auroc"]

    def rerun() -> str:
        resume = "resume from last.ckpt" if (job_dir / "last.ckpt").is_file() else "start it again"
        return f"{resume}{' (finished jobs are skipped)' if multirun else ''}"

    return run_task(cfg, job_dir, multirun, work, rerun)


# -- before Hydra: the command line and, for a single job, its whole config -----------------------------------
_interrupted = False


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM stops the job at once as :class:`Interrupted` (Lightning, which handles SIGTERM itself during
    ``fit``, calls this after its own handler; unhandled, its exit code would be 0)."""
    global _interrupted
    if _interrupted:  # a second SIGTERM while the first unwinds
        return
    _interrupted = True
    raise Interrupted(signal.Signals(signum).name)


MULTIRUN_FLAGS = ("-m", "--multirun")


def _overrides(argv: list[str]) -> list[str] | None:
    """The ``key=value`` arguments, or None if the command line has a Hydra flag other than ``-m`` and
    ``--config-dir`` (``--help``, ``--cfg``, ``-cn``, ...: left to Hydra alone)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--config-dir", "-cd"):
            skip = True
        elif arg.startswith("--config-dir="):
            continue
        elif arg.startswith("-"):
            if arg not in MULTIRUN_FLAGS:
                return None
        else:
            out.append(arg)
    return out


def _with_config_dirs(overrides: list[str], config_dirs: list[Path]) -> list[str]:
    """The overrides with the ``--config-dir`` folders added to ``hydra.searchpath`` (as Hydra's flag does)."""
    if not config_dirs:
        return overrides
    entries, out = [f"file://{d.resolve()}" for d in config_dirs], []
    for line in overrides:
        key, _, value = line.lstrip("+").partition("=")
        if key == "hydra.searchpath":
            entries = [e.strip() for e in value.strip("[]").split(",") if e.strip()] + entries
        else:
            out.append(line)
    return [*out, f"hydra.searchpath=[{','.join(entries)}]"]


def compose_job(overrides: list[str], config_name: str, config_dirs: list[Path]) -> DictConfig:
    """The job config Hydra will compose from these overrides and ``--config-dir`` folders (resolved, without
    the ``hydra`` node)."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            full = compose(config_name, overrides=_with_config_dirs(overrides, config_dirs), return_hydra_config=True)
            HydraConfig.instance().set_config(full)  # for ${hydra:...} in the job's keys (threads)
            cfg = copy.deepcopy(full)
            with read_write(cfg), open_dict(cfg):
                del cfg["hydra"]
            OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as e:
        message = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or e.__class__.__name__
        raise OEADError(message) from None
    return cfg


def check_before_hydra(argv: list[str], config_name: str) -> None:
    """A single job's config passes the schema before Hydra creates its folder (a refused job writes nothing);
    for a sweep, whose jobs are composed one by one later, the output folder is checked (Hydra creates it first)."""
    overrides = _overrides(argv)
    if overrides is None:
        return
    config_dirs = user_config_dirs(argv, searchpath=False)  # a hydra.searchpath override is among the overrides
    if any(flag in argv for flag in MULTIRUN_FLAGS):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(overrides)
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        try:  # without the swept values a config may not compose (method.gamma=1 with method=bce,focal)
            cfg = compose_job(fixed, config_name, config_dirs)
        except OEADError:
            return
        check_output_dir(cfg)
        return
    validate_config(compose_job(overrides, config_name, config_dirs))


def cli(task: Callable[[], object], config_name: str = "config") -> None:
    """Answer ``--version`` (oe_ad's, not Hydra's); reject unknown config-group options, unknown or repeated keys
    in one line, and a single job's config that the schema refuses, then hand the command line to a Hydra task;
    SIGTERM ends it with one line, exit 143."""
    argv = sys.argv[1:]
    if "--version" in argv:
        print(version_text())
        sys.exit(0)
    try:
        check_group_choices(argv)
        check_command_line(argv, CONF_DIR, config_name, GROUPS, user_config_dirs(argv))
        check_before_hydra(argv, config_name)
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    global _interrupted
    _interrupted = False
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        task()
    except Interrupted as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    cli(_task)


if __name__ == "__main__":
    main()

"""Hydra entry point: ``python -m oe_ad.run method=bce oe_size=256 [-m]``.

Without ``-m`` one job runs (normal_class=0, seed=0 by default); with ``-m`` the sweep in
``hydra.sweeper.params`` runs, narrowed by the command line (``normal_class=3 seed=0,1``).
"""

import hashlib
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from .config import CONF_DIR, GROUPS
from .errors import OEADError
from .results import ERROR_FILE, NON_EFFECTIVE_KEYS, write_json_atomic
from .schema import check_command_line
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


def user_config_dirs(argv: list[str]) -> list[Path]:
    """The config folders a command line adds to the package's: ``--config-dir``/``-cd`` and file paths
    in ``hydra.searchpath=[...]`` (``pkg://`` entries name packages, not folders, and are left out)."""
    dirs = []
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif arg.startswith("--config-dir="):
            dirs.append(arg.partition("=")[2])
        elif arg.lstrip("+").startswith("hydra.searchpath="):
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


def _fail(message: str, job_dir: Path, multirun: bool) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    if multirun:  # record the failure for the end-of-sweep summary and let the other jobs run
        from .train import is_rank_zero

        if is_rank_zero():
            write_json_atomic(job_dir / ERROR_FILE, {"error": message})
        return
    sys.exit(2)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _task(cfg: DictConfig) -> float | None:
    quiet_third_party()
    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
    loading = "" if "pytorch_lightning" in sys.modules else " (loading torch and Lightning)"
    log.info("job %s%s", job_dir, loading)  # the first word, before seconds of imports
    try:
        from .lightning_fitter import run_job  # heavy imports after Hydra has parsed the command line

        record = run_job(cfg, job_dir)
        return None if record is None else record["test_auroc"]
    except OEADError as e:
        _fail(str(e), job_dir, multirun)
    except MissingMandatoryValue as e:
        _fail(f"missing value for {e.full_key}: set it on the command line ({e.full_key}=...)", job_dir, multirun)
    except OmegaConfBaseException as e:
        _fail(f"bad config: {str(e).splitlines()[0]}", job_dir, multirun)
    except Exception as e:
        if not multirun:
            raise
        log.exception("job failed")
        _fail(f"{e.__class__.__name__}: {e}", job_dir, multirun)
    return None


def cli(task: Callable[[], object], config_name: str = "config") -> None:
    """Answer ``--version`` (oe_ad's, not Hydra's); reject unknown config-group options, unknown or repeated keys
    in one line; then hand the command line to a Hydra task."""
    if "--version" in sys.argv[1:]:
        print(version_text())
        sys.exit(0)
    try:
        check_group_choices(sys.argv[1:])
        check_command_line(sys.argv[1:], CONF_DIR, config_name, GROUPS)
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    task()


def main() -> None:
    cli(_task)


if __name__ == "__main__":
    main()

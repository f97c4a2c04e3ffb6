"""The entrance of the Hydra commands (``oe-ad-run``, ``oe-ad-search``): the command line checked, Hydra's
composition errors as one line, each job's config validated once, failures through :mod:`oe_ad.job.failure`.

Hydra composes a job's config once. A single job is validated by :class:`ValidateFirst` (a Hydra callback) on the
config Hydra is about to run, before its folder exists, so a refused job writes nothing; a sweep's jobs are
validated by their task, and a refused job's folder is removed at the end of the sweep
(``cli.sweep_summary``). Every error is one ``error:`` line; a single job exits 2.
"""

import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from ..config import composition_error, job_config
from ..config.schema import check_output_dir, validate_config
from ..errors import Interrupted, OEADError
from ..job.failure import describe, report
from ..version import version_text

log = logging.getLogger("oe_ad")
MULTIRUN_FLAGS = ("-m", "--multirun")
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


# -- Hydra's callback: a single job validated before its folder is made ------------------------------------------
class ValidateFirst(Callback):
    """``on_run_start``: a single job's config passes the schema before Hydra makes its folder (a refused job writes
    nothing), its normalised values written into the config the job receives. ``on_multirun_start``: the output
    folder of a sweep can be written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        cfg = job_config(config)
        try:
            validate_config(cfg)
        except (OEADError, OmegaConfBaseException) as e:
            exit_with(describe(e, refused=True).message)
        with read_write(config), open_dict(config):
            for key in cfg:
                config[key] = cfg[key]
        ValidateFirst.validated = True  # the task runs the job without validating it again

    validated = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_output_dir(job_config(config))
        except OEADError as e:
            exit_with(str(e))


def exit_with(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


# -- the task ------------------------------------------------------------------------------------------------------
def run_task(cfg: DictConfig, job_dir: Path, multirun: bool, work: Callable[[], Any], rerun: Callable[[], str]) -> Any:
    """A Hydra task's body: a sweep job's config passes the schema first (a single job's has, in
    :class:`ValidateFirst`), then ``work()``; a failure is its one line (a sweep job's also in its
    ``error.json``; a single job exits 2, a crash raises); on SIGTERM, ``rerun()`` says what running the same
    command again does."""
    validated, ValidateFirst.validated = ValidateFirst.validated and not multirun, False
    stage = "refused"
    try:
        if not validated:
            validate_config(cfg)
        stage = "run"
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

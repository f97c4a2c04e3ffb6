"""The one failure path: any exception of a job -> its one-line message and kind (:func:`describe`), then the
``error:`` line and the job's ``error.json`` (:func:`report`). Every launcher, the search and the Python entry use
it, so a failed job reads the same wherever it ran. Torch-free: a refused job fails before torch is imported.
"""

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.errors import InstantiationException
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from ..errors import OEADError
from .records import ERROR_FILE, write_json_atomic


@dataclass(frozen=True)
class Failure:
    """A job that ended in an error: its one-line message (the ``error:`` line), the exception and its kind:
    ``refused`` by the schema before anything ran, ``error`` (a one-line error found later) or ``crash``."""

    message: str
    error: BaseException
    kind: str = "error"


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else e.__class__.__name__


def describe(e: BaseException, refused: bool = False) -> Failure:
    """The failure an exception stands for (``refused``: raised while the config was checked)."""
    kind = "refused" if refused else "error"
    if isinstance(e, OEADError):
        return Failure(first_line(e), e, kind)
    if isinstance(e, MissingMandatoryValue):
        return Failure(f"{e.full_key} is not set: give it on the command line", e, kind)
    if isinstance(e, InstantiationException):  # Hydra's screenful -> "trainer: MisconfigurationException: ..."
        cause = e.__cause__
        if isinstance(cause, OEADError):
            return Failure(first_line(cause), cause, kind)
        key = re.search(r"full_key: (\S+)", str(e))
        what = f"{cause.__class__.__name__}: {first_line(cause)}" if cause else first_line(e)
        return Failure(f"{key.group(1) if key else 'config'}: {what}", e, kind)
    if isinstance(e, OmegaConfBaseException):
        return Failure(f"bad config: {first_line(e)}", e, kind)
    return Failure(f"{e.__class__.__name__}: {first_line(e) if str(e) else ''}", e, "crash")


def report(failure: Failure, job_dir: Path | None = None) -> None:
    """Print the failure's ``error:`` line; with a job folder, also write its ``error.json`` (what the sweep
    summary lists) from the first process of a multi-device job only."""
    print(f"error: {failure.message}", file=sys.stderr, flush=True)
    if job_dir is not None and rank() == 0:
        write_json_atomic(Path(job_dir) / ERROR_FILE, {"error": failure.message, "kind": failure.kind})


def rank() -> int:
    """This process's rank in a multi-device (DDP) job; 0 before Lightning is loaded (nothing is spawned yet)."""
    if "pytorch_lightning" not in sys.modules:
        return 0
    from pytorch_lightning.utilities import rank_zero_only

    return rank_zero_only.rank

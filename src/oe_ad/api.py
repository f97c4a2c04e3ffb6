"""Train from Python (docs/research.md): :func:`fit` runs one job, :func:`fit_all` a sweep, through the same job
loop as ``oe-ad-run``: the same composition, validation, lock, skip, resume and record, in the same job folder. So
a job trained here and the same job from the command line share one folder and one record.
"""

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import OEADError


@dataclass
class Fitted:
    """A finished job: its ``record`` (``result.json``), its folder and, loaded on first use, its ``model``."""

    record: dict[str, Any]
    dir: Path

    @cached_property
    def model(self):  # -> oe_ad.inference.Model
        """The trained model (``oe_ad.inference.load_model`` of the job's ``model.pt``)."""
        from .inference import load_model

        return load_model(self.dir)

    def score(self, images):  # uint8 (N, 3, H, W) -> scores
        """Anomaly scores of a uint8 (N, 3, H, W) batch, larger = more anomalous (``Model.score``)."""
        return self.model.score(images)


def overrides_of(args: tuple[str, ...], keys: dict[str, Any]) -> list[str]:
    """``key=value`` overrides: ``args`` as they are, then ``keys`` (``method="hsc"``, ``milestones=[6, 9]``)."""

    def value(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(value(x) for x in v) + "]"
        return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)

    return [*args, *(f"{k}={value(v)}" for k, v in keys.items())]


def fit(*overrides: str, config_dir: str | os.PathLike | None = None, **keys: Any) -> Fitted:
    """Run (or reuse, or resume) one job, as ``oe-ad-run OVERRIDES`` would, and return it finished.

    ``overrides``: Hydra's ``key=value`` words (``"data.root=data/my"``); ``keys``: the same as keywords
    (``method="hsc", data="folder", oe_size=16``); ``config_dir``: a config folder of your own (``--config-dir``).
    Any failure raises :class:`~oe_ad.errors.OEADError` with the command line's one-line message.
    """
    from .cli.entrance import check_argv
    from .config import compose, job_config
    from .config.schema import validate_config
    from .job.failure import describe
    from .job.lightning import LightningFitter
    from .job.loop import BUSY, Failure, JobSpec, run_jobs

    try:
        check_argv(words := overrides_of(overrides, keys))  # a key given twice, a value Hydra cannot read
        full = compose(words, "config", [config_dir] if config_dir else [])
        job_dir = Path(str(full.hydra.run.dir))
        cfg = validate_config(job_config(full))
    except Exception as e:
        raise OEADError(describe(e, refused=True).message) from e
    (result,) = run_jobs([JobSpec(cfg, job_dir, validated=True)], LightningFitter())
    if isinstance(result, Failure):
        raise OEADError(result.message) from result.error
    if result == BUSY:
        raise OEADError(f"{job_dir} is running elsewhere (another process holds its lock): try again when it ends")
    return Fitted(result, job_dir)


def fit_all(*overrides: str, config_dir: str | os.PathLike | None = None, **keys: Any) -> list[Fitted]:
    """Every job of the sweep ``oe-ad-run -m OVERRIDES`` would run (``seed="0,1,2"`` sweeps), one after another;
    stops at the first failure (:class:`~oe_ad.errors.OEADError`)."""
    from .sweep import expand

    dirs = [Path(config_dir)] if config_dir else []
    return [fit(*job, config_dir=config_dir) for job in expand(overrides_of(overrides, keys), "config", dirs)]

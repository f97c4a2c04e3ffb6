"""Lightning loggers built from ``logger._target_``, and the one place that decides W&B's mode.

A logger factory is called as ``factory(save_dir=job_dir, run=JobRun, **options from the YAML)``; ``run``
names the job's run (the CSV and TensorBoard loggers ignore it).
"""

import logging
import netrc
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from ..errors import OEADError

if TYPE_CHECKING:  # Lightning is imported where a logger is built, not by `report` (which only uploads)
    import pytorch_lightning as pl

log = logging.getLogger("oe_ad.loggers")


@dataclass
class JobRun:
    """What identifies one job's run: W&B id (stable across resumes), display name, group, tags, config."""

    id: str
    name: str
    group: str
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def wandb_credentials_available() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str | None = None) -> tuple[str, bool]:
    """(mode, chosen): the requested mode, else ``WANDB_MODE``, else online with an API key and offline
    without; ``chosen`` says the mode was picked here for lack of a key (worth telling the user)."""
    if os.environ.get("WANDB_MODE") == "":  # set but empty counts as unset (wandb itself would reject it)
        del os.environ["WANDB_MODE"]
    mode = requested or os.environ.get("WANDB_MODE")
    if mode:
        return mode, False
    return ("online", False) if wandb_credentials_available() else ("offline", True)


def one_line(e: BaseException) -> str:
    return f"{e.__class__.__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def build_logger(cfg: DictConfig | None, save_dir: Path, run: JobRun) -> Any:
    """The Lightning logger of ``cfg.logger`` (None -> False: no logger)."""
    if not cfg:
        return False
    if "_target_" not in cfg:
        raise OEADError(
            "logger: needs a _target_ (oe_ad.loggers.wandb_logger, oe_ad.loggers.csv_logger or "
            "oe_ad.loggers.tensorboard_logger)"
        )
    return instantiate(cfg, _partial_=True)(save_dir=Path(save_dir), run=run)


def csv_logger(save_dir: Path, run: JobRun | None = None) -> Any:
    """``save_dir/csv/metrics.csv`` and ``hparams.yaml``."""
    from pytorch_lightning.loggers import CSVLogger

    return CSVLogger(save_dir=str(save_dir), name="csv", version="")


def tensorboard_logger(save_dir: Path, run: JobRun | None = None) -> Any:
    """``save_dir/tensorboard/events.out.tfevents.*`` (and ``hparams.yaml``): the scalars the CSV logger gets;
    ``tensorboard --logdir runs/<name>`` shows every job of an experiment, each under its folder's path."""
    from pytorch_lightning.loggers import TensorBoardLogger

    # default_hp_metric=False: no placeholder `hp_metric` scalar; the hyperparameters go to hparams.yaml
    return TensorBoardLogger(save_dir=str(save_dir), name="tensorboard", version="", default_hp_metric=False)


def wandb_logger(
    save_dir: Path,
    run: JobRun,
    project: str = "oe_ad",
    entity: str | None = None,
    job_type: str | None = None,
    mode: str | None = None,
    init_timeout: float = 30,
) -> Any:
    """A WandbLogger whose run is started now, inside a guard: W&B unreachable or misconfigured costs one
    warning line and the job trains without a logger (Lightning would start the run lazily, mid-fit)."""
    from pytorch_lightning.loggers import WandbLogger
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank != 0:  # extra DDP processes log nothing
        return WandbLogger(project=project, save_dir=str(save_dir))
    os.environ.setdefault("WANDB_SILENT", "true")  # W&B's own chatter would drown the job's log
    try:
        experiment = _start_run(save_dir, run, project, entity, job_type, mode, init_timeout)
    except Exception as e:  # any failure of a view must not cost the job
        log.warning("W&B unavailable, training without a logger (%s)", one_line(e))
        finish_wandb()
        return False
    return WandbLogger(experiment=experiment, project=project, save_dir=str(save_dir))


def _start_run(save_dir, run: JobRun, project, entity, job_type, mode, init_timeout):
    import wandb

    mode, chosen = wandb_mode(mode)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    experiment = wandb.init(
        project=project,
        entity=entity,
        id=run.id,
        resume="allow",  # a resumed or re-run job continues its own run
        group=run.group,
        name=run.name,
        tags=run.tags,
        job_type=job_type,
        config=run.config,
        dir=str(save_dir),
        mode=mode,
        settings=wandb.Settings(init_timeout=float(init_timeout), silent=True),
    )
    # Lightning's default x-axis (what WandbLogger does when it starts the run itself).
    experiment.define_metric("trainer/global_step")
    experiment.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    announce(experiment, mode, chosen)
    return experiment


def announce(experiment: Any, mode: str, chosen: bool) -> None:
    """One line: the run's URL online, its folder offline."""
    if mode != "offline":
        log.info("W&B: run %s", experiment.url)
        return
    folder = Path(experiment.dir).parent
    if chosen:
        log.warning(
            "W&B: no API key configured, logging offline to %s (sync later with `wandb sync %s`)", folder, folder
        )
    else:
        log.info("W&B: offline run in %s (upload with `wandb sync %s`)", folder, folder)


def wandb_experiment(logger: Any) -> Any:
    """The wandb run behind a Lightning logger, or None (no logger, CSV, W&B unavailable)."""
    from pytorch_lightning.loggers import WandbLogger
    from pytorch_lightning.utilities import rank_zero_only

    return logger.experiment if isinstance(logger, WandbLogger) and rank_zero_only.rank == 0 else None


def logger_callbacks(logger: Any) -> "list[pl.Callback]":
    """Callbacks that feed a logger: the learning rate per epoch (LearningRateMonitor needs a logger)."""
    if not logger:
        return []
    from pytorch_lightning.callbacks import LearningRateMonitor

    return [LearningRateMonitor(logging_interval="epoch")]


def finish_logger(logger: Any) -> None:
    """Close a logger built outside a Lightning ``Trainer`` (a vectorised member's): its files flushed and
    closed (CSV, TensorBoard), its W&B run finished. A failure here is a warning."""
    try:
        if logger:
            logger.finalize("success")
    except Exception as e:
        log.warning("logger: could not close it (%s)", one_line(e))
    finish_wandb()


def finish_wandb() -> None:
    """End the active W&B run, so the next job of a sweep starts its own run (a failure here is a warning)."""
    wandb = sys.modules.get("wandb")
    if wandb is None or wandb.run is None:
        return
    try:
        wandb.finish()
    except Exception as e:
        log.warning("W&B: could not finish the run (%s)", one_line(e))

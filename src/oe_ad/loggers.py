"""Experiment loggers. W&B is a view, not the store: it must never stop a job from training or recording."""

import logging
import netrc
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def wandb_credentials_available() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def build_logger(cfg: DictConfig | None, output_dir: Path, group: str, run_name: str):
    """A Lightning logger from ``cfg.logger`` (None -> no logger)."""
    if not cfg:
        return False
    kind = cfg.get("kind")
    if kind == "csv":
        from pytorch_lightning.loggers import CSVLogger

        return CSVLogger(save_dir=str(output_dir), name="csv", version="")
    if kind == "wandb":
        return _wandb_logger(cfg, output_dir, group, run_name)
    raise ValueError(f"logger.kind={kind}: must be 'wandb' or 'csv'")


def _wandb_logger(cfg: DictConfig, output_dir: Path, group: str, run_name: str):
    """A WandbLogger whose run is started now, inside a guard: W&B unreachable or misconfigured costs one
    warning line and the job trains without a logger (Lightning would start the run lazily, mid-fit)."""
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank != 0:  # extra DDP processes log nothing
        from pytorch_lightning.loggers import WandbLogger

        return WandbLogger(project=cfg.project, save_dir=str(output_dir))
    os.environ.setdefault("WANDB_SILENT", "true")  # W&B's own chatter would drown the job's log
    try:
        return _start_wandb(cfg, output_dir, group, run_name)
    except Exception as e:  # any failure of a view must not cost the job
        log.warning("W&B unavailable, training without a logger (%s)", _one_line(e))
        finish_wandb()
        return False


def _start_wandb(cfg: DictConfig, output_dir: Path, group: str, run_name: str):
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    mode = cfg.get("mode") or os.environ.get("WANDB_MODE")
    if not mode:
        mode = "online" if wandb_credentials_available() else "offline"
        if mode == "offline":
            log.warning(
                "W&B: no API key configured, logging offline to %s (sync later with `wandb sync`)", output_dir / "wandb"
            )
    run = wandb.init(
        project=cfg.project,
        entity=cfg.get("entity"),
        group=group,
        name=run_name,
        job_type=cfg.get("job_type"),
        dir=str(output_dir),
        mode=mode,
        settings=wandb.Settings(init_timeout=float(cfg.get("init_timeout", 30)), silent=True),
    )
    # Lightning's default x-axis (what WandbLogger does when it starts the run itself).
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    return WandbLogger(experiment=run, project=cfg.project, save_dir=str(output_dir))


def _one_line(e: Exception) -> str:
    return f"{e.__class__.__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def finish_wandb() -> None:
    """End the active W&B run, so the next job of a sweep starts its own run (a failure here is a warning)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is None or wandb.run is None:
        return
    try:
        wandb.finish()
    except Exception as e:
        log.warning("W&B: could not finish the run (%s)", _one_line(e))


def log_config(logger: Any, config: DictConfig) -> None:
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(config, resolve=True))

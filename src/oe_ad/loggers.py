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
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    mode = cfg.get("mode") or os.environ.get("WANDB_MODE")
    if not mode:
        mode = "online" if wandb_credentials_available() else "offline"
        if mode == "offline":
            log.warning(
                "W&B: no API key configured, logging offline to %s (sync later with `wandb sync`)", output_dir / "wandb"
            )
    return WandbLogger(
        project=cfg.project,
        entity=cfg.get("entity"),
        group=group,
        name=run_name,
        job_type=cfg.get("job_type"),
        save_dir=str(output_dir),
        mode=mode,
        settings=wandb.Settings(init_timeout=float(cfg.get("init_timeout", 30)), silent=True),
    )


def finish_wandb() -> None:
    """End the active W&B run, so the next job of a sweep starts its own run."""
    import sys

    if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
        sys.modules["wandb"].finish()


def log_config(logger: Any, config: DictConfig) -> None:
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(config, resolve=True))

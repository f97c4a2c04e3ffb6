"""Experiment loggers, picked by ``logger._target_``. W&B is a view, not the store: it never stops a job.

``lightning``: the Lightning loggers (CSV, TensorBoard, W&B) and the one W&B mode choice; ``job``: what one job's run
receives (id, name, tags, config, summary, ROC, score histograms); ``summary``: one run per experiment
(``python -m oe_ad.report DIR --wandb``). See docs/wandb.md.
"""

from .job import JobRun, job_run, log_config, log_history, log_job_result, log_member_run, oe_size_plot
from .lightning import (
    build_logger,
    csv_logger,
    finish_logger,
    finish_wandb,
    logger_callbacks,
    tensorboard_logger,
    wandb_credentials_available,
    wandb_logger,
    wandb_mode,
)

__all__ = [
    "JobRun",
    "build_logger",
    "csv_logger",
    "finish_logger",
    "finish_wandb",
    "job_run",
    "log_config",
    "log_history",
    "log_job_result",
    "log_member_run",
    "logger_callbacks",
    "oe_size_plot",
    "tensorboard_logger",
    "wandb_credentials_available",
    "wandb_logger",
    "wandb_mode",
]

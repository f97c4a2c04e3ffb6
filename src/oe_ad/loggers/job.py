"""What one job's W&B run receives (docs/wandb.md): a stable id, a short name, tags, the config with
``oe_size_plot``, the record's fields as summary, the learning rate per epoch, a ROC curve and score histograms.

The functions take the Lightning logger the job trains with; with a CSV logger or none they do what applies
(hyperparameters, metrics) and nothing else. A W&B failure is one warning line, never a failed job.
"""

import functools
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from ..metrics import CONVENTION, roc_points
from .lightning import JobRun, build_logger, finish_logger, one_line, wandb_experiment

log = logging.getLogger("oe_ad.loggers")
TEST_METRICS = ("auroc", "aupr", "fpr95", "aupr_in", "aupr_out")  # record test_<name>, history test/<name>
SUMMARY_KEYS = (
    *(f"test_{m}" for m in TEST_METRICS),
    *("train_auroc", "class_name", "oe_count", "train_time_s", "time_per_epoch_s"),
)
CONVENTION_KEY = "metrics_convention"  # the summary's sentence saying what FPR@95 and AUPR-In/Out mean
HISTOGRAM_BINS = 64


def _guarded(fn: Callable[..., None]) -> Callable[..., None]:
    """A view must not cost the job: any failure becomes one warning line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as e:
            log.warning("W&B/logger: %s failed (%s)", fn.__name__, one_line(e))

    return wrapper


def oe_size_plot(oe_size: int | None, oe_count: int | None) -> float | None:
    """OE size as a number for a log axis: the size itself; full OE at the pool size (``oe_count``, what
    "full" trains on, right of every swept size); None without OE (a reference line, not a point)."""
    if oe_size is not None:
        return float(oe_size)
    return None if oe_count is None else float(oe_count)


def oe_label(cfg: DictConfig, uses_oe: bool) -> str:
    """``256``, ``full`` (the whole pool) or ``none`` (the job trains without OE)."""
    if not uses_oe:
        return "none"
    return "full" if cfg.oe_size is None else str(cfg.oe_size)


def run_id(experiment: str, chash: str) -> str:
    """The job's W&B id: its config hash, plus a digest of the experiment name (the same job in two
    experiments is two runs; the same job re-run or resumed in one experiment is one run)."""
    return f"{chash}-{hashlib.sha256(experiment.encode()).hexdigest()[:6]}"


def run_name(cfg: DictConfig, class_name: str | None, uses_oe: bool) -> str:
    """``hsc · automobile · oe 256 · s0`` (``oe full``, ``no oe``; the benchmark when not one-vs-rest)."""
    oe = oe_label(cfg, uses_oe)
    parts = [cfg.method.name, class_name or f"class {cfg.normal_class}", "no oe" if oe == "none" else f"oe {oe}"]
    parts.append(f"s{cfg.seed}")
    if cfg.benchmark != "ovr":
        parts.append(cfg.benchmark)
    return " · ".join(str(p) for p in parts)


def run_tags(cfg: DictConfig, uses_oe: bool) -> list[str]:
    """method, data, benchmark, OE size, normal class and seed as ``key:value`` tags (W&B: at most 64 chars)."""
    values = {
        "method": cfg.method.name,
        "data": cfg.data.name,
        "benchmark": cfg.benchmark,
        "oe_size": oe_label(cfg, uses_oe),
        "class": cfg.normal_class,
        "seed": cfg.seed,
    }
    return [f"{k}:{v}"[:64] for k, v in values.items()]


def hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The job's resolved config without the experiment's ``report:`` layout (not part of the job's hash)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("report", None)
    return config


def job_run(cfg: DictConfig, chash: str, uses_oe: bool, class_name: str | None = None) -> JobRun:
    """The run of one job: id from the config hash, group = experiment name, the resolved config; ``uses_oe``
    (the job's fact: its method trains with an OE pool) labels its OE size."""
    config = hyperparameters(cfg)
    config.update(config_hash=chash, oe_size_label=oe_label(cfg, uses_oe))
    name = run_name(cfg, class_name, uses_oe)
    return JobRun(run_id(cfg.name, chash), name, cfg.name, run_tags(cfg, uses_oe), config)


@_guarded
def log_config(logger: Any, cfg: DictConfig, class_name: str, oe_count: int | None, uses_oe: bool) -> None:
    """Once the data is set up: ``oe_size_plot`` and the class name join the config (W&B also gets the
    final run name); a CSV logger gets the whole config."""
    extra = {"oe_size_plot": oe_size_plot(cfg.oe_size, oe_count), "class_name": class_name}
    run = wandb_experiment(logger)
    if run is None:
        if logger:
            logger.log_hyperparams({**hyperparameters(cfg), **extra})
        return
    run.config.update(extra, allow_val_change=True)
    name = run_name(cfg, class_name, uses_oe)
    if run.name != name:
        run.name = name


@_guarded
def log_history(
    logger: Any, history: list[dict[str, float]], steps_per_epoch: int, test: dict[str, float] | None = None
) -> None:
    """Per-epoch metrics of a job trained outside Lightning (a vectorised member), at the steps Lightning
    would use: ``train/lr`` at the start of each epoch, the others at its end, the ``test`` metrics (``test/auroc``,
    ``test/fpr95``, ...) last."""
    if not logger:
        return
    for epoch, row in enumerate(history):
        if "train/lr" in row:
            # alone, as Lightning's LearningRateMonitor logs it (no `epoch` at an epoch's first step)
            logger.log_metrics({"train/lr": row["train/lr"]}, step=epoch * steps_per_epoch)
        rest = {k: v for k, v in row.items() if k != "train/lr" and v is not None}
        if rest:
            logger.log_metrics({**rest, "epoch": epoch}, step=(epoch + 1) * steps_per_epoch - 1)
    test = {k: v for k, v in (test or {}).items() if v is not None}
    if test:
        logger.log_metrics({**test, "epoch": len(history)}, step=len(history) * steps_per_epoch)
    logger.save()


@_guarded
def log_job_result(logger: Any, record: dict[str, Any], scores: Tensor, is_anomalous: Tensor) -> None:
    """The record's fields as the run's summary, plus a ROC curve and histograms of normal and anomalous
    test scores (W&B only)."""
    run = wandb_experiment(logger)
    if run is None:
        return
    import wandb

    plot_x = oe_size_plot(record.get("oe_size"), record.get("oe_count"))
    run.summary.update({**{k: record.get(k) for k in SUMMARY_KEYS}, "oe_size_plot": plot_x, CONVENTION_KEY: CONVENTION})
    s, y = scores.detach().flatten().double().cpu().numpy(), is_anomalous.detach().flatten().bool().cpu().numpy()
    edges = np.histogram_bin_edges(s, bins=HISTOGRAM_BINS)
    fpr, tpr = roc_points(scores, is_anomalous)
    roc = wandb.Table(
        columns=["class", "fpr", "tpr"], data=[["anomalous", a, b] for a, b in zip(fpr.tolist(), tpr.tolist())]
    )
    run.log(
        {
            "test/roc": wandb.plot_table(
                "wandb/area-under-curve/v0",
                roc,
                {"x": "fpr", "y": "tpr", "class": "class"},
                {"title": "ROC", "x-axis-title": "False positive rate", "y-axis-title": "True positive rate"},
            ),
            "test/scores_normal": wandb.Histogram(np_histogram=np.histogram(s[~y], bins=edges)),
            "test/scores_anomalous": wandb.Histogram(np_histogram=np.histogram(s[y], bins=edges)),
            # one point per run, for the Figure 2 panel (docs/wandb.md): x = result/oe_size_plot
            "result/oe_size_plot": plot_x,
            **{f"result/test_{m}": record.get(f"test_{m}") for m in TEST_METRICS},
        }
    )


def log_member_run(
    cfg: DictConfig,
    job_dir: Path,
    record: dict[str, Any],
    scores: Tensor,
    is_anomalous: Tensor,
    history: list[dict[str, float]],
    steps_per_epoch: int,
) -> None:
    """A vectorised member's run, with the same id, name, tags, config, history and summary as the single job."""
    try:
        uses_oe = record["oe"] != "none"
        logger = build_logger(cfg.logger, job_dir, job_run(cfg, record["config_hash"], uses_oe, record["class_name"]))
    except Exception as e:
        log.warning("W&B/logger: no run for %s (%s)", job_dir, one_line(e))
        return
    try:
        log_config(logger, cfg, record["class_name"], record["oe_count"], uses_oe)
        log_history(logger, history, steps_per_epoch, {f"test/{m}": record.get(f"test_{m}") for m in TEST_METRICS})
        log_job_result(logger, record, scores, is_anomalous)
    finally:
        finish_logger(logger)

"""The job lifecycle: a composed config -> a finished job folder (claim, resume, train, test, model, record, index).

One job = one (method, data, normal class, OE size, seed). Every path goes through here: ``run_job`` trains a
single job with Lightning; the vectorised trainer builds its members with :func:`prepare` and hands each one
back to :func:`finish`; the search's fitness builds with :func:`prepare` and trains with :func:`fit_and_test`.
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .callbacks import EpochSummary, LastCheckpoint, StepProgress
from .checkpointing import MODEL_FILE, SAFE_GLOBALS, drop_last_checkpoint, resume_path, save_model
from .data.datamodule import Clock, OEDataModule, TrainerClock
from .data.sources import OEPool
from .factory import SourceCache, build_datamodule, build_method, uses_oe, validate
from .locks import JobLock
from .loggers import build_logger, finish_wandb, job_run, log_config, log_job_result, log_member_run, logger_callbacks
from .methods.base import AnomalyDetector
from .metrics import aupr
from .results import claim_job_dir, config_hash, find_record, index_record, write_record
from .scores import collected_scores, normal_scores, write_scores

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One job built as every path builds it: its config, the method at its seeded initial weights, its data."""

    cfg: DictConfig
    method: AnomalyDetector
    datamodule: OEDataModule
    hash: str


@dataclass
class Outcome:
    """What training and testing one job measured."""

    test_auroc: float
    train_auroc: float | None
    train_time_s: float
    device: str
    losses: list[float] = field(default_factory=list)  # per training step (the vectorised trainer keeps them)
    scores: torch.Tensor | None = None  # test scores, one per test image (CPU)
    history: list[dict[str, float | None]] = field(default_factory=list)  # per epoch, trained outside Lightning
    steps_per_epoch: int = 0  # where ``history`` goes on a logger's step axis


def set_threads(threads: int | None) -> None:
    """Torch CPU threads for this job (parallel launchers give each job its share of the cores)."""
    if threads:
        torch.set_num_threads(int(threads))


def prepare(
    cfg: DictConfig, sources: SourceCache | None = None, oe_pool: OEPool | None = None, clock: Clock | None = None
) -> Job:
    """Validate, seed (which fixes the initial weights) and build the method and the datamodule.

    ``sources`` shares data between jobs of one process; ``oe_pool`` replaces the configured pool.
    """
    validate(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    method = build_method(cfg)
    datamodule = build_datamodule(cfg, sources, oe_pool, clock)
    return Job(cfg, method, datamodule, config_hash(OmegaConf.to_container(cfg, resolve=True)))


def setup(job: Job, trainer: pl.Trainer) -> None:
    """Load the job's data on the trainer's device (data errors surface here, before any training)."""
    job.datamodule.clock = TrainerClock(trainer)
    job.datamodule.setup("fit")


def fit_and_test(job: Job, trainer: pl.Trainer, ckpt_path: Path | None = None) -> Outcome:
    """Train (unless the method needs none, or epochs=0) and test one job with a Lightning trainer."""
    setup(job, trainer)
    t0 = time.perf_counter()
    if job.method.needs_training and job.cfg.epochs > 0:
        with torch.serialization.safe_globals(SAFE_GLOBALS):  # resumes load weights only
            trainer.fit(job.method, datamodule=job.datamodule, ckpt_path=ckpt_path, weights_only=True)
    train_time = time.perf_counter() - t0
    train_auroc = trainer.callback_metrics.get("train/auroc")
    trainer.test(job.method, datamodule=job.datamodule, verbose=False)
    return Outcome(
        float(trainer.callback_metrics["test/auroc"]),
        None if train_auroc is None else float(train_auroc),
        train_time,
        str(trainer.strategy.root_device),
        scores=collected_scores(job.method.test_scores),
    )


def indices_digest(indices: np.ndarray | None) -> str | None:
    return None if indices is None else hashlib.sha256(np.asarray(indices, np.int64).tobytes()).hexdigest()


def build_record(job: Job, outcome: Outcome) -> dict[str, Any]:
    """The result record of one finished job."""
    cfg, dm = job.cfg, job.datamodule
    return {
        "config_hash": job.hash,
        "method": cfg.method.name,
        "data": cfg.data.name,
        "oe": cfg.oe.name if uses_oe(cfg) else "none",
        "benchmark": cfg.benchmark,
        "normal_class": cfg.normal_class,
        "class_name": dm.classes[cfg.normal_class],
        "seed": cfg.seed,
        "oe_size": cfg.oe_size,
        "oe_count": None if dm.oe_indices is None else len(dm.oe_indices),
        "test_auroc": outcome.test_auroc,
        "test_aupr": None if outcome.scores is None else aupr(outcome.scores, dm.test_labels.cpu()),
        "train_auroc": outcome.train_auroc,
        "epochs": cfg.epochs,
        "train_time_s": outcome.train_time_s,
        "time_per_epoch_s": outcome.train_time_s / cfg.epochs if cfg.epochs else 0.0,
        "oe_indices_sha256": indices_digest(dm.oe_indices),
        "oe_indices": dm.oe_indices.tolist() if dm.oe_indices is not None and len(dm.oe_indices) <= 4096 else None,
        "normalisation": dm.normalisation,
        "device": outcome.device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


# -- the job folder ----------------------------------------------------------------------------------------
def experiment_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir) / cfg.name


def reuse(cfg: DictConfig, job_dir: Path) -> dict[str, Any] | None:
    """The record this experiment already holds for this very config (in ``job_dir`` or wherever the index
    says), indexed again; None (the job must run) if there is none or ``force`` is on."""
    chash = config_hash(OmegaConf.to_container(cfg, resolve=True))
    done = None if cfg.get("force") else find_record(experiment_dir(cfg), job_dir, chash)
    if done is None:
        return None
    log.info("skip: %s is finished (record %s); force=true re-runs it", job_dir, done)
    if is_rank_zero():
        index_record(experiment_dir(cfg), done, chash)
    return json.loads(done.read_text())


def claim(cfg: DictConfig, job_dir: Path) -> None:
    """Make ``job_dir`` this config's folder (a folder holding another config's record is refused)."""
    claim_job_dir(Path(job_dir), config_hash(OmegaConf.to_container(cfg, resolve=True)), force=bool(cfg.get("force")))


def finish(job: Job, outcome: Outcome, job_dir: Path, logger: Any = None) -> dict[str, Any]:
    """Write the model and the test scores, then the record (a job with a record always has both), index it,
    log the result (``logger``: the single job's; None: a run of its own), drop the resume checkpoint."""
    job_dir, ckpt = Path(job_dir), job.cfg.get("checkpoint") or {}
    record = build_record(job, outcome)
    if ckpt.get("save_model", True):
        dm = job.datamodule
        preprocessing = {**dm.normalisation, "input_size": int(dm.train_normal.shape[-1])}
        names = {"classes": list(dm.classes), "normal_classes": list(dm.normal_names)}  # thresholds: normal_scores
        extra = {**names, "normal_scores": normal_scores(job.method, dm)}
        save_model(job_dir / MODEL_FILE, job.method, record["config"], preprocessing, extra)
    if outcome.scores is not None:
        write_scores(job_dir, outcome.scores, job.datamodule.test_labels)
    path = write_record(job_dir, record)
    index_record(experiment_dir(job.cfg), path, job.hash)
    log_result(job, outcome, record, job_dir, logger)
    if not ckpt.get("keep", False):
        drop_last_checkpoint(job_dir)
    log.info(
        "test AUROC %.2f%% (%s, class %d %s, seed %d, oe_size %s) -> %s",
        100 * outcome.test_auroc,
        record["method"],
        job.cfg.normal_class,
        record["class_name"],
        job.cfg.seed,
        job.cfg.oe_size,
        path,
    )
    return record


def log_result(job: Job, outcome: Outcome, record: dict[str, Any], job_dir: Path, logger: Any) -> None:
    """W&B/CSV (a view; never fails the job): the summary, ROC and score histograms into the single job's
    running logger, or, for a job trained outside Lightning (a vectorised member), a run of its own."""
    if outcome.scores is None:
        return
    labels = job.datamodule.test_labels.cpu()
    if logger is not None:
        log_job_result(logger, record, outcome.scores, labels)
    else:
        log_member_run(job.cfg, job_dir, record, outcome.scores, labels, outcome.history, outcome.steps_per_epoch)


def known_class_name(job: Job) -> str | None:
    """The normal class's name if the source knows its classes before loading (the W&B run's first name)."""
    classes = getattr(job.datamodule.normal_source, "classes", None) or []
    return classes[job.cfg.normal_class] if 0 <= job.cfg.normal_class < len(classes) else None


def run_job(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Train and test one job with Lightning; write its folder; return the record.

    Resumes from ``output_dir/last.ckpt`` when this config left one there (an interrupted run).
    """
    output_dir = Path(output_dir)
    validate(cfg)
    claim(cfg, output_dir)
    set_threads(cfg.get("threads"))
    job = prepare(cfg)
    # W&B/CSV: the run (id from the config hash, resumed with the job) starts here; the learning rate to its history
    logger = build_logger(cfg.logger, output_dir, job_run(cfg, job.hash, known_class_name(job)))
    ckpt = cfg.get("checkpoint") or {}
    callbacks: list[pl.Callback] = [EpochSummary(), StepProgress(), *logger_callbacks(logger)]
    if ckpt.get("every_n_epochs"):
        callbacks.append(LastCheckpoint(output_dir, ckpt.every_n_epochs, job.hash))
    try:
        trainer: pl.Trainer = instantiate(
            cfg.trainer, logger=logger, default_root_dir=str(output_dir), callbacks=callbacks
        )
        setup(job, trainer)
        dm = job.datamodule
        log_config(logger, cfg, dm.classes[cfg.normal_class], None if dm.oe_indices is None else len(dm.oe_indices))
        outcome = fit_and_test(job, trainer, resume_path(output_dir, job.hash))
        if not trainer.is_global_zero:  # under DDP every rank tests; rank 0 alone writes
            return build_record(job, outcome)
        return finish(job, outcome, output_dir, logger)
    finally:
        finish_wandb()


def run_or_skip(cfg: DictConfig, job_dir: Path) -> dict[str, Any] | None:
    """The job's record: the one this experiment already holds for this config, else a new run's; None if
    another process holds the job's lock (it writes the record)."""
    validate(cfg)  # before the lock and the record look-up hash the config
    lock = JobLock(job_dir) if is_rank_zero() else None  # DDP's extra ranks run under rank 0's lock
    if lock is not None and not lock.acquire():
        log.info("skip: %s is running elsewhere (%s)", job_dir, lock.holder)
        return None
    try:  # the record look-up after the lock: a record written meanwhile is seen
        return reuse(cfg, job_dir) or run_job(cfg, job_dir)
    finally:
        if lock is not None:
            lock.release()


def is_rank_zero() -> bool:
    """False in the extra processes of a multi-device (DDP) job, which must not write job files."""
    from pytorch_lightning.utilities import rank_zero_only

    return rank_zero_only.rank == 0

"""One job = one (method, data, normal class, OE size, seed): seed, build, fit, test, write one record."""

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from .checkpointing import MODEL_FILE, LastCheckpoint, drop_last_checkpoint, resume_path, save_model
from .data.datamodule import OEDataModule
from .data.filters import build_filter
from .errors import OEADError
from .loggers import build_logger, finish_wandb, job_run, log_config, log_job_result, logger_callbacks
from .metrics import aupr
from .results import claim_job_dir, config_hash, write_record
from .scores import collected_scores, write_scores

log = logging.getLogger(__name__)


class EpochSummary(pl.Callback):
    """One log line per epoch (the progress bar is off so sweep logs stay readable).

    Printed when the next epoch starts (or training ends): callbacks' epoch-end hooks run before the
    module's, so the epoch's train AUROC is only logged by then.
    """

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self._report(trainer, trainer.current_epoch)
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.elapsed = time.perf_counter() - self.t0

    def on_train_end(self, trainer, pl_module) -> None:
        self._report(trainer, trainer.current_epoch)

    def _report(self, trainer, epoch: int) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        parts = " ".join(f"{k.split('/')[1]}={v:.4f}" for k, v in sorted(m.items()))
        log.info("epoch %d/%d %s (%.1f s)", epoch, trainer.max_epochs, parts, getattr(self, "elapsed", 0.0))


def build(spec: dict | DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, but our one-line OEADError is passed through instead of wrapped."""
    try:
        return instantiate(spec, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, OEADError):
            raise e.__cause__ from None
        raise


def _without_name(node: DictConfig) -> dict:
    """The resolved node minus its ``name`` (a label for records and logs, not a constructor argument)."""
    spec = OmegaConf.to_container(node, resolve=True)
    spec.pop("name", None)
    return spec


def uses_oe(cfg: DictConfig) -> bool:
    """Whether this job trains with OE: the method wants it and a pool is configured."""
    return bool(cfg.oe) and get_class(cfg.method._target_).uses_oe


def build_datamodule(cfg: DictConfig, normal: Any = None, oe: Any = None) -> OEDataModule:
    """The job's datamodule; ``normal``/``oe`` replace the configured sources (the OE search reuses them)."""
    normal = normal if normal is not None else build(_without_name(cfg.data))
    if oe is None:
        oe = build(_without_name(cfg.oe)) if uses_oe(cfg) else None
    return OEDataModule(
        normal,
        oe,
        normal_class=cfg.normal_class,
        oe_size=cfg.oe_size,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        augment=cfg.augment,
        benchmark=cfg.benchmark,
        normalise=not get_class(cfg.method._target_).normalises_input,
        filter=build_filter(cfg.get("filter")),
        **cfg.augmentation,
    )


def build_method(cfg: DictConfig) -> pl.LightningModule:
    net = build(cfg.net)
    return build(_without_name(cfg.method), net=net, lr=cfg.lr, milestones=list(cfg.milestones), _recursive_=True)


def validate(cfg: DictConfig) -> None:
    """Reject contradictory options before any data is read."""
    if not get_class(cfg.method._target_).uses_oe and cfg.oe_size is not None:
        raise OEADError(f"method={cfg.method.name} trains without OE: oe_size={cfg.oe_size} must be null")
    if cfg.epochs < 0:
        raise OEADError(f"epochs={cfg.epochs}: must be >= 0")


def indices_digest(indices: np.ndarray | None) -> str | None:
    return None if indices is None else hashlib.sha256(np.asarray(indices, np.int64).tobytes()).hexdigest()


def set_threads(threads: int | None) -> None:
    """Torch CPU threads for this job (parallel launchers give each job its share of the cores)."""
    if threads:
        torch.set_num_threads(int(threads))


def build_record(
    cfg: DictConfig,
    datamodule: OEDataModule,
    test_auroc: float,
    train_auroc: float | None,
    train_time: float,
    device: torch.device | str,
    test_aupr: float | None = None,
) -> dict[str, Any]:
    """The result record of one finished job (shared by ``run_job`` and the vectorised trainer)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return {
        "config_hash": config_hash(resolved),
        "method": cfg.method.name,
        "data": cfg.data.name,
        "oe": cfg.oe.name if uses_oe(cfg) else "none",
        "benchmark": cfg.benchmark,
        "normal_class": cfg.normal_class,
        "class_name": datamodule.classes[cfg.normal_class],
        "seed": cfg.seed,
        "oe_size": cfg.oe_size,
        "oe_count": _oe_count(datamodule),
        "test_auroc": test_auroc,
        "test_aupr": test_aupr,
        "train_auroc": None if train_auroc is None else float(train_auroc),
        "epochs": cfg.epochs,
        "train_time_s": train_time,
        "time_per_epoch_s": train_time / cfg.epochs if cfg.epochs else 0.0,
        "oe_indices_sha256": indices_digest(datamodule.oe_indices),
        "oe_indices": (
            datamodule.oe_indices.tolist()
            if datamodule.oe_indices is not None and len(datamodule.oe_indices) <= 4096
            else None
        ),
        "normalisation": datamodule.normalisation,
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": resolved,
    }


def _known_class_name(datamodule: OEDataModule, normal_class: int) -> str | None:
    """The normal class's name if the source knows its classes before loading (for the W&B run name)."""
    classes = getattr(datamodule.normal_source, "classes", None) or []
    return classes[normal_class] if 0 <= normal_class < len(classes) else None


def _oe_count(datamodule: OEDataModule) -> int | None:
    return None if datamodule.oe_indices is None else len(datamodule.oe_indices)


def run_job(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Train and test one job; write ``output_dir/result.json``; return the record.

    Resumes from ``output_dir/last.ckpt`` when this config left one there (an interrupted run).
    """
    output_dir = Path(output_dir)
    validate(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    chash = config_hash(resolved)
    claim_job_dir(output_dir, chash, force=bool(cfg.get("force")))
    set_threads(cfg.get("threads"))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # fixes the initial weights
    method = build_method(cfg)
    datamodule = build_datamodule(cfg)
    # W&B/CSV: the run (id from the config hash) starts here; the learning rate goes to its history
    logger = build_logger(cfg.logger, output_dir, job_run(cfg, chash, _known_class_name(datamodule, cfg.normal_class)))
    ckpt = cfg.get("checkpoint") or {}
    callbacks: list[pl.Callback] = [EpochSummary(), *logger_callbacks(logger)]
    if ckpt.get("every_n_epochs"):
        callbacks.append(LastCheckpoint(output_dir, ckpt.every_n_epochs, chash))
    try:
        trainer: pl.Trainer = instantiate(
            cfg.trainer, logger=logger, default_root_dir=str(output_dir), callbacks=callbacks
        )
        datamodule.trainer = trainer
        datamodule.setup("fit")  # data errors surface here, before any training
        log_config(logger, cfg, datamodule.classes[cfg.normal_class], _oe_count(datamodule))  # W&B/CSV config
        t0 = time.perf_counter()
        if method.needs_training and cfg.epochs > 0:
            trainer.fit(method, datamodule=datamodule, ckpt_path=resume_path(output_dir, chash))
        train_time = time.perf_counter() - t0
        train_auroc = trainer.callback_metrics.get("train/auroc")
        trainer.test(method, datamodule=datamodule, verbose=False)
        test_auroc = float(trainer.callback_metrics["test/auroc"])
        scores, labels = collected_scores(method.test_scores), datamodule.test_labels.cpu()
        device = trainer.strategy.root_device
        record = build_record(cfg, datamodule, test_auroc, train_auroc, train_time, device, aupr(scores, labels))
        if not trainer.is_global_zero:  # under DDP every rank tests; rank 0 alone writes
            return record
        if ckpt.get("save_model", True):  # before the record: a job with a record always has its model
            preprocessing = {**datamodule.normalisation, "input_size": int(datamodule.train_normal.shape[-1])}
            save_model(output_dir / MODEL_FILE, method, resolved, preprocessing)
        write_scores(output_dir, scores, labels)  # before the record: a job with a record has its scores
        write_record(output_dir, record)
        log_job_result(logger, record, scores, labels)  # W&B summary, ROC, score histograms
        if not ckpt.get("keep", False):
            drop_last_checkpoint(output_dir)
        log.info(
            "test AUROC %.2f%% (%s, class %d %s, seed %d, oe_size %s) -> %s",
            100 * test_auroc,
            record["method"],
            cfg.normal_class,
            record["class_name"],
            cfg.seed,
            cfg.oe_size,
            output_dir / "result.json",
        )
        return record
    finally:
        finish_wandb()

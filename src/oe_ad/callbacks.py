"""Every callback of a run: Lightning's per job (epoch log line, ``last.ckpt``) and Hydra's per sweep (failures)."""

import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .checkpointing import HASH_KEY, LAST_CKPT, file_sha256, write_checksum
from .results import ERROR_FILE

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


class LastCheckpoint(pl.Callback):
    """Write ``dirpath/last.ckpt`` every ``every_n_epochs`` epochs, and its checksum beside it (temp files with
    unique names + rename: a kill mid-write leaves the previous checkpoint intact, or one that fails its
    checksum and is ignored)."""

    def __init__(self, dirpath: Path, every_n_epochs: int, config_hash: str) -> None:
        self.path = Path(dirpath) / LAST_CKPT
        self.every_n_epochs = every_n_epochs
        self.config_hash = config_hash

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        tmp = self.path.with_name(f".{LAST_CKPT}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # every rank calls it; rank 0 writes
        if trainer.is_global_zero:
            digest = file_sha256(tmp)
            os.replace(tmp, self.path)
            write_checksum(self.path, digest)
        trainer.strategy.barrier("oe_ad.last_checkpoint")

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint[HASH_KEY] = self.config_hash


class SweepSummary(Callback):
    """After a multirun, list the jobs that failed and exit non-zero."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.time() - 1

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = []
        for path in sorted(sweep_dir.rglob(ERROR_FILE)):
            if path.stat().st_mtime >= getattr(self, "start", 0):
                failed.append((path.parent, json.loads(path.read_text())["error"]))
        if failed:
            print(f"{len(failed)} job(s) failed:", file=sys.stderr)
            for job_dir, err in failed:
                print(f"  {job_dir}: {err}", file=sys.stderr)
            sys.exit(1)

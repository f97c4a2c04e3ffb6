"""Lightning's callbacks of a job: the epoch log line, progress within epochs and the test pass, ``last.ckpt``.
(Hydra's per-sweep callback is ``oe_ad.cli.sweep_summary``: it must not import Lightning.)"""

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from ..errors import Interrupted
from ..progress import Progress
from .checkpoint import HASH_KEY, KIND_KEY, LAST_CKPT, file_sha256, write_checksum

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

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, Interrupted):  # its one line says which epoch was cut short
            exception.epoch = f"{trainer.current_epoch + 1}/{trainer.max_epochs}"

    def _report(self, trainer, epoch: int) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        parts = " ".join(f"{k.split('/')[1]}={v:.4f}" for k, v in sorted(m.items()))
        log.info("epoch %d/%d %s (%.1f s)", epoch, trainer.max_epochs, parts, getattr(self, "elapsed", 0.0))


class StepProgress(pl.Callback):
    """Progress within each training epoch (steps) and through the test pass (images), with rate and ETA
    (``oe_ad.progress``: a bar on a terminal, a line every ``OE_AD_PROGRESS_SECONDS`` in logs; silent when short).
    Off when Lightning's own progress bar is on (``trainer.enable_progress_bar=true``)."""

    def __init__(self) -> None:
        self.bar: Progress | None = None

    def _start(self, trainer: pl.Trainer, total: int | None, desc: str, unit: str) -> None:
        self._stop()
        if trainer.progress_bar_callback is None and trainer.is_global_zero:
            self.bar = Progress(total, desc, unit, leave=False)

    def _advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def _stop(self, *_: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        steps = trainer.num_training_batches
        total = steps if isinstance(steps, int) else None  # inf for an iterable without a length
        self._start(trainer, total, f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}", "steps")

    def on_train_batch_end(self, *_: Any) -> None:
        self._advance(1)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        images = getattr(trainer.datamodule, "test_images", None)
        self._start(trainer, None if images is None else len(images), "testing", "images")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._advance(len(batch[0]))

    on_train_epoch_end = on_test_epoch_end = on_exception = _stop


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
        checkpoint[KIND_KEY] = "lightning"

"""Lightning's callbacks of a job: the epoch log line, progress within epochs and the test pass, ``last.ckpt``.
(Hydra's callback is ``oe_ad.cli.entrance.Entrance``: it must not import Lightning.)"""

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from ..errors import Interrupted
from ..progress import Progress
from .checkpoint import TrainingState, optimizer_by_index, optimizer_by_name, save_training_state

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


class Checkpoints(pl.Callback):
    """The job's :class:`~oe_ad.job.checkpoint.TrainingState` into ``last.ckpt`` every ``every_n_epochs`` epochs
    (the format the stack fitter writes and reads too); a job resuming from ``state`` gets its optimiser, schedule
    and epoch and step counters back when training starts. Also keeps the per-epoch history the state carries."""

    def __init__(self, job_dir: Path | None, every_n_epochs: int, config_hash: str, state: TrainingState | None):
        self.job_dir, self.every, self.config_hash, self.state = job_dir, every_n_epochs, config_hash, state
        self.history = list(state.history) if state else []
        self.resumed_time = state.train_time_s if state else 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.t0, self.lr = time.perf_counter(), None
        if self.state is None:
            return
        s = self.state
        pl_module.load_state_dict(s.state_dict)
        trainer.optimizers[0].load_state_dict(optimizer_by_index(pl_module, s.optimizer))
        trainer.lr_scheduler_configs[0].scheduler.load_state_dict(s.scheduler)
        loop = trainer.fit_loop  # as if fit had run epochs_done epochs already
        for progress in (loop.epoch_progress.total, loop.epoch_progress.current):
            progress.ready = progress.started = progress.processed = progress.completed = s.epochs_done
        steps = loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step.total
        steps.ready = steps.completed = loop.epoch_loop._batches_that_stepped = s.global_step

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_done(trainer, pl_module)  # the previous epoch, its schedule step included
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_done(trainer, pl_module)
        self.t1 = time.perf_counter()

    def _epoch_done(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        stats, epochs = pl_module.meter.last_epoch, trainer.current_epoch
        if self.lr is None or stats is None or len(self.history) >= epochs:
            return
        self.history.append({"train/lr": self.lr, "train/loss": stats.loss, "train/auroc": stats.auroc})
        if self.job_dir is None or not self.every or epochs % self.every:
            return
        if trainer.is_global_zero:
            scheduler = trainer.lr_scheduler_configs[0].scheduler
            state = TrainingState(
                epochs,
                trainer.global_step,
                {k: v.detach().cpu() for k, v in pl_module.state_dict().items()},
                optimizer_by_name(pl_module, trainer.optimizers[0]),
                scheduler.state_dict(),
                self.history,
                self.train_time(),
            )
            save_training_state(self.job_dir, self.config_hash, state)
        trainer.strategy.barrier("oe_ad.checkpoint")

    def train_time(self) -> float:
        """Seconds of training, the resumed runs' included (0 when nothing trained)."""
        end = getattr(self, "t1", time.perf_counter())
        return self.resumed_time + (end - self.t0 if hasattr(self, "t0") else 0.0)

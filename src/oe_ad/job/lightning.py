"""The Lightning fitter: one job at a time, with a Lightning ``Trainer`` built from the job's ``trainer`` config.

The job loop (``loop.run_jobs``) hands it validated, claimed jobs; it builds each (``loop.prepare``), starts the
job's W&B/CSV run, sets the data up on the trainer's device (``loop.ready``), trains (resuming from the job's
``last.ckpt`` when this config left one there) and tests, and yields the outcome while the run is still open, so
the loop's ``finish`` logs the result into it.
"""

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from ..config.factory import SourceCache
from ..data.datamodule import TrainerClock
from ..loggers import build_logger, finish_wandb, job_run, log_config, logger_callbacks
from .callbacks import Checkpoints, EpochSummary, StepProgress
from .checkpoint import load_training_state
from .loop import BUSY, Failure, Job, JobSpec, Outcome, prepare, ready, run_jobs, set_threads

QUIET = ("pytorch_lightning", "lightning.pytorch", "lightning.fabric")
SRUN_HINT = "The `srun` command is available on your system but is not used"  # Lightning's, at every Trainer
log = logging.getLogger(__name__)


def hide_srun_hint_outside_slurm() -> None:
    """Lightning tells every process on a machine with ``srun`` to prepend ``srun``. Inside a SLURM job started
    without it (an sbatch script that forgot it) that is the fix, so the hint stays; everywhere else (the local,
    joblib and vectorised launchers, a login node, a workstation with SLURM's clients) it is noise. Under
    ``launcher=slurm`` the tasks run under ``srun``: Lightning uses the SLURM environment and has no hint to give."""
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings("ignore", message=f"{SRUN_HINT}.*")


class LightningFitter:
    """``record=False`` (the search's fitness): no logger, no checkpoints, Lightning's own logs quiet."""

    def __init__(self, sources: SourceCache | None = None, record: bool = True) -> None:
        self.sources, self.record = sources, record
        hide_srun_hint_outside_slurm()
        if not record:  # a search trains thousands of models
            for name in QUIET:
                logging.getLogger(name).setLevel(logging.WARNING)

    def fit_and_test(self, specs: Sequence[JobSpec]) -> Iterator[tuple[JobSpec, Job | None, Outcome | Exception]]:
        for spec in specs:
            job = None
            try:
                set_threads(spec.cfg.get("threads"))
                job = prepare(spec, self.sources)
                trainer = self._trainer(job)
                ready(job)
                if self.record:
                    dm = job.datamodule
                    oe_count = None if dm.oe_indices is None else len(dm.oe_indices)
                    name = dm.classes[spec.cfg.normal_class]
                    log_config(job.logger, spec.cfg, name, oe_count, dm.oe_pool is not None)
                outcome = self._fit_and_test(job, trainer)
            except Exception as e:
                finish_wandb()
                yield spec, job, e
                continue
            try:
                yield spec, job, outcome
            finally:
                finish_wandb()

    def _trainer(self, job: Job) -> pl.Trainer:
        """The job's trainer (and, when recording, its W&B/CSV run: id from the config hash, resumed with the
        job; the learning rate into its history); the datamodule draws on the trainer's device and epoch."""
        cfg = job.cfg
        every = int((cfg.get("checkpoint") or {}).get("every_n_epochs") or 0) if self.record else 0
        state = load_training_state(job.spec.dir, job.hash) if self.record else None
        callbacks: list[pl.Callback] = [Checkpoints(job.spec.dir, every, job.hash, state)]
        if self.record:
            run = job_run(cfg, job.hash, job.datamodule.oe_pool is not None, known_class_name(job))
            job.logger = build_logger(cfg.logger, job.spec.dir, run)
            callbacks += [EpochSummary(), StepProgress(), *logger_callbacks(job.logger)]
        root = {"default_root_dir": str(job.spec.dir)} if job.spec.dir is not None else {}
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=job.logger or False, callbacks=callbacks, **root)
        job.datamodule.clock = TrainerClock(trainer)
        return trainer

    def _fit_and_test(self, job: Job, trainer: pl.Trainer) -> Outcome:
        """Train (unless the method needs none) and test, with the method's meter measuring both."""
        checkpoints = next(c for c in trainer.callbacks if isinstance(c, Checkpoints))
        if job.method.needs_training and job.cfg.epochs > 0:
            trainer.fit(job.method, datamodule=job.datamodule)
        trainer.test(job.method, datamodule=job.datamodule, verbose=False)
        test_auroc, scores = job.method.meter.last_test
        history = checkpoints.history
        return Outcome(
            test_auroc,
            history[-1]["train/auroc"] if history else None,
            checkpoints.train_time(),
            str(trainer.strategy.root_device),
            scores=scores,
            writes=trainer.is_global_zero,  # under DDP every rank tests; rank 0 alone writes
        )


def known_class_name(job: Job) -> str | None:
    """The normal class's name if the source knows its classes before loading (the W&B run's first name)."""
    classes = getattr(job.datamodule.normal_source, "classes", None) or []
    return classes[job.cfg.normal_class] if 0 <= job.cfg.normal_class < len(classes) else None


def run_job(cfg: DictConfig, job_dir: Path, validated: bool = False) -> dict[str, Any] | None:
    """One job through the job loop with Lightning (resuming from ``job_dir/last.ckpt`` when this config left
    one there): its record, new or reused; None if another process holds its lock. A failure raises its error.
    ``validated``: the config has passed the schema already (the command line's task checks it first)."""
    (result,) = run_jobs([JobSpec(cfg, Path(job_dir), validated=validated)], LightningFitter())
    if isinstance(result, Failure):
        raise result.error
    return None if result == BUSY else result

"""The job loop: validate once -> lock -> reuse -> claim -> prepare -> fit and test -> finish.

One job = one (method, data, normal class, OE size, seed). Every path that produces a job result runs
:func:`run_jobs`: a single job (``lightning.run_job``, Hydra's basic launcher), the vectorised launcher, and the
search's fitness (without the record steps: no lock, record or files). Only the fitter differs: Lightning, one
job at a time (``oe_ad.job.lightning``), or stacks of many models (``oe_ad.vectorised.trainer``). Both build a
job with :func:`prepare` and :func:`ready` and measure it with the method's :class:`~oe_ad.job.meter.Meter`, so a
job ends the same way (record, or one error line and no files) whichever fitter trained it.
"""

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config.factory import SourceCache, build_datamodule, build_method, uses_oe, validate
from ..data.datamodule import Clock, OEDataModule
from ..data.fingerprint import inputs
from ..data.pools import OEPool
from ..errors import OEADError
from ..loggers import log_job_result, log_member_run
from ..methods.base import AnomalyDetector, Facts
from ..metrics import ood_metrics
from .checkpoint import MODEL_FILE, drop_training_state, save_model
from .failure import Failure, describe
from .locks import HeldLocks
from .records import claim_job_dir, config_hash, find_record, index_record, write_record
from .scores import normal_scores, write_scores

log = logging.getLogger(__name__)
BUSY = "<running elsewhere>"  # the result of a job whose lock another process holds (it writes the record)


@dataclass
class JobSpec:
    """A job to run: its config, its folder (None: nothing is written, e.g. a search fitness evaluation) and
    optionally an OE pool that replaces the configured one (the search's single image). ``hash`` is set once,
    when the loop has validated the config and identified its data."""

    cfg: DictConfig
    dir: Path | None = None
    oe_pool: OEPool | None = None
    hash: str = ""
    validated: bool = False  # the config has passed the schema already (the command line's task): not again


@dataclass
class Job:
    """A job built as every fitter builds it: its config, the method at its seeded initial weights, its data."""

    spec: JobSpec
    method: AnomalyDetector
    datamodule: OEDataModule
    logger: Any = None  # the running Lightning logger of a single job (None: a member gets a run of its own)

    @property
    def cfg(self) -> DictConfig:
        return self.spec.cfg

    @property
    def hash(self) -> str:
        return self.spec.hash

    def facts(self) -> Facts:
        dm = self.datamodule
        return Facts(list(dm.normal_names), dm.normal_batches)


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
    writes: bool = True  # False on the extra processes of a multi-device (DDP) job: rank 0 alone writes


Result = dict[str, Any] | Outcome | Failure | str  # record, outcome (no record steps), failure, or BUSY


class Fitter(Protocol):
    """Fits and tests jobs; yields each job's (spec, job or None if it could not be built, outcome or error)."""

    def fit_and_test(self, specs: Sequence[JobSpec]) -> Iterator[tuple[JobSpec, Job | None, Outcome | Exception]]: ...


# -- building a job ----------------------------------------------------------------------------------------
def set_threads(threads: int | None) -> None:
    """Torch CPU threads for this job (parallel launchers give each job its share of the cores)."""
    if threads:
        torch.set_num_threads(int(threads))


def prepare(spec: JobSpec, sources: SourceCache | None = None, clock: Clock | None = None) -> Job:
    """Seed (which fixes the initial weights) and build the method and the datamodule of a validated job;
    ``sources`` shares data between jobs of one process."""
    pl.seed_everything(spec.cfg.seed, workers=True, verbose=False)
    method = build_method(spec.cfg)
    datamodule = build_datamodule(spec.cfg, sources, spec.oe_pool, clock)
    return Job(spec, method, datamodule)


def ready(job: Job) -> None:
    """Load the job's data on its clock's device (data errors surface here, before any training) and hand the
    method its facts (prompts, the Deep SVDD centre) on that device."""
    job.datamodule.setup("fit")
    job.method.to(job.datamodule.clock.device)
    job.method.prepare(job.facts())


# -- the record ----------------------------------------------------------------------------------------------
def indices_digest(indices: np.ndarray | None) -> str | None:
    return None if indices is None else hashlib.sha256(np.asarray(indices, np.int64).tobytes()).hexdigest()


def build_record(job: Job, outcome: Outcome) -> dict[str, Any]:
    """The result record of one finished job."""
    cfg, dm = job.cfg, job.datamodule
    m = {} if outcome.scores is None else ood_metrics(outcome.scores, dm.test_labels.cpu())  # metrics.CONVENTION
    return {
        "config_hash": job.hash,
        "method": cfg.method.name,
        "data": cfg.data.name,
        "oe": cfg.oe.name if uses_oe(cfg) else "none",
        "benchmark": cfg.benchmark,
        "normal_class": cfg.normal_class,
        "class_name": dm.classes[cfg.normal_class],
        "classes": list(dm.classes),
        "seed": cfg.seed,
        "oe_size": cfg.oe_size,
        "oe_count": None if dm.oe_indices is None else len(dm.oe_indices),
        "test_auroc": outcome.test_auroc,
        "test_aupr": m.get("aupr"),
        "test_fpr95": m.get("fpr95"),
        "test_aupr_in": m.get("aupr_in"),
        "test_aupr_out": m.get("aupr_out"),
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
        "inputs": inputs(cfg, uses_oe(cfg)),  # per source: its fingerprint and the real paths read
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


# -- the job folder ----------------------------------------------------------------------------------------
def experiment_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir) / cfg.name


def reuse(spec: JobSpec) -> dict[str, Any] | None:
    """The record this experiment already holds for this very config (in the job's folder or wherever the index
    says), indexed again; None (the job must run) if there is none or ``force`` is on."""
    cfg = spec.cfg
    done = None if cfg.get("force") else find_record(experiment_dir(cfg), spec.dir, spec.hash)
    if done is None:
        return None
    log.info("skip: %s is finished (record %s); force=true re-runs it", spec.dir, done)
    if is_rank_zero():
        index_record(experiment_dir(cfg), done, spec.hash)
    return json.loads(done.read_text())


def finish(job: Job, outcome: Outcome) -> dict[str, Any]:
    """Write the model and the test scores, then the record (a job with a record always has both), index it,
    log the result (into the single job's running logger, or a run of its own), drop the resume checkpoint."""
    job_dir, ckpt = Path(job.spec.dir), job.cfg.get("checkpoint") or {}
    record = build_record(job, outcome)
    if ckpt.get("save_model", True):
        dm = job.datamodule
        preprocessing = {**dm.normalisation, "input_size": int(dm.train_normal.shape[-1])}
        extra = {
            "facts": job.facts().saved(),
            "classes": list(dm.classes),
            "normal_scores": normal_scores(job.method, dm),
            "config_hash": job.hash,  # the record's key, for an export's sidecar
        }
        save_model(job_dir / MODEL_FILE, job.method, record["config"], preprocessing, extra)
    if outcome.scores is not None:
        write_scores(job_dir, outcome.scores, job.datamodule.test_labels)
    path = write_record(job_dir, record)
    index_record(experiment_dir(job.cfg), path, job.hash)
    log_result(job, outcome, record)
    if not ckpt.get("keep", False):
        drop_training_state(job_dir)
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


def log_result(job: Job, outcome: Outcome, record: dict[str, Any]) -> None:
    """W&B/CSV (a view; never fails the job): the summary, ROC and score histograms into the single job's
    running logger, or, for a job trained outside Lightning (a vectorised member), a run of its own."""
    if outcome.scores is None:
        return
    labels = job.datamodule.test_labels.cpu()
    if job.logger is not None:
        log_job_result(job.logger, record, outcome.scores, labels)
    else:
        log_member_run(job.cfg, job.spec.dir, record, outcome.scores, labels, outcome.history, outcome.steps_per_epoch)


# -- the loop ------------------------------------------------------------------------------------------------
def _claim_all(specs: Sequence[JobSpec], record: bool, locks: HeldLocks, results: list) -> list[JobSpec]:
    """Validate and hash each job once; with ``record``, lock it, reuse its record or claim its folder. Returns
    the jobs to train; the others' results (a record, BUSY or a Failure) go into ``results``."""
    todo, memory = [], {}  # the jobs' shared data are fingerprinted once
    for i, spec in enumerate(specs):
        try:
            # once per job, before anything hashes or reads it
            validate(spec.cfg, identify_data=record, schema=not spec.validated, memory=memory)
        except (OEADError, OmegaConfBaseException) as e:
            results[i] = describe(e, refused=True)
            continue
        try:
            resolved = OmegaConf.to_container(spec.cfg, resolve=True)
            spec.hash = config_hash(resolved)
            if record:
                # DDP's extra ranks run under rank 0's lock; the record look-up after the lock sees one
                # written meanwhile
                if is_rank_zero() and not locks.take(spec.dir):
                    log.info("skip: %s is running elsewhere", spec.dir)
                    results[i] = BUSY
                    continue
                results[i] = reuse(spec)
                if results[i] is not None:
                    continue
                claim_job_dir(Path(spec.dir), spec.hash, force=bool(spec.cfg.get("force")), config=resolved)
            todo.append(spec)
        except (OEADError, OmegaConfBaseException) as e:
            results[i] = describe(e)
    return todo


def run_jobs(specs: Sequence[JobSpec], fitter: Fitter, record: bool = True) -> list[Result]:
    """Run the jobs with ``fitter``; per job, in input order: its record (new or reused), :data:`BUSY`, or a
    :class:`Failure`. ``record=False`` (the search's fitness): no lock, record or files; outcomes instead."""
    results: list[Result | None] = [None] * len(specs)
    locks = HeldLocks()  # held until every record of this call is written
    try:
        todo = _claim_all(specs, record, locks, results)
        where = {id(spec): i for i, spec in enumerate(specs)}
        for spec, job, outcome in fitter.fit_and_test(todo):
            i = where[id(spec)]
            if isinstance(outcome, BaseException):
                results[i] = describe(outcome)
            elif not record:
                results[i] = outcome
            else:
                results[i] = finish(job, outcome) if outcome.writes else build_record(job, outcome)
    finally:
        locks.release_all()
    return results


def is_rank_zero() -> bool:
    """False in the extra processes of a multi-device (DDP) job, which must not write job files."""
    from pytorch_lightning.utilities import rank_zero_only

    return rank_zero_only.rank == 0

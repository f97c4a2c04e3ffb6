"""Hydra launcher ``launcher=vectorised``: a multirun's compatible jobs train as stacks, one record per job.

Unlike Hydra's basic launcher, which runs the jobs one after another, this one composes every job's config
first, groups the jobs whose configs differ only in seed / normal_class / oe_size, trains each group as
stacks (``trainer.py``), and finishes every job with the single job's code (``train.finish``: ``model.pt``,
``scores.csv``, ``result.json``, the record index, the member's own W&B run; skipping and claiming by
``train.reuse`` / ``train.claim``). Hydra then "runs" each job with a task that reports its AUROC (or writes
its ``error.json``) in its usual folder.
The plugin class Hydra instantiates is ``hydra_plugins.oe_ad_vectorised``.
"""

import copy
import logging
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from ..errors import OEADError
from ..factory import SourceCache, resolve_device
from ..locks import HeldLocks
from ..progress import Progress
from ..results import ERROR_FILE, write_json_atomic
from ..schema import validate_config
from ..train import claim, finish, reuse
from .trainer import plan, prepare_member, train_stack

log = logging.getLogger(__name__)
Result = dict[str, Any] | str  # a record, or the one-line error of a failed job
BUSY = "<running elsewhere>"  # the result of a job another process holds the lock of


def _error(e: Exception) -> str:
    return str(e).splitlines()[0]


class Refused(str):
    """The one-line error of a job the schema refused (nothing of it ran; the sweep summary removes its folder)."""


def train_jobs(
    cfgs: Sequence[DictConfig],
    job_dirs: Sequence[Path],
    device: str = "auto",
    max_models: int | None = None,
    memory_fraction: float = 0.8,
) -> list[Result]:
    """Train every unfinished job vectorised and finish it as a single job is finished (model, record, index);
    return each job's record (new or existing) or error."""
    locks = HeldLocks()  # held until every record of this call is written
    try:
        return _train_locked(cfgs, job_dirs, locks, device, max_models, memory_fraction)
    finally:
        locks.release_all()


def _train_locked(
    cfgs: Sequence[DictConfig],
    job_dirs: Sequence[Path],
    locks: HeldLocks,
    device: str,
    max_models: int | None,
    memory_fraction: float,
) -> list[Result]:
    sources = SourceCache(resolve_device(device))
    results: list[Result | None] = [None] * len(cfgs)
    members, where = [], []
    for i, (cfg, job_dir) in enumerate(zip(cfgs, job_dirs)):
        try:
            validate_config(cfg)  # the one schema, before the lock and the record look-up hash the config
        except (OEADError, OmegaConfBaseException) as e:
            results[i] = Refused(_error(e))
            continue
        try:
            if not locks.take(job_dir):
                results[i] = BUSY
                log.info("job %d is running elsewhere: %s", i, job_dir)
                continue
            results[i] = reuse(cfg, job_dir)  # after the lock: a record written meanwhile is seen
            if results[i] is not None:
                continue
            claim(cfg, job_dir)
            members.append(prepare_member(cfg, sources))
            where.append(i)
        except (OEADError, OmegaConfBaseException) as e:
            results[i] = _error(e)
    try:
        stacks = plan(members, sources.device, memory_fraction, max_models)
    except OEADError as e:
        stacks = []
        for i in where:
            results[i] = str(e)
    with Progress(len(members), "models trained", "models") as bar:
        for stack in stacks:
            log.info("training %d models as one stack on %s", len(stack), sources.device)
            try:
                outcomes: list = train_stack([members[k] for k in stack], sources.device)
            except OEADError as e:
                outcomes = [str(e)] * len(stack)
            except Exception as e:  # one failing stack must not lose the others
                log.exception("stack failed")
                outcomes = [f"{e.__class__.__name__}: {e}"] * len(stack)
            for k, out in zip(stack, outcomes):  # finished as a single job: model, scores, record, W&B run
                i = where[k]
                results[i] = out if isinstance(out, str) else finish(members[k], out, job_dirs[i])
            bar.update(len(stack))
    return results


def _report_result(result: Result, cfg: DictConfig) -> float | None:
    """Hydra's task for one job: its test AUROC, or its error written into its folder as ``run._task`` would."""
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    if result is BUSY:  # another sweep holds this job's lock and writes its record
        return None
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
    if isinstance(result, str):
        print(f"error: {result}", file=sys.stderr, flush=True)
        kind = "refused" if isinstance(result, Refused) else "error"
        write_json_atomic(job_dir / ERROR_FILE, {"error": result, "kind": kind})
        return None
    return result["test_auroc"]


def _task_config(sweep_config: DictConfig) -> tuple[DictConfig, Path]:
    """The config a job's task receives (hydra node removed, resolved) and the job's folder."""
    HydraConfig.instance().set_config(sweep_config)
    job_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    cfg = copy.deepcopy(sweep_config)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.resolve(cfg)
    return cfg, job_dir


def launch(
    hydra_context: HydraContext,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    **options: Any,
) -> list[JobReturn]:
    """The launcher's body (the plugin class lives in ``hydra_plugins.oe_ad_vectorised``, where Hydra wants it)."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    log.info(f"Launching {len(job_overrides)} jobs vectorised")
    sweep_configs = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
        sweep_configs.append(sweep_config)
    cfgs, job_dirs = zip(*(_task_config(sc) for sc in sweep_configs))
    results = train_jobs(cfgs, job_dirs, **options)
    runs = []
    for sweep_config, result in zip(sweep_configs, results):
        runs.append(
            run_job(
                hydra_context=hydra_context,
                task_function=partial(_report_result, result),
                config=sweep_config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
        )
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return runs

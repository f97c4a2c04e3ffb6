"""Hydra launcher ``launcher=vectorised``: a multirun's compatible jobs train as stacks, one record per job.

Unlike Hydra's basic launcher, which runs the jobs one after another, this one composes every job's config
first and runs them all through the one job loop (``train.run_jobs``: validate, lock, reuse, claim, fit, finish)
with the stack fitter (``trainer.StackFitter``), so each job ends exactly as a single job would: the same
``model.pt``, ``scores.csv``, ``result.json`` and W&B run, or the same one-line error and no files. Hydra then
"runs" each job with a task that reports its AUROC (or writes its ``error.json``) in its usual folder.
The plugin class Hydra instantiates is ``hydra_plugins.oe_ad_vectorised``.
"""

import copy
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ..config.factory import SourceCache, resolve_device
from ..job.failure import report
from ..job.loop import BUSY, Failure, JobSpec, Result, run_jobs
from ..job.records import ERROR_FILE
from .trainer import StackFitter

log = logging.getLogger(__name__)


def train_jobs(
    cfgs: Sequence[DictConfig],
    job_dirs: Sequence[Path],
    device: str = "auto",
    max_models: int | None = None,
    memory_fraction: float = 0.8,
) -> list[Result]:
    """Run every job through the job loop with the stack fitter; per job its record (new or existing),
    :data:`~oe_ad.job.loop.BUSY` or its :class:`~oe_ad.job.loop.Failure`."""
    fitter = StackFitter(SourceCache(resolve_device(device)), max_models, memory_fraction)
    return run_jobs([JobSpec(cfg, Path(d)) for cfg, d in zip(cfgs, job_dirs)], fitter)


def _report_result(result: Result, cfg: DictConfig) -> float | None:
    """Hydra's task for one job: its test AUROC, or its error written into its folder as ``run._task`` would
    (``kind``: ``refused`` by the schema, the sweep summary then removes the folder; ``error``; ``crash``)."""
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    if result == BUSY:  # another sweep holds this job's lock and writes its record
        return None
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
    if isinstance(result, Failure):
        report(result, job_dir)
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

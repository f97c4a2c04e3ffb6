"""Hydra launcher ``launcher=vectorised``: a multirun's compatible jobs train as stacks, one record per job.

Unlike Hydra's basic launcher, which runs the jobs one after another, this one composes every job's config
first, groups the jobs whose configs differ only in seed / normal_class / oe_size, trains each group as
stacks (``trainer.py``), and then lets Hydra "run" each job with a task that writes that job's
``result.json`` (or ``error.json``) in its usual folder, so records, reports and skipping finished jobs work
exactly as for single jobs. The plugin class Hydra instantiates is ``hydra_plugins.oe_ad_vectorised``.
"""

import copy
import json
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
from ..loggers import log_member_run
from ..metrics import aupr
from ..results import RECORD_NAME, config_hash, write_json_atomic, write_record
from ..run import ERROR_FILE
from ..scores import write_scores
from ..train import build_record
from .trainer import Member, Outcome, Sources, plan, prepare, resolve_device, train_stack

log = logging.getLogger(__name__)
Result = dict[str, Any] | str  # a record, or the one-line error of a failed job


def finished_record(job_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The job's existing record if it holds this very config (and ``force`` is off)."""
    path = Path(job_dir) / RECORD_NAME
    if cfg.get("force") or not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("config_hash") == config_hash(OmegaConf.to_container(cfg, resolve=True)) else None


def train_jobs(
    cfgs: Sequence[DictConfig],
    job_dirs: Sequence[Path],
    device: str = "auto",
    max_models: int | None = None,
    memory_fraction: float = 0.8,
) -> list[Result]:
    """Train every unfinished job vectorised; return each job's record (new or existing) or error."""
    dev = resolve_device(device)
    sources = Sources(dev)
    results: list[Result | None] = [None] * len(cfgs)
    members, where = [], []
    for i, (cfg, job_dir) in enumerate(zip(cfgs, job_dirs)):
        try:
            results[i] = finished_record(job_dir, cfg)
            if results[i] is None:
                members.append(prepare(cfg, sources))
                where.append(i)
            else:
                log.info("job %d already finished: %s", i, job_dir)
        except (OEADError, OmegaConfBaseException) as e:
            results[i] = str(e).splitlines()[0]
    try:
        stacks = plan(members, dev, memory_fraction, max_models)
    except OEADError as e:
        stacks = []
        for i in where:
            results[i] = str(e)
    for stack in stacks:
        log.info("training %d models as one stack on %s", len(stack), dev)
        try:
            outcomes = train_stack([members[k] for k in stack], dev)
        except OEADError as e:
            outcomes = [str(e)] * len(stack)
        except Exception as e:  # one failing stack must not lose the others
            log.exception("stack failed")
            outcomes = [f"{e.__class__.__name__}: {e}"] * len(stack)
        for k, out in zip(stack, outcomes):
            results[where[k]] = out if isinstance(out, str) else _finish(members[k], out, job_dirs[where[k]])
    return results


def _finish(m: Member, out: Outcome, job_dir: Path) -> dict[str, Any]:
    """A trained member's record; its scores.csv and its W&B run (the same fields as a single job's)."""
    labels = m.datamodule.test_labels.cpu()
    aupr_ = aupr(out.scores, labels)
    record = build_record(m.cfg, m.datamodule, out.test_auroc, out.train_auroc, out.train_time_s, out.device, aupr_)
    write_scores(job_dir, out.scores, labels)  # before the record, as a single job
    log_member_run(m.cfg, job_dir, record, out.scores, labels, out.history, m.steps)  # W&B: one run per member
    return record


def _write_result(result: Result, cfg: DictConfig) -> float | None:
    """Hydra's task for one job: write its record (or error) into its folder, as ``run._task`` would."""
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    (job_dir / ERROR_FILE).unlink(missing_ok=True)
    if isinstance(result, str):
        print(f"error: {result}", file=sys.stderr, flush=True)
        write_json_atomic(job_dir / ERROR_FILE, {"error": result})
        return None
    write_record(job_dir, result)
    log.info(
        "test AUROC %.2f%% (%s, class %d, seed %d, oe_size %s) -> %s",
        100 * result["test_auroc"],
        result["method"],
        result["normal_class"],
        result["seed"],
        result["oe_size"],
        job_dir / "result.json",
    )
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
                task_function=partial(_write_result, result),
                config=sweep_config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
        )
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return runs

"""Hydra launcher ``launcher=vectorised``: a multirun's compatible jobs train as stacks, one record per job.

Unlike Hydra's basic launcher, which runs the jobs one after another, this one composes every job's config
first and runs them all through the one job loop (``job.loop.run_jobs``: validate, lock, reuse, claim, fit, finish)
with the stack fitter (``trainer.StackFitter``), so each job ends exactly as a single job would: the same
``model.pt``, ``scores.csv``, ``result.json`` and W&B run, or the same one-line error and no files. Hydra then
"runs" each job with a task that reports its AUROC (or writes its ``error.json``) in its usual folder.
The plugin class Hydra instantiates is ``hydra_plugins.oe_ad_vectorised``.

``launcher=vectorised_slurm`` (:func:`launch_on_slurm`) runs the same stacks as SLURM array tasks: the submitting
process composes the jobs and groups them as this launcher does (``grouping.group``, cut into stacks of
``max_models`` by ``memory.chunks``), each array task (:class:`StackTask`) runs its stack's jobs through
:func:`train_jobs`, and the submitting process reports every job with the same task, so each ends as under
``launcher=vectorised``. A task that ends without a result (``scancel``, a time limit) gives each of its jobs one
line; re-running the command skips the finished jobs and resumes the others from their ``last.ckpt``.
"""

import copy
import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ..config.factory import SourceCache, resolve_device
from ..errors import Interrupted, OEADError
from ..job.failure import report
from ..job.loop import BUSY, Failure, JobSpec, Result, run_jobs
from ..job.records import ERROR_FILE
from .grouping import group
from .memory import chunks
from .trainer import StackFitter

log = logging.getLogger(__name__)


def train_jobs(
    cfgs: Sequence[DictConfig],
    job_dirs: Sequence[Path],
    device: str = "auto",
    max_models: int | None = None,
    memory_fraction: float = 0.8,
    conv: str = "auto",
) -> list[Result]:
    """Run every job through the job loop with the stack fitter (stacks of the measured fastest size and mode, or of
    ``max_models`` and ``conv`` where given); per job its record (new or existing), :data:`~oe_ad.job.loop.BUSY` or
    its :class:`~oe_ad.job.loop.Failure`."""
    fitter = StackFitter(SourceCache(resolve_device(device)), max_models, memory_fraction, conv)
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


def _sweep_configs(
    hydra_context: HydraContext, config: DictConfig, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> list[DictConfig]:
    """Every job's config as Hydra composes it (with its job number), the sweep folder made."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    sweep_configs = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
        sweep_configs.append(sweep_config)
    return sweep_configs


def _report_all(
    hydra_context: HydraContext, config: DictConfig, sweep_configs: Sequence[DictConfig], results: Sequence[Result]
) -> list[JobReturn]:
    """Hydra "runs" each job with :func:`_report_result`: its folder, its AUROC or its ``error.json``."""
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


def launch(
    hydra_context: HydraContext,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    **options: Any,
) -> list[JobReturn]:
    """The launcher's body (the plugin class lives in ``hydra_plugins.oe_ad_vectorised``, where Hydra wants it)."""
    log.info(f"Launching {len(job_overrides)} jobs vectorised")
    sweep_configs = _sweep_configs(hydra_context, config, job_overrides, initial_job_idx)
    cfgs, job_dirs = zip(*(_task_config(sc) for sc in sweep_configs))
    return _report_all(hydra_context, config, sweep_configs, train_jobs(cfgs, job_dirs, **options))


# -- launcher=vectorised_slurm: one SLURM array task per stack -------------------------------------------------
def slurm_stacks(cfgs: Sequence[DictConfig], max_models: int | None) -> list[list[int]]:
    """The jobs of each array task: the groups of jobs that can share a step (``grouping.group``), each cut into
    near-equal stacks of at most ``max_models`` (``memory.chunks``; None: a group per task), as the local
    launcher cuts them. A task's stack may still be cut further where the node's memory calls for it."""
    stacks = []
    for idx in group(cfgs):
        stacks += [[idx[i] for i in part] for part in chunks(len(idx), max_models or len(idx))]
    return stacks


class StackTask:
    """One SLURM array task: its stack's jobs through :func:`train_jobs`. Checkpointable: on its time limit
    submitit requeues it (``max_num_timeout``), and the jobs resume from their ``last.ckpt``. ``scancel`` (SIGTERM)
    stops it at once, as SIGTERM stops ``launcher=vectorised`` (submitit would let it train on until SIGKILL)."""

    def __call__(self, cfgs: Sequence[DictConfig], job_dirs: Sequence[Path], options: dict[str, Any]) -> list[Result]:
        from ..run import quiet_third_party

        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        quiet_third_party()
        received = _stop_on_signals()
        try:
            results = train_jobs(cfgs, job_dirs, **options)
        except Interrupted:
            results = []
        if received:  # no result: the submitting command says what became of each job
            e = Interrupted(signal.Signals(received[0]).name)
            e.rerun = "resume its jobs from their last.ckpt (finished jobs are skipped)"
            print(f"error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(e.exit_code)
        return [_portable(r) for r in results]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _stop_on_signals() -> list[int]:
    """SIGTERM (``scancel``) raises :class:`~oe_ad.errors.Interrupted`; submitit's requeue signal (USR1/USR2) runs
    submitit's handler, which requeues the task and exits. The signals received are remembered in the list returned:
    an exception raised inside ``torch.save`` or caught by the stack fitter as a failed stack does not get out, and
    the task must still end without a result."""
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    for requeue in (signal.SIGUSR1, signal.SIGUSR2):
        submitits = signal.getsignal(requeue)
        if callable(submitits):

            def remember(signum: int, frame: Any, handler: Any = submitits) -> None:
                received.append(signum)
                handler(signum, frame)

            signal.signal(requeue, remember)
    return received


def _portable(result: Result) -> Result:
    """A result that pickles back to the submitting process: a failure keeps its line and kind, not its exception
    (which may hold what does not pickle)."""
    return Failure(result.message, OEADError(result.message), result.kind) if isinstance(result, Failure) else result


def launch_on_slurm(
    hydra_context: HydraContext,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    options: dict[str, Any],
    slurm: dict[str, Any],
) -> list[JobReturn]:
    """``launcher=vectorised_slurm``: the stacks as one array (a task per stack, at most ``array_parallelism`` at
    once), waited for; then every job reported as :func:`launch` reports it."""
    from ..cli import slurm as cluster

    if slurm.get("tasks_per_node", 1) != 1 or slurm.get("nodes", 1) != 1:
        raise OEADError("launcher=vectorised_slurm trains a stack in one process: tasks_per_node=1 and nodes=1")
    sweep_configs = _sweep_configs(hydra_context, config, job_overrides, initial_job_idx)
    cfgs, job_dirs = zip(*(_task_config(sc) for sc in sweep_configs))
    stacks = slurm_stacks(cfgs, options.get("max_models"))
    log.info(f"Submitting {len(job_overrides)} jobs as {len(stacks)} stacks, one SLURM array task each")
    log.info(f"Submitit 'slurm' sweep output dir : {config.hydra.sweep.dir}")
    jobs = cluster.executor(slurm).map_array(
        StackTask(),
        [[cfgs[i] for i in stack] for stack in stacks],
        [[job_dirs[i] for i in stack] for stack in stacks],
        [options] * len(stacks),
    )
    results: list[Result | None] = [None] * len(cfgs)
    for stack, end in zip(stacks, cluster.wait_for(jobs)):
        for k, i in enumerate(stack):
            if end.line is None:
                results[i] = end.value[k]
            else:
                results[i] = Failure(end.message, OEADError(end.message), end.kind)
    return _report_all(hydra_context, config, sweep_configs, results)

"""Hydra plugin behind ``launcher=slurm``: hydra-submitit-launcher's SLURM launcher (same options, one array task
per job, the launcher itself the task), waiting for the array through ``oe_ad.cli.slurm``: the tasks' states come from
the controller when accounting is off, and a task that ends without a result (``scancel``, a time limit without
requeue) becomes its job's one-line error instead of a traceback that abandons the other tasks.

Hydra imports this at every start-up, so it stays light; without the ``launchers`` extra it registers nothing.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

try:
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
except ImportError:  # hydra-submitit-launcher is not installed: launcher=slurm cannot compose
    SubmititSlurmLauncher = None

if SubmititSlurmLauncher is not None:

    @dataclass
    class SlurmLauncherConf(SlurmQueueConf):
        _target_: str = "hydra_plugins.oe_ad_slurm.SlurmLauncher"

    ConfigStore.instance().store(group="hydra/launcher", name="oe_ad_slurm", node=SlurmLauncherConf)

    class SlurmLauncher(SubmititSlurmLauncher):
        """hydra-submitit-launcher's, but waiting for every task (``oe_ad.cli.slurm.launch_jobs``)."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            from oe_ad.cli.slurm import launch_jobs

            return launch_jobs(self, job_overrides, initial_job_idx)

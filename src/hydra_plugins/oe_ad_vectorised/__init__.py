"""Hydra plugins behind ``launcher=vectorised`` and ``launcher=vectorised_slurm`` (Hydra instantiates launchers only
from ``hydra_plugins``).

Hydra imports this at every start-up, so it stays light; the work is in ``oe_ad.vectorised.launcher``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from oe_ad.errors import OEADError
from oe_ad.vectorised import CONV_MODES

try:  # the SLURM options are hydra-submitit-launcher's (the `launchers` extra)
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
except ImportError:
    SlurmQueueConf = None


@dataclass
class VectorisedLauncherConf:
    _target_: str = "hydra_plugins.oe_ad_vectorised.VectorisedLauncher"
    device: str = "auto"  # auto (the GPU when there is one) | cpu | cuda | cuda:N
    max_models: int | None = None  # models per stack (None: the fastest size, measured; memory bounds both)
    memory_fraction: float = 0.8  # share of the free device memory (host RAM on CPU) a stack may use
    conv: str = "auto"  # auto (the faster, measured) | split | grouped


ConfigStore.instance().store(group="hydra/launcher", name="oe_ad_vectorised", node=VectorisedLauncherConf)


class VectorisedLauncher(Launcher):
    """Trains a multirun's compatible jobs as stacks of models; one record per job as usual."""

    def __init__(
        self, device: str = "auto", max_models: int | None = None, memory_fraction: float = 0.8, conv: str = "auto"
    ) -> None:
        if conv not in CONV_MODES:
            raise OEADError(f"hydra.launcher.conv={conv}: must be one of {', '.join(CONV_MODES)}")
        if max_models is not None and max_models < 1:
            raise OEADError(f"hydra.launcher.max_models={max_models}: must be at least 1 (or null: measured)")
        self.options = dict(device=device, max_models=max_models, memory_fraction=memory_fraction, conv=conv)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from oe_ad.vectorised.launcher import launch

        return launch(self.hydra_context, self.config, job_overrides, initial_job_idx, **self.options)


if SlurmQueueConf is not None:

    @dataclass
    class VectorisedSlurmLauncherConf(SlurmQueueConf):
        """hydra-submitit-launcher's SLURM options plus the stacks': ``max_models`` is also the most jobs per task."""

        _target_: str = "hydra_plugins.oe_ad_vectorised.VectorisedSlurmLauncher"
        device: str = "auto"
        max_models: int | None = None
        memory_fraction: float = 0.8
        conv: str = "auto"

    ConfigStore.instance().store(
        group="hydra/launcher", name="oe_ad_vectorised_slurm", node=VectorisedSlurmLauncherConf
    )


class VectorisedSlurmLauncher(VectorisedLauncher):
    """Trains the stacks as SLURM array tasks, one stack per task; one record per job as usual."""

    def __init__(
        self,
        device: str = "auto",
        max_models: int | None = None,
        memory_fraction: float = 0.8,
        conv: str = "auto",
        **slurm: Any,
    ) -> None:
        super().__init__(device, max_models, memory_fraction, conv)
        self.slurm = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in slurm.items()
        }

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from oe_ad.vectorised.launcher import launch_on_slurm

        return launch_on_slurm(
            self.hydra_context, self.config, job_overrides, initial_job_idx, self.options, self.slurm
        )

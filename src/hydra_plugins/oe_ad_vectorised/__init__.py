"""Hydra plugin behind ``launcher=vectorised`` (Hydra instantiates launchers only from ``hydra_plugins``).

Hydra imports this at every start-up, so it stays light; the work is in ``oe_ad.vectorised.launcher``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class VectorisedLauncherConf:
    _target_: str = "hydra_plugins.oe_ad_vectorised.VectorisedLauncher"
    device: str = "auto"  # auto (the GPU when there is one) | cpu | cuda | cuda:N
    max_models: int | None = None  # at most this many models per stack (None: as many as fit)
    memory_fraction: float = 0.8  # share of the free device memory (host RAM on CPU) a stack may use


ConfigStore.instance().store(group="hydra/launcher", name="oe_ad_vectorised", node=VectorisedLauncherConf)


class VectorisedLauncher(Launcher):
    """Trains a multirun's compatible jobs as stacks of models; one record per job as usual."""

    def __init__(self, device: str = "auto", max_models: int | None = None, memory_fraction: float = 0.8) -> None:
        self.options = dict(device=device, max_models=max_models, memory_fraction=memory_fraction)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from oe_ad.vectorised.launcher import launch

        return launch(self.hydra_context, self.config, job_overrides, initial_job_idx, **self.options)

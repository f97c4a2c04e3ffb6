"""Fitness of single OE images: ``fitness(candidates) -> AUCs``, one call per generation.

A fitness is any callable ``(candidates: list[int]) -> list[float]`` taking indices into the OE pool and
returning, per image, the mean test AUC (a fraction) of models trained with that image as the only OE sample,
over ``search.seeds``. It is made by a factory ``factory(cfg, pool) -> fitness`` chosen by ``search.fitness``:
a name in :data:`FACTORIES` or a ``"package.module:factory"`` path (how other trainers plug in).
"""

import importlib
import logging
from collections.abc import Callable

import numpy as np
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..data.sources import OEPool, SubsetPool, load_in_order  # noqa: F401  (re-exported for the search)
from ..errors import OEADError
from ..progress import Progress
from ..train import build, build_datamodule, build_method

Fitness = Callable[[list[int]], list[float]]
FACTORIES = {
    "sequential": "oe_ad.search.fitness:SequentialFitness",
    "vectorised": "oe_ad.vectorised.fitness:search_fitness",
}


class LoadedSource:
    """A normal dataset decoded once and shared by every fitness evaluation."""

    def __init__(self, source) -> None:
        self.source, self._splits = source, None

    @property
    def classes(self) -> list[str]:
        return self.source.classes

    def load(self):
        if self._splits is None:
            self._splits = self.source.load()
        return self._splits


class SequentialFitness:
    """One Lightning training per (image, seed), in this process, with the job's data, method and schedule."""

    def __init__(self, cfg: DictConfig, pool: OEPool) -> None:
        self.cfg, self.pool = cfg, pool
        self.normal = LoadedSource(
            build({k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k != "name"})
        )
        self.seeds = list(cfg.search.seeds)
        for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)  # a search trains thousands of models

    @property
    def classes(self) -> list[str]:
        return list(self.normal.classes)

    def __call__(self, candidates: list[int]) -> list[float]:
        with Progress(len(candidates) * len(self.seeds), "generation: models trained", "models") as bar:
            aucs = []
            for i in candidates:
                aucs.append(float(np.mean([self.evaluate(int(i), s) for s in self.seeds])))
                bar.update(len(self.seeds))
        return aucs

    def evaluate(self, index: int, seed: int) -> float:
        """Test AUC of one model trained from scratch with pool image ``index`` as its only OE sample."""
        cfg = OmegaConf.merge(self.cfg, {"seed": seed, "oe_size": None})
        pl.seed_everything(seed, workers=True, verbose=False)
        method = build_method(cfg)
        datamodule = build_datamodule(cfg, normal=self.normal, oe=SubsetPool(self.pool, [index]))
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
        datamodule.trainer = trainer
        if cfg.epochs > 0:
            trainer.fit(method, datamodule=datamodule)
        trainer.test(method, datamodule=datamodule, verbose=False)
        return float(trainer.callback_metrics["test/auroc"])


def make_fitness(cfg: DictConfig, pool: OEPool) -> Fitness:
    """The fitness named by ``cfg.search.fitness`` (a registered name or ``module:factory``)."""
    name = cfg.search.fitness
    path = FACTORIES.get(name, name)
    module, sep, attr = path.partition(":")
    if not sep:
        raise OEADError(f"search.fitness={name}: choose from {', '.join(FACTORIES)} or give 'module:factory'")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise OEADError(f"search.fitness={name}: cannot import {path} ({e})") from None
    return factory(cfg, pool)

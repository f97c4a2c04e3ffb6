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
from ..factory import SourceCache
from ..progress import Progress
from ..train import fit_and_test, prepare

Fitness = Callable[[list[int]], list[float]]
FACTORIES = {
    "sequential": "oe_ad.search.fitness:SequentialFitness",
    "vectorised": "oe_ad.vectorised.fitness:search_fitness",
}


class SequentialFitness:
    """One Lightning training per (image, seed), in this process, built and trained as a single job is."""

    def __init__(self, cfg: DictConfig, pool: OEPool) -> None:
        self.cfg, self.pool = cfg, pool
        self.sources = SourceCache()  # the normal data, decoded once for every evaluation
        self.seeds = list(cfg.search.seeds)
        for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)  # a search trains thousands of models

    @property
    def classes(self) -> list[str]:
        return list(self.sources.normal(self.cfg).classes)

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
        job = prepare(cfg, self.sources, SubsetPool(self.pool, [index]))
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
        return fit_and_test(job, trainer).test_auroc


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

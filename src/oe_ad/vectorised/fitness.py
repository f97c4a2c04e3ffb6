"""Fitness of single OE images for the evolutionary / random search, trained vectorised.

``VectorisedFitness(cfg, seeds)([i, j, ...])`` trains one model per (candidate, seed) -- normal class
``cfg.normal_class``, the configured method and schedule, and the single pool image as its whole OE set --
all at once (in as few stacks as memory allows), and returns each candidate's test AUROC (a fraction)
averaged over the seeds. Results are cached per candidate, so a candidate seen in an earlier generation is
not trained again.
"""

from collections.abc import Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from ..data.sources import OEPool, SubsetPool
from ..errors import OEADError
from ..factory import SourceCache, resolve_device
from ..schema import check_searchable
from .trainer import prepare_member, train_all


class VectorisedFitness:
    """``fitness(candidates: list[int]) -> list[float]`` over indices of ``pool`` (default: the configured one),
    for one normal class."""

    def __init__(
        self,
        cfg: DictConfig,
        seeds: Sequence[int],
        device: str = "auto",
        max_models: int | None = None,
        memory_fraction: float = 0.8,
        pool: OEPool | None = None,
    ) -> None:
        check_searchable(cfg)
        if not seeds:
            raise OEADError("the fitness needs at least one seed")
        self.cfg, self.seeds = cfg, list(seeds)
        self.device = resolve_device(device)
        self.max_models, self.memory_fraction = max_models, memory_fraction
        self.sources = SourceCache(self.device)  # the normal data, on the device once for every model
        self.pool = pool if pool is not None else self.sources.oe(cfg)
        self.cache: dict[int, float] = {}
        self.models_trained = 0

    def _job(self, seed: int) -> DictConfig:
        cfg = OmegaConf.create(OmegaConf.to_container(self.cfg, resolve=True))
        with open_dict(cfg):
            cfg.seed, cfg.oe_size = seed, None  # the whole one-image pool
        return cfg

    def __call__(self, candidates: Sequence[int]) -> list[float]:
        todo = sorted({int(c) for c in candidates} - self.cache.keys())
        for c in todo:
            if not 0 <= c < len(self.pool):
                raise OEADError(f"candidate {c} is outside the OE pool (0..{len(self.pool) - 1})")
        pairs = [(c, s) for c in todo for s in self.seeds]
        members = [prepare_member(self._job(s), self.sources, SubsetPool(self.pool, [c])) for c, s in pairs]
        outcomes = train_all(members, self.device, self.memory_fraction, self.max_models)
        self.models_trained += len(members)
        for c in todo:
            self.cache[c] = float(np.mean([o.test_auroc for (cc, _), o in zip(pairs, outcomes) if cc == c]))
        return [self.cache[int(c)] for c in candidates]


def search_fitness(cfg: DictConfig, pool: OEPool) -> VectorisedFitness:
    """The search's fitness factory (``search.fitness=vectorised``): every candidate x seed of a generation
    trains in one stack, with OE images from the search's own ``pool``."""
    return VectorisedFitness(cfg, list(cfg.search.seeds), pool=pool)

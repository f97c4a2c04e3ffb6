"""Fitness of single OE images for the evolutionary / random search, trained vectorised.

``VectorisedFitness(cfg, pool)([i, j, ...])`` trains one model per (candidate, seed) -- normal class
``cfg.normal_class``, the configured method and schedule, and the single pool image as its whole OE set --
all at once (in as few stacks as memory allows) through the job loop, and returns each candidate's test AUROC
(a fraction) averaged over the seeds. Results are cached per candidate, so a candidate seen in an earlier
generation is not trained again. Selected in a search with ``search/fitness=vectorised``.
"""

from collections.abc import Sequence

import numpy as np
from omegaconf import DictConfig

from ..config.factory import SourceCache, resolve_device
from ..data.pools import OEPool
from ..errors import OEADError
from ..job.loop import run_jobs
from ..search.fitness import fitness_aurocs, fitness_jobs
from .trainer import StackFitter


class VectorisedFitness:
    """``fitness(candidates: list[int]) -> list[float]`` over indices of ``pool`` (default: the configured one),
    for one normal class; ``seeds`` default to ``search.seeds``."""

    def __init__(
        self,
        cfg: DictConfig,
        pool: OEPool | None = None,
        seeds: Sequence[int] | None = None,
        device: str = "auto",
        max_models: int | None = None,
        memory_fraction: float = 0.8,
    ) -> None:
        self.cfg = cfg
        self.seeds = list(seeds if seeds is not None else cfg.search.seeds)
        if not self.seeds:
            raise OEADError("the fitness needs at least one seed")
        self.sources = SourceCache(resolve_device(device))  # the normal data, on the device once for every model
        self.fitter = StackFitter(self.sources, max_models, memory_fraction)
        self.pool = pool if pool is not None else self.sources.oe(cfg)
        self.cache: dict[int, float] = {}
        self.models_trained = 0

    @property
    def classes(self) -> list[str]:
        return list(self.sources.normal(self.cfg).classes)

    def __call__(self, candidates: Sequence[int]) -> list[float]:
        todo = sorted({int(c) for c in candidates} - self.cache.keys())
        for c in todo:
            if not 0 <= c < len(self.pool):
                raise OEADError(f"candidate {c} is outside the OE pool (0..{len(self.pool) - 1})")
        specs = [spec for c in todo for spec in fitness_jobs(self.cfg, self.pool, c, self.seeds)]
        aucs = fitness_aurocs(run_jobs(specs, self.fitter, record=False))
        self.models_trained += len(specs)
        for k, c in enumerate(todo):
            self.cache[c] = float(np.mean(aucs[k * len(self.seeds) : (k + 1) * len(self.seeds)]))
        return [self.cache[int(c)] for c in candidates]

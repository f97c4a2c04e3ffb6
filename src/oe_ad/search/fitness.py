"""Fitness of single OE images: ``fitness(candidates) -> AUCs``, one call per generation.

A fitness is any callable ``(candidates: list[int]) -> list[float]`` taking indices into the OE pool and
returning, per image, the mean test AUC (a fraction) of models trained with that image as the only OE sample,
over ``search.seeds``. It is built from the Hydra node ``search.fitness`` (``conf/search/fitness/``: a
``_target_`` with ``_partial_: true``, called with ``cfg=`` and ``pool=``), so another trainer plugs in as a
config. Both fitnesses of the package train through the job loop (``job.loop.run_jobs``) without its record steps.
"""

from collections.abc import Callable

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..config.factory import SourceCache
from ..data.pools import OEPool, SubsetPool
from ..errors import OEADError
from ..job.loop import Failure, JobSpec, Outcome, run_jobs
from ..progress import Progress

Fitness = Callable[[list[int]], list[float]]


def fitness_jobs(cfg: DictConfig, pool: OEPool, index: int, seeds: list[int]) -> list[JobSpec]:
    """One job per seed: the search's config with pool image ``index`` as its whole OE set."""
    one = SubsetPool(pool, [index])
    return [JobSpec(OmegaConf.merge(cfg, {"seed": s, "oe_size": None}), oe_pool=one) for s in seeds]


def fitness_aurocs(results: list) -> list[float]:
    """The test AUROCs of fitness jobs; the first failure (e.g. a diverged model) ends the search in one line."""
    for r in results:
        if isinstance(r, Failure):
            raise r.error
    return [r.test_auroc for r in results if isinstance(r, Outcome)]


class SequentialFitness:
    """One Lightning training per (image, seed), in this process, built and trained as a single job is."""

    def __init__(self, cfg: DictConfig, pool: OEPool) -> None:
        from ..job.lightning import LightningFitter

        self.cfg, self.pool = cfg, pool
        self.sources = SourceCache()  # the normal data, decoded once for every evaluation
        self.seeds = list(cfg.search.seeds)
        self.fitter = LightningFitter(self.sources, record=False)

    @property
    def classes(self) -> list[str]:
        return list(self.sources.normal(self.cfg).classes)

    def __call__(self, candidates: list[int]) -> list[float]:
        with Progress(len(candidates) * len(self.seeds), "generation: models trained", "models") as bar:
            aucs = []
            for i in candidates:
                aucs.append(float(np.mean(self.evaluate(int(i), self.seeds))))
                bar.update(len(self.seeds))
        return aucs

    def evaluate(self, index: int, seeds: list[int]) -> list[float]:
        """Test AUCs of models trained from scratch with pool image ``index`` as their only OE sample."""
        return fitness_aurocs(run_jobs(fitness_jobs(self.cfg, self.pool, index, seeds), self.fitter, record=False))


def make_fitness(cfg: DictConfig, pool: OEPool) -> Fitness:
    """The fitness the ``search.fitness`` node names, for this search's config and OE pool."""
    try:
        factory = instantiate(cfg.search.fitness)
        return factory(cfg=cfg, pool=pool)
    except InstantiationException as e:
        if isinstance(e.__cause__, OEADError):
            raise e.__cause__ from None
        target = OmegaConf.select(cfg, "search.fitness._target_", default=None)
        raise OEADError(f"search.fitness._target_={target}: cannot build it ({str(e).splitlines()[0]})") from None

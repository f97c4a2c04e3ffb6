"""Pure random search (the paper's baseline): evaluate random single OE images, keep the fittest."""

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from ..data.pools import OEPool
from .evolution import log_generation
from .fitness import Fitness
from .state import SearchState


def random_search(
    cfg: DictConfig, pool: OEPool, fitness: Fitness, out_dir: Path, rng: np.random.Generator
) -> SearchState:
    """Evaluate ``search.evaluations`` random images (default: evolution's budget) in chunks of one generation,
    saving after each; the final generation is the ``generation_size`` fittest of them."""
    state = SearchState.load(out_dir) or SearchState("random", cfg.direction)
    state.restore_rng(rng)
    if not state.plan:
        total = cfg.evaluations or cfg.generation_size * (cfg.generations + 1)
        state.plan = [int(i) for i in rng.choice(len(pool), size=min(total, len(pool)), replace=False)]
    size = cfg.generation_size
    chunks = [state.plan[i : i + size] for i in range(0, len(state.plan), size)]
    for gen in range(state.generation + 1, len(chunks)):
        nodes = [state.add(i, gen, "random") for i in chunks[gen]]
        state.evaluate(fitness, chunks[gen])
        state.population = state.ranked(state.population + nodes)[:size]
        state.generation = gen
        state.save(out_dir, rng)
        log_generation(state)
    return state

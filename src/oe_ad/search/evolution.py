"""The paper's Algorithm 1 (docs/protocol.md): tournament selection, mating, mutation among L2-nearest OE images."""

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from ..data.pools import OEPool, load_in_order
from .fitness import Fitness
from .state import SearchState

log = logging.getLogger(__name__)


def nearest_candidates(
    pool: OEPool, anchors: list[int], rng: np.random.Generator, candidates: int, nearest: int, chunk: int = 1024
) -> np.ndarray:
    """The ``nearest`` of ``candidates`` random pool images with the smallest summed L2 pixel distance to the
    anchor images (the anchors themselves excluded)."""
    n = min(candidates, len(pool))
    drawn = rng.choice(len(pool), size=n, replace=False)
    drawn = drawn[~np.isin(drawn, anchors)]
    ref = load_in_order(pool, np.asarray(anchors)).flatten(1).float()
    dist = torch.empty(len(drawn), dtype=torch.float64)
    for i in range(0, len(drawn), chunk):
        x = load_in_order(pool, drawn[i : i + chunk]).flatten(1).float()
        dist[i : i + chunk] = torch.cdist(x, ref).sum(1).double()
    order = torch.argsort(dist, stable=True).numpy()
    return drawn[order[: min(nearest, len(drawn))]]


def select(state: SearchState, rng: np.random.Generator, tournament: int) -> list[int]:
    """Each member is replaced by the fittest of ``tournament`` members drawn at random."""
    pop = state.population
    picks = rng.integers(0, len(pop), size=(len(pop), tournament))
    return [max((pop[j] for j in row), key=state.key) for row in picks]


def mate(state: SearchState, pop: list[int], rng: np.random.Generator, cfg: DictConfig, pool: OEPool, gen: int) -> None:
    """Each pair (i, i+1) is, with probability ``mating``, replaced by two images near both parents."""
    for i in range(0, len(pop) - 1, 2):
        if rng.random() < cfg.mating:
            a, b = pop[i], pop[i + 1]
            near = nearest_candidates(pool, [state.image(a), state.image(b)], rng, cfg.candidates, cfg.nearest)
            children = rng.choice(near, size=2, replace=len(near) < 2)
            pop[i], pop[i + 1] = (state.add(c, gen, "mate", [a, b]) for c in children)


def mutate(
    state: SearchState, pop: list[int], rng: np.random.Generator, cfg: DictConfig, pool: OEPool, gen: int
) -> None:
    """Each member is, with probability ``mutation``, replaced by one of its nearest images."""
    for i, node in enumerate(pop):
        if rng.random() < cfg.mutation:
            near = nearest_candidates(pool, [state.image(node)], rng, cfg.candidates, cfg.nearest)
            pop[i] = state.add(rng.choice(near), gen, "mutate", [node])


def evolve(cfg: DictConfig, pool: OEPool, fitness: Fitness, out_dir: Path, rng: np.random.Generator) -> SearchState:
    """Run (or continue) Algorithm 1; the state is saved after the initial and every later generation."""
    state = SearchState.load(out_dir) or SearchState("evolution", cfg.direction)
    state.restore_rng(rng)
    if state.generation < 0:
        size = min(cfg.generation_size, len(pool))
        state.population = [state.add(i, 0, "init") for i in rng.choice(len(pool), size=size, replace=False)]
        state.evaluate(fitness, [state.image(n) for n in state.population])
        state.generation = 0
        state.save(out_dir, rng)
        log_generation(state)
    for gen in range(state.generation + 1, cfg.generations + 1):
        pop = select(state, rng, cfg.tournament)
        mate(state, pop, rng, cfg, pool, gen)
        mutate(state, pop, rng, cfg, pool, gen)
        state.evaluate(fitness, [state.image(n) for n in pop])
        state.population, state.generation = pop, gen
        state.save(out_dir, rng)
        log_generation(state)
    return state


def log_generation(state: SearchState) -> None:
    values = [state.fitness(n) for n in state.population]
    best = max(values) if state.direction == "max" else min(values)
    log.info(
        "generation %d: %s AUC %.2f%%, mean %.2f%% (%d images evaluated)",
        state.generation,
        "best" if state.direction == "max" else "worst",
        100 * best,
        100 * float(np.mean(values)),
        len(state.cache),
    )

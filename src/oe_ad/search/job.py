"""One search job: build the OE pool and the fitness, run (or resume) the search, write its outputs.

Outputs in the job folder: ``state.json`` (resumable state), ``final_generation.json`` (distinct images of the
final generation, fittest first), ``final_images.npy`` (those images, uint8 NHWC), ``family_tree.json`` (every
individual, its parents and fitness) and ``search.json`` (the record the report reads). The search draws nothing:
``python -m oe_ad.report`` draws each search's ``final_generation.png`` (its images with their AUCs) from these.
"""

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from ..config.factory import SourceCache
from ..config.factory import validate as validate_job
from ..data.pools import OEPool, load_in_order
from ..job.records import SEARCH_RECORD_NAME, config_hash, write_json_atomic
from . import ALGORITHMS
from .fitness import Fitness, make_fitness
from .state import SearchState

log = logging.getLogger(__name__)


def run_search(
    cfg: DictConfig, out_dir: Path, pool: OEPool | None = None, fitness: Fitness | None = None, validated: bool = False
) -> dict[str, Any]:
    """Run or resume the configured search in ``out_dir``; return its record (also ``search.json``).
    ``validated``: the config has passed the schema already (the command checks it first)."""
    validate_job(cfg, schema=not validated)  # the schema (unless passed) and the data fingerprints, as every job
    out_dir = Path(out_dir)
    pool = pool if pool is not None else SourceCache().oe(cfg)
    fitness = fitness if fitness is not None else make_fitness(cfg, pool)
    # one stream per (seed, class): classes of one sweep start from different random images
    rng = np.random.default_rng([cfg.seed, cfg.normal_class])
    t0 = time.perf_counter()
    state = get_method(ALGORITHMS[cfg.search.algorithm])(cfg.search, pool, fitness, out_dir, rng)
    return write_outputs(cfg, state, pool, out_dir, getattr(fitness, "classes", None), time.perf_counter() - t0)


def write_outputs(
    cfg: DictConfig, state: SearchState, pool: OEPool, out_dir: Path, classes: list[str] | None, seconds: float
) -> dict[str, Any]:
    final = state.ranked(state.population)
    images = load_in_order(pool, np.array([state.image(n) for n in final], dtype=np.int64))
    np.save(out_dir / "final_images.npy", images.permute(0, 2, 3, 1).numpy())
    write_json_atomic(out_dir / "family_tree.json", state.family_tree())
    ranking = [{"node": n, "image": state.image(n), "fitness": state.fitness(n)} for n in final]
    write_json_atomic(out_dir / "final_generation.json", ranking)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    record = {
        "kind": "search",
        "config_hash": config_hash(resolved),
        "algorithm": state.algorithm,
        "direction": state.direction,
        "method": cfg.method.name,
        "data": cfg.data.name,
        "oe": cfg.oe.name,
        "filter": None if not cfg.get("filter") else f"{cfg.filter.kind}{cfg.filter.magnitude}",
        "normal_class": cfg.normal_class,
        "class_name": classes[cfg.normal_class] if classes else str(cfg.normal_class),
        "seed": cfg.seed,
        "generation": state.generation,
        "evaluations": len(state.cache),
        "best_image": ranking[0]["image"],
        "best_fitness": ranking[0]["fitness"],
        "final_mean_fitness": float(np.mean([state.fitness(n) for n in state.population])),
        "search_time_s": seconds,
        "config": resolved,
    }
    write_json_atomic(out_dir / SEARCH_RECORD_NAME, record)
    log.info(
        "%s search (%s) done: %s AUC %.2f%% with pool image %d -> %s",
        state.algorithm,
        state.direction,
        "best" if state.direction == "max" else "worst",
        100 * record["best_fitness"],
        record["best_image"],
        out_dir / SEARCH_RECORD_NAME,
    )
    return record

"""Evolutionary and random search for single OE images: operators, resumption, outputs, errors."""

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import tiny_overrides
from oe_ad.config import CONF_DIR
from oe_ad.data.pools import NpyPool, SubsetPool, load_in_order
from oe_ad.errors import OEADError
from oe_ad.report.figures import search_generation_figures
from oe_ad.search.evolution import nearest_candidates
from oe_ad.search.fitness import make_fitness
from oe_ad.search.job import run_search
from oe_ad.search.state import STATE_NAME, SearchState


def search_cfg(folder_root, oe_npy, out, *overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "search",
            overrides=[
                *tiny_overrides(folder_root, oe_npy, out),
                "epochs=1",
                "milestones=[1]",
                "augment=false",
                "search.generation_size=4",
                "search.generations=2",
                "search.candidates=32",
                "search.nearest=5",
                "search.mating=0.5",
                "normal_class=1",
                *overrides,
            ],
        )


class PixelFitness:
    """A cheap deterministic fitness: mean brightness of the image (stands in for an AUC)."""

    def __init__(self, pool, fail_on_call: int | None = None):
        self.pool, self.calls, self.fail_on_call, self.seen = pool, 0, fail_on_call, []

    def __call__(self, candidates):
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise KeyboardInterrupt("interrupted")
        self.seen.append(list(candidates))
        return [float(load_in_order(self.pool, np.array([c])).float().mean() / 255) for c in candidates]


def outputs(out) -> dict:
    return {
        name: json.loads((out / name).read_text()) for name in (STATE_NAME, "family_tree.json", "final_generation.json")
    }


def test_nearest_candidates_are_the_closest_images(oe_npy):
    pool = NpyPool(str(oe_npy))
    rng = np.random.default_rng(0)
    near = nearest_candidates(pool, [5], rng, candidates=64, nearest=3)
    images = load_in_order(pool, np.arange(64)).flatten(1).float()
    dist = torch.cdist(images, images[5:6]).squeeze(1)
    dist[5] = float("inf")  # the anchor itself is excluded
    assert set(near.tolist()) == set(torch.argsort(dist)[:3].tolist())


def test_subset_pool_keeps_the_requested_order(oe_npy):
    pool = NpyPool(str(oe_npy))
    sub = SubsetPool(pool, [9, 2])
    assert torch.equal(sub.load(np.array([0, 1])), load_in_order(pool, np.array([9, 2])))
    assert torch.equal(sub.load(np.array([0]))[0], pool.load(np.array([9]))[0])


@pytest.mark.parametrize("algorithm", ["evolution", "random"])
def test_interrupted_search_resumes_to_the_same_final_state(folder_root, oe_npy, tmp_path, algorithm):
    pool = NpyPool(str(oe_npy))
    opts = (f"search.algorithm={algorithm}", "search.evaluations=10")
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full = run_search(search_cfg(folder_root, oe_npy, tmp_path, *opts), full_dir, pool, PixelFitness(pool))
    with pytest.raises(KeyboardInterrupt):  # dies while evaluating generation 1
        run_search(search_cfg(folder_root, oe_npy, tmp_path, *opts), resumed_dir, pool, PixelFitness(pool, 2))
    assert json.loads((resumed_dir / STATE_NAME).read_text())["generation"] == 0
    again = PixelFitness(pool)
    resumed = run_search(search_cfg(folder_root, oe_npy, tmp_path, *opts), resumed_dir, pool, again)
    assert outputs(full_dir) == outputs(resumed_dir)
    assert full["best_fitness"] == resumed["best_fitness"] and full["best_image"] == resumed["best_image"]
    # the rerun evaluated no image twice: the cache from before the interruption was reused
    evaluated = [c for call in again.seen for c in call]
    assert len(evaluated) == len(set(evaluated))
    state = SearchState.load(full_dir)
    assert state.generation == (2 if algorithm == "evolution" else 2)
    assert np.load(full_dir / "final_images.npy").shape[1:] == (32, 32, 3)
    assert not (full_dir / "final_generation.png").exists()  # the search writes records; the report draws
    assert search_generation_figures(tmp_path) == [
        full_dir / "final_generation.png",
        resumed_dir / "final_generation.png",
    ]
    assert (full_dir / "final_generation.png").stat().st_size > 1000
    assert search_generation_figures(tmp_path) == []  # drawn already, and not older than its record


def test_evolution_maximises_and_minimises_with_a_family_tree(folder_root, oe_npy, tmp_path):
    pool = NpyPool(str(oe_npy))
    brightness = PixelFitness(pool)([int(i) for i in range(len(pool))])
    for direction in ("max", "min"):
        out = tmp_path / direction
        cfg = search_cfg(folder_root, oe_npy, tmp_path, f"search.direction={direction}", "search.generations=4")
        record = run_search(cfg, out, pool, PixelFitness(pool))
        tree = json.loads((out / "family_tree.json").read_text())
        nodes = {n["id"]: n for n in tree["nodes"]}
        assert all(p < n["id"] for n in tree["nodes"] for p in n["parents"])  # parents exist before children
        assert {n["op"] for n in tree["nodes"]} <= {"init", "mate", "mutate"} and tree["final"]
        first = [n["fitness"] for n in tree["nodes"] if n["generation"] == 0]
        final = [nodes[i]["fitness"] for i in tree["final"]]
        if direction == "max":
            assert record["best_fitness"] >= max(first) and np.mean(final) >= np.mean(first)
        else:
            assert record["best_fitness"] <= min(first) and np.mean(final) <= np.mean(first)
        assert min(brightness) <= record["best_fitness"] <= max(brightness)


def test_tournament_of_one_member_keeps_the_population(folder_root, oe_npy, tmp_path):
    pool = NpyPool(str(oe_npy))
    cfg = search_cfg(folder_root, oe_npy, tmp_path, "search.mating=0", "search.mutation=0", "search.tournament=1")
    run_search(cfg, tmp_path / "s", pool, PixelFitness(pool))
    state = SearchState.load(tmp_path / "s")
    assert len(state.nodes) == 4  # no children were made: every member descends from the initial four


def test_bad_search_options_are_one_line_errors(folder_root, oe_npy, tmp_path):
    pool = NpyPool(str(oe_npy))
    for override, key in (
        ("search.algorithm=genetic", "search.algorithm"),
        ("search.direction=up", "search.direction"),
        ("method=deep_svdd", "method=deep_svdd"),
        ("search.fitness._target_=nope.Nope", "search.fitness"),
    ):
        with pytest.raises(OEADError, match=key):
            cfg = search_cfg(folder_root, oe_npy, tmp_path, override)
            run_search(cfg, tmp_path / "e", pool, None if "fitness" in override else PixelFitness(pool))


@pytest.mark.slow
def test_sequential_fitness_trains_one_model_per_seed(folder_root, oe_npy, tmp_path):
    cfg = search_cfg(folder_root, oe_npy, tmp_path, "search.seeds=[0]", "batch_size=8")
    pool = NpyPool(str(oe_npy))
    fitness = make_fitness(cfg, pool)
    a = fitness([3, 7])
    assert len(a) == 2 and all(0 <= v <= 1 for v in a)
    assert fitness([7]) == a[1:]  # deterministic on CPU: the same image and seed give the same AUC
    assert fitness.classes == ["class0", "class1", "class2"]


@pytest.mark.slow
def test_tiny_evolution_with_real_training_resumes_to_the_same_state(folder_root, oe_npy, tmp_path):
    """Population 4, 2 generations, 1-epoch fitness on synthetic data, interrupted after generation 1."""
    from oe_ad.search.fitness import SequentialFitness

    class Interrupting(SequentialFitness):
        calls = 0

        def __call__(self, candidates):
            type(self).calls += 1
            if type(self).calls == 3:  # the initial generation and generation 1 are done
                raise KeyboardInterrupt
            return super().__call__(candidates)

    pool = NpyPool(str(oe_npy))
    cfg = search_cfg(folder_root, oe_npy, tmp_path, "batch_size=8")
    full = run_search(cfg, tmp_path / "full", pool, SequentialFitness(cfg, pool))
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path / "resumed", pool, Interrupting(cfg, pool))
    assert SearchState.load(tmp_path / "resumed").generation == 1
    resumed = run_search(cfg, tmp_path / "resumed", pool, SequentialFitness(cfg, pool))
    assert outputs(tmp_path / "full") == outputs(tmp_path / "resumed")
    assert OmegaConf.to_container(cfg.search)["seeds"] == [0, 1] and full["best_fitness"] == resumed["best_fitness"]

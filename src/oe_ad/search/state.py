"""A search's state (population, family tree, fitness cache, RNG), saved atomically after every generation."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..job.records import write_json_atomic
from .fitness import Fitness

STATE_NAME = "state.json"


@dataclass
class Node:
    """One individual of the family tree: an OE pool image, how it came to be, and from whom."""

    id: int
    image: int
    generation: int
    op: str  # init | mate | mutate | random
    parents: list[int] = field(default_factory=list)


@dataclass
class SearchState:
    algorithm: str
    direction: str
    generation: int = -1  # the last completed generation (-1: nothing evaluated yet)
    population: list[int] = field(default_factory=list)  # node ids (selection may repeat one)
    nodes: list[Node] = field(default_factory=list)
    cache: dict[int, float] = field(default_factory=dict)  # pool image -> fitness (mean AUC over seeds)
    rng: dict[str, Any] = field(default_factory=dict)
    plan: list[int] = field(default_factory=list)  # random search: every image it will evaluate, in order

    def add(self, image: int, generation: int, op: str, parents: list[int] | None = None) -> int:
        self.nodes.append(Node(len(self.nodes), int(image), generation, op, list(parents or [])))
        return len(self.nodes) - 1

    def image(self, node: int) -> int:
        return self.nodes[node].image

    def fitness(self, node: int) -> float:
        return self.cache[self.nodes[node].image]

    def key(self, node: int) -> float:
        """Larger is fitter, for either direction."""
        f = self.fitness(node)
        return f if self.direction == "max" else -f

    def evaluate(self, fitness: Fitness, images: list[int]) -> None:
        """Evaluate the images not in the cache, all in one fitness call (one generation at once)."""
        new = list(dict.fromkeys(int(i) for i in images if int(i) not in self.cache))
        if new:
            values = fitness(new)
            if len(values) != len(new):
                raise ValueError(f"fitness returned {len(values)} values for {len(new)} candidates")
            self.cache.update({i: float(v) for i, v in zip(new, values)})

    def ranked(self, nodes: list[int]) -> list[int]:
        """Distinct images' nodes, fittest first (one node per image)."""
        by_image = {self.image(n): n for n in nodes}
        return sorted(by_image.values(), key=lambda n: (-self.key(n), self.image(n)))

    # -- persistence -------------------------------------------------------------------------------------
    def save(self, out_dir: Path, rng: np.random.Generator) -> None:
        self.rng = rng.bit_generator.state
        data = asdict(self)
        data["cache"] = {str(k): v for k, v in self.cache.items()}
        write_json_atomic(Path(out_dir) / STATE_NAME, data)

    @classmethod
    def load(cls, out_dir: Path) -> "SearchState | None":
        path = Path(out_dir) / STATE_NAME
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["nodes"] = [Node(**n) for n in data["nodes"]]
        data["cache"] = {int(k): v for k, v in data["cache"].items()}
        return cls(**data)

    def restore_rng(self, rng: np.random.Generator) -> None:
        if self.rng:
            rng.bit_generator.state = self.rng

    def family_tree(self) -> dict[str, Any]:
        """Every individual with its fitness and parents, and the final population (JSON-ready)."""
        nodes = [{**asdict(n), "fitness": self.cache.get(n.image)} for n in self.nodes]
        return {"algorithm": self.algorithm, "direction": self.direction, "nodes": nodes, "final": self.population}

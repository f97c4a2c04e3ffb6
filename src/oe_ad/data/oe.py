"""The OE subset of size n (a deterministic function of the seed) and the index streams that fill batches.

How an epoch draws its images is set by the ``batches`` config node (docs/fidelity.md, "OE sampling" and
"epoch length / last batch"); :class:`BatchOptions` holds it.
"""

import math

import numpy as np
import torch
from torch import Tensor

from ..errors import OEADError

# The paper's code (datasets/bases.py, CombinedDataset.loaders) samples an OE subset of this many images or more
# with replacement; a smaller one it repeats ceil(N / n) times (N normal images) and shuffles once per epoch.
REPLACEMENT_FROM = 10_000


def draw_subset(pool_size: int, oe_size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``oe_size`` distinct pool images, fixed by ``seed`` (None = the whole pool)."""
    if oe_size is None:
        return np.arange(pool_size)
    if oe_size <= 0:
        raise OEADError(f"oe_size={oe_size}: must be a positive number of OE images (or null for the whole pool)")
    if oe_size > pool_size:
        raise OEADError(f"oe_size={oe_size} is larger than the OE pool ({pool_size} images)")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool_size, size=oe_size, replace=False))


def cycle_indices(n: int, total: int, gen: torch.Generator) -> Tensor:
    """``total`` indices into range(n): consecutive random permutations, so each item is used once
    before any repeats (a small OE set is repeated to fill every batch)."""
    reps = -(-total // n)
    device = gen.device
    return torch.cat([torch.randperm(n, generator=gen, device=device) for _ in range(reps)])[:total]


def oe_order(n: int, mode: str) -> str:
    """How an OE subset of ``n`` images is drawn under ``batches.oe=mode``: ``repeat`` (the paper's multiset
    pass), ``permutations`` or ``replacement``."""
    if mode == "permutations":
        return "permutations"
    if n >= REPLACEMENT_FROM:
        return "replacement" if mode == "paper" else "permutations"
    return "repeat"


def repeats(n: int, n_normal: int) -> int:
    """How often the paper's code repeats an OE subset of ``n`` images next to ``n_normal`` normal ones
    (BalancedConcatLoader): ceil(n_normal / n) when the subset is the smaller, else once."""
    return math.ceil(n_normal / n) if n < n_normal else 1


def oe_indices(n: int, n_normal: int, total: int, mode: str, gen: torch.Generator) -> Tensor:
    """``total`` indices into an OE subset of ``n`` images for one epoch, drawn as ``batches.oe=mode`` says.

    ``repeat``: shuffled passes over the multiset of the subset repeated :func:`repeats` times (the paper's
    ``RandomSampler`` without replacement over the repeated indices; one pass covers an epoch unless the last
    batch is completed); ``replacement``: uniform with replacement (the paper's ``RandomSampler(replacement=True)``).
    """
    order = oe_order(n, mode)
    if order == "replacement":
        return torch.randint(0, n, (total,), generator=gen, device=gen.device)
    if order == "permutations":
        return cycle_indices(n, total, gen)
    return cycle_indices(n * repeats(n, n_normal), total, gen) % n

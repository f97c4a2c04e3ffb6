"""The OE subset of size n (a deterministic function of the seed) and index streams that fill batches."""

import numpy as np
import torch
from torch import Tensor

from ..errors import OEADError


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

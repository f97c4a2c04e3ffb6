"""OE pools too large to hold in memory: read a seeded stream of batches with loader workers.

A streamable pool has ``read(i)`` (one (3, H, W) uint8 image by pool index) and ``max_in_memory`` (the
largest subset it loads whole); the datamodule streams any subset larger than that.
"""

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..progress import Progress


class _PoolItems(Dataset):
    def __init__(self, pool, indices: np.ndarray) -> None:
        self.pool, self.indices = pool, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.pool.read(int(self.indices[k]))))


def gather(pool, indices: np.ndarray, workers: int = 0, batch_size: int = 64) -> np.ndarray:
    """``pool.read`` of every index, in order, into one (N, 3, H, W) uint8 array (decoded by loader workers)."""
    loader = DataLoader(_PoolItems(pool, indices), batch_size=batch_size, num_workers=workers)
    out = None
    with Progress(len(indices), "decoding the OE subset", "images") as bar:
        for i, batch in enumerate(loader):
            if out is None:
                out = np.empty((len(indices), *batch.shape[1:]), np.uint8)
            out[i * batch_size : i * batch_size + len(batch)] = batch.numpy()
            bar.update(len(batch))
    return out


def stream_order(n: int, total: int, seed: int, order: str = "permutations", reps: int = 1) -> np.ndarray:
    """``total`` positions in range(n) from ``seed``, drawn as ``order`` (data/oe.py, ``oe_order``) says:
    ``permutations``: distinct while total <= n, else cycled permutations; ``repeat``: cycled shuffles of range(n)
    repeated ``reps`` times; ``replacement``: uniform with replacement.

    Drawing without a full permutation keeps this cheap for a pool of 79M images and a short epoch.
    """
    rng = np.random.default_rng(seed)
    if order == "replacement":
        return rng.integers(0, n, size=total)
    m = n * reps if order == "repeat" else n
    if total <= m and m == n:
        return rng.choice(n, size=total, replace=False)
    return np.concatenate([rng.permutation(m) % n for _ in range(-(-total // m))])[:total]


def fit_size(images: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 images resized (antialiased bilinear) to ``size`` if they differ, e.g. 32x32 OE for 224x224 data."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    x = F.interpolate(images.float(), size=tuple(size), mode="bilinear", antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


class OEStream:
    """The OE half of every batch, read on the fly from ``pool`` at ``indices`` (the seeded OE subset)."""

    def __init__(self, pool, indices: np.ndarray, size: tuple[int, int], workers: int = 0) -> None:
        self.pool, self.indices, self.size, self.workers = pool, indices, tuple(size), workers

    def __len__(self) -> int:
        return len(self.indices)

    def batches(
        self, steps: int, batch_size: int, seed: int, device: torch.device, draw: str = "permutations", reps: int = 1
    ) -> Iterator[Tensor]:
        """``steps`` uint8 batches of ``batch_size`` images on ``device``; the order is fixed by ``seed`` and drawn
        as ``draw`` and ``reps`` say (:func:`stream_order`)."""
        order = self.indices[stream_order(len(self.indices), steps * batch_size, seed, draw, reps)]
        loader = DataLoader(
            _PoolItems(self.pool, order),
            batch_size=batch_size,
            num_workers=self.workers,
            pin_memory=device.type == "cuda",
            prefetch_factor=4 if self.workers else None,
        )
        for x in loader:
            yield fit_size(x.to(device, non_blocking=True), self.size)

"""80 Million Tiny Images as an OE pool: ``tiny_images.bin`` read by offset, the CIFAR images excluded.

The file is a flat sequence of 32x32x3 uint8 images, 3,072 bytes each, each stored column-major (MATLAB
order): byte ``row + 32*col + 1024*channel``. It is memory-mapped, so only the images used are read.
"""

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import OEADError
from .sources import OEPool

IMAGE_BYTES = 32 * 32 * 3


def read_indices(path: Path, one_based: bool) -> np.ndarray:
    """Sorted distinct 0-based indices from a file with one integer per line."""
    try:
        values = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (OSError, ValueError) as e:
        raise OEADError(f"oe.exclude_file={path}: not a file of one index per line ({e})") from None
    return np.unique(values - 1 if one_based else values)


class TinyImagesPool(OEPool):
    """``tiny_images.bin`` minus the indices in ``exclude_file`` (1-based, as Hendrycks' 80mn_cifar_idxs.txt).

    Pool index k is the k-th image that is not excluded; subsets up to ``max_in_memory`` images are loaded
    whole, larger ones are streamed.
    """

    def __init__(
        self,
        path: str,
        exclude_file: str | None = None,
        one_based: bool = True,
        max_in_memory: int | None = 1_000_000,
        workers: int = 0,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise OEADError(f"oe.path={self.path}: no such file")
        size = self.path.stat().st_size
        if size == 0 or size % IMAGE_BYTES:
            raise OEADError(f"oe.path={self.path}: {size} bytes is not a whole number of 3,072-byte images")
        self.data = np.memmap(self.path, dtype=np.uint8, mode="r").reshape(-1, IMAGE_BYTES)
        excluded = np.zeros(0, np.int64)
        if exclude_file is not None:
            if not Path(exclude_file).is_file():
                raise OEADError(f"oe.exclude_file={exclude_file}: no such file (set oe.exclude_file=null to keep all)")
            excluded = read_indices(Path(exclude_file), one_based)
            if len(excluded) and (excluded[0] < 0 or excluded[-1] >= len(self.data)):
                raise OEADError(f"oe.exclude_file={exclude_file}: indices outside 0..{len(self.data) - 1}")
        # kept rank k -> file index k + #{j : excluded[j] - j <= k}; no 79M-entry table needed
        self._shift = excluded - np.arange(len(excluded))
        self.excluded = excluded
        self.max_in_memory, self.workers = max_in_memory, workers

    def __len__(self) -> int:
        return len(self.data) - len(self.excluded)

    def file_index(self, indices: np.ndarray) -> np.ndarray:
        """Positions in the file of pool images ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        return indices + np.searchsorted(self._shift, indices, side="right")

    def load(self, indices: np.ndarray) -> Tensor:
        raw = self.data[self.file_index(indices)]
        # column-major 32x32x3: as C-order (channel, col, row); swap to (channel, row, col)
        images = raw.reshape(-1, 3, 32, 32).transpose(0, 1, 3, 2)
        return torch.from_numpy(np.ascontiguousarray(images))

    def read(self, i: int) -> np.ndarray:
        return self.load(np.array([i]))[0].numpy()

"""Every OE pool behind one interface: ``len(pool)``, ``pool.load(indices)`` (a subset as one uint8 NCHW tensor)
and ``pool.read(i)`` (one (3, H, W) uint8 image: how pools too large to hold are streamed, data/stream.py).

``.npy`` arrays (300K random images), CIFAR-100 classes, an image folder, 80 Million Tiny Images
(``tiny_images.bin``, read by offset, the CIFAR images excluded) and ImageNet-22k minus excluded synsets.
"""

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets.utils import download_url

from ..atomic import atomic_open, file_sha256
from ..errors import OEADError
from .fingerprint import VERSION, Cache, combine, file_digest, one_file, sample, walk
from .imagenet import load_index, read_wnids
from .images import decode, decode_all, list_images
from .npy import checked_indices, read_npy_images
from .sources import PresentCIFAR100, cifar_fingerprint, download, fetch_cifar, read_cifar, require_dir
from .stream import gather

log = logging.getLogger(__name__)


class OEPool(ABC):
    """``len(pool)`` images; ``pool.load(indices)`` returns them as a uint8 NCHW tensor.

    ``max_in_memory``: the largest subset ``load`` should hold (None: any); a larger one is streamed through
    ``read(i)`` with ``workers`` loader processes (data/stream.py).
    """

    max_in_memory: int | None = None
    workers: int = 0

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def load(self, indices: np.ndarray) -> Tensor: ...

    def read(self, i: int) -> np.ndarray:
        """Pool image ``i`` as (3, H, W) uint8 (what a stream reads; pools with a cheaper way override it)."""
        return self.load(np.array([i], dtype=np.int64))[0].numpy()


class NpyPool(OEPool):
    """An (N, H, W, 3) uint8 ``.npy`` (the 300K-random-images format), memory-mapped.

    With ``url`` set and the file missing, it is downloaded and, if ``sha256`` is given, verified. With
    ``indices``, the pool is only those images of the file, in that order (e.g. ``[2789]``: one single OE image,
    as in the paper's Table 3).
    """

    def __init__(
        self, path: str, url: str | None = None, sha256: str | None = None, indices: list[int] | None = None
    ) -> None:
        self.path = Path(path)
        self.fetch({"path": path, "url": url, "sha256": sha256})
        if not self.path.exists():
            raise OEADError(f"oe.path={self.path}: no such file")
        self.array = read_npy_images(self.path, "oe.path")
        if len(self.array) == 0:
            raise OEADError(f"oe.path={self.path}: the OE pool is empty (0 images)")
        self.keep = None if indices is None else checked_indices(list(indices), len(self.array), "oe.indices")

    @classmethod
    def fetch(cls, spec: dict) -> None:
        """Download the file from ``url`` when it is missing (and check its ``sha256`` if given)."""
        path, url, sha256 = Path(spec["path"]), spec.get("url"), spec.get("sha256")
        if not path.exists() and url:
            download(path.name, download_url, url, str(path.parent), path.name)
            if sha256 and file_sha256(path) != sha256:
                path.unlink()
                raise OEADError(f"checksum mismatch for {path} downloaded from {url}; file removed")

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        return cache.digest("file", spec["path"], one_file(Path(spec["path"])))

    def __len__(self) -> int:
        return len(self.array) if self.keep is None else len(self.keep)

    def load(self, indices: np.ndarray) -> Tensor:
        rows = np.sort(indices) if self.keep is None else self.keep[np.sort(indices)]
        return torch.from_numpy(np.ascontiguousarray(self.array[rows])).permute(0, 3, 1, 2).contiguous()


class HeldPool(OEPool):
    """A pool decoded whole into ``self.images`` (uint8 NCHW), which its constructor sets."""

    images: Tensor

    def __len__(self) -> int:
        return len(self.images)

    def load(self, indices: np.ndarray) -> Tensor:
        return self.images[torch.from_numpy(np.asarray(indices))]


class CIFAR100Pool(HeldPool):
    """CIFAR-100 training images as OE; ``classes=k`` keeps k classes drawn at random from ``seed``."""

    @classmethod
    def fetch(cls, spec: dict) -> None:
        fetch_cifar(PresentCIFAR100, spec["root"], spec.get("download", True))

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        return cifar_fingerprint(PresentCIFAR100, spec["root"], cache, ["train"])  # the pool reads the training images

    def __init__(self, root: str, classes: int | None = None, seed: int = 0, download: bool = True) -> None:
        train = read_cifar(PresentCIFAR100, Path(root), True, download, "oe.root")
        images, labels = train.images.numpy(), train.labels.numpy()
        if classes is not None:
            if not 1 <= classes <= 100:
                raise OEADError(f"oe.classes={classes}: must be between 1 and 100")
            self.chosen = np.sort(np.random.default_rng(seed).choice(100, size=classes, replace=False))
            images = images[np.isin(labels, self.chosen)]
        self.images = torch.from_numpy(images)


class FolderPool(HeldPool):
    """Every image under ``root`` (recursively), decoded once and cached."""

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        return cache.digest("images", spec["root"], walk(Path(spec["root"])) or None)

    def __init__(self, root: str, image_size: int | None = 32, cache_dir: str | None = None) -> None:
        files = list_images(require_dir(Path(root), "oe.root"))
        if not files:
            raise OEADError(f"oe.root={root}: no image files found")
        self.images = torch.from_numpy(np.array(decode_all(files, image_size, cache_dir)))


class SubsetPool(OEPool):
    """The images of ``pool`` at ``indices``, as a pool of its own (a single OE image is a pool of one)."""

    def __init__(self, pool: OEPool, indices: list[int]) -> None:
        self.pool, self.indices = pool, np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, indices: np.ndarray) -> Tensor:
        return load_in_order(self.pool, self.indices[np.asarray(indices)])


def grey(images: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """(N, 3, H, W) or (3, H, W) uint8 images in grey, in all three channels: ITU-R 601-2 luma as PIL's
    ``convert("L")`` computes it (the same integer rounding), which is what torchvision's ``Grayscale`` runs."""
    x = torch.as_tensor(images)
    batch = x if x.dim() == 4 else x[None]
    out = torch.empty_like(batch)
    for s in range(0, len(batch), 8192):  # int32 in chunks: 300K images at once would take 3.7 GB
        c = batch[s : s + 8192].to(torch.int32)
        luma = (c[:, 0] * 19595 + c[:, 1] * 38470 + c[:, 2] * 7471 + 0x8000) >> 16
        out[s : s + 8192] = luma.to(torch.uint8)[:, None]
    out = out if x.dim() == 4 else out[0]
    return out.numpy() if isinstance(images, np.ndarray) else out


class GreyPool(OEPool):
    """Another pool's images in grey: the OE of a grey dataset (MNIST, Fashion-MNIST), as the paper's code's
    Fashion-MNIST runner turns its CIFAR-100 OE grey with the ``Grayscale`` transform normal and OE images share."""

    def __init__(self, pool: OEPool) -> None:
        self.pool, self.max_in_memory, self.workers = pool, pool.max_in_memory, pool.workers

    def __len__(self) -> int:
        return len(self.pool)

    def load(self, indices: np.ndarray) -> Tensor:
        return grey(self.pool.load(indices))

    def read(self, i: int) -> np.ndarray:
        return grey(self.pool.read(i))


def load_in_order(pool: OEPool, indices: np.ndarray) -> Tensor:
    """``pool.load`` in the order given (pools may return sorted order)."""
    indices = np.asarray(indices, dtype=np.int64)
    order = np.argsort(indices, kind="stable")
    images = pool.load(indices[order])
    out = torch.empty_like(images)
    out[torch.from_numpy(order)] = images
    return out


# ----------------------------------------------------------------------------------------------------
# 80 Million Tiny Images: a flat sequence of 32x32x3 uint8 images, 3,072 bytes each, each stored column-major
# (MATLAB order: byte ``row + 32*col + 1024*channel``), memory-mapped so only the images used are read.

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

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        """The file and the excluded indices' file."""
        files = [spec["path"], *([spec["exclude_file"]] if spec.get("exclude_file") is not None else [])]
        return combine(*(cache.digest("file", f, one_file(Path(f))) for f in files))

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


# ----------------------------------------------------------------------------------------------------
# ImageNet-22k: indexed once (data/imagenet.py), a seeded subset decoded by loader workers and cached.


class ImageNet22kPool(OEPool):
    """ImageNet-22k (``root/<wnid>/*.JPEG``) minus the ``exclude`` synsets, decoded at ``image_size``.

    ``load`` decodes a subset with ``workers`` loader processes and caches it under ``cache_dir``;
    subsets larger than ``max_in_memory`` are streamed through ``read`` instead.
    """

    def __init__(
        self,
        root: str,
        exclude: str | None = "imagenet1k",
        image_size: int = 256,
        cache_dir: str | None = None,
        workers: int = 8,
        max_in_memory: int | None = 20_000,
    ) -> None:
        self.root = require_dir(Path(root), "oe.root")
        self.image_size, self.cache_dir, self.workers = image_size, cache_dir, workers
        self.max_in_memory = max_in_memory
        index, self.key = load_index(self.root, cache_dir)
        self.synsets, self.synset_of, self.names = index["synsets"], index["synset_of"], index["names"]
        excluded = read_wnids(exclude)
        self.exclude_tag = hashlib.sha256(" ".join(sorted(excluded)).encode()).hexdigest()[:8]
        dropped = np.array([s in excluded for s in self.synsets], dtype=bool)
        self.kept = np.flatnonzero(~dropped[self.synset_of]) if len(self.synset_of) else np.zeros(0, np.int64)
        if not len(self.kept):
            raise OEADError(f"oe.root={root}: no images in <wnid>/ folders left after oe.exclude={exclude}")
        self.kept_synsets = sorted(set(self.synsets.tolist()) - excluded)

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        """Every file's name (from the pool's own index), the sampled files' sizes and contents, the excluded
        synsets; recomputed when a synset folder's mtime changes (the index's rule)."""
        root = Path(spec["root"])
        if not root.is_dir():
            return None
        index, key = load_index(root, spec.get("cache_dir"))

        def compute() -> str:
            rels = [f"{index['synsets'][s]}/{n.decode()}" for s, n in zip(index["synset_of"], index["names"])]
            h = hashlib.sha256(f"oe_ad data fingerprint v{VERSION}\n{len(rels)} files by name\n".encode())
            h.update("".join(f"{rel}\n" for rel in rels).encode())
            for i in sample(len(rels)):  # sizes only of the sampled files: a stat of 14M files is slow
                size = os.stat(root / rels[i]).st_size
                h.update(f"{rels[i]}\t{size}\t{file_digest(str(root / rels[i]), size, False)}\n".encode())
            return h.hexdigest()

        excluded = " ".join(sorted(read_wnids(spec.get("exclude", "imagenet1k"))))
        return combine(cache.lookup("imagenet22k", root, key, compute), f"exclude {excluded}")

    def __len__(self) -> int:
        return len(self.kept)

    def path(self, i: int) -> Path:
        k = self.kept[i]
        return self.root / str(self.synsets[self.synset_of[k]]) / self.names[k].decode()

    def read(self, i: int) -> np.ndarray:
        """Pool image ``i`` as (3, S, S) uint8; a broken file (the 22k release has a few) is replaced by the next."""
        for j in range(i, i + 100):
            path = self.path(j % len(self))
            try:
                return decode(path, self.image_size).transpose(2, 0, 1)
            except OEADError as e:
                log.warning("skipping %s", e)
        raise OEADError(f"oe.root={self.root}: 100 undecodable images in a row from {self.path(i)}")

    def load(self, indices: np.ndarray) -> Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        digest = hashlib.sha256(indices.tobytes()).hexdigest()[:16]
        tag = f"{self.key}-{self.exclude_tag}-{self.image_size}-{digest}"
        cache = Path(self.cache_dir) / f"imagenet22k-subset-{tag}.npy" if self.cache_dir else None
        if cache is not None and cache.exists():
            return torch.from_numpy(np.load(cache, mmap_mode="c"))
        images = gather(self, indices, self.workers)
        if cache is not None:
            with atomic_open(cache, "wb") as fh:
                np.save(fh, images)
        return torch.from_numpy(images)

"""ImageNet-30 (Hendrycks et al.'s one-class benchmark) and ImageNet-22k as an OE pool (docs/protocol.md).

ImageNet-22k holds ~14M files in one folder per synset: it is indexed once (file names + synset, cached),
the excluded synsets are dropped from the index, a seeded subset is decoded by loader workers, and pools
larger than ``max_in_memory`` are streamed (data/stream.py).
"""

import hashlib
import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..atomic import atomic_open
from ..errors import OEADError
from ..progress import progress
from .images import IMAGE_EXTENSIONS, decode
from .sources import ImageFolder, OEPool, require_dir
from .stream import gather

log = logging.getLogger(__name__)

IMAGENET30_CLASSES = [
    "acorn", "airliner", "ambulance", "american_alligator", "banjo", "barn", "bikini", "digital_clock",
    "dragonfly", "dumbbell", "forklift", "goblet", "grand_piano", "hotdog", "hourglass", "manhole_cover",
    "mosque", "nail", "parking_meter", "pillow", "revolver", "rotary_dial_telephone", "schooner",
    "snowmobile", "soccer_ball", "stingray", "strawberry", "tank", "toaster", "volcano",
]  # fmt: skip
WNID_LISTS = ("imagenet1k", "imagenet30")


class ImageNet30(ImageFolder):
    """ImageNet-30 in Hendrycks' layout: ``root/train/<class>/`` and ``root/test/<class>/`` (or ``val``).

    Classes are the 30 names of docs/protocol.md in that (alphabetical) order; images are decoded once to
    ``image_size`` (shorter side, then centre crop; 256 for the 224 pipeline) and cached memory-mapped.
    """

    def __init__(self, root: str, image_size: int = 256, cache_dir: str | None = None, workers: int = 0) -> None:
        super().__init__(root, image_size, cache_dir, workers)

    def load(self):
        require_dir(self.root, "data.root")
        train_dir = self._split_dir(("train",))
        test_dir = self._split_dir(("test", "val"))
        for split_dir in (train_dir, test_dir):
            missing = [c for c in IMAGENET30_CLASSES if not (split_dir / c).is_dir()]
            if missing:
                raise OEADError(f"data.root={self.root}: {split_dir.name}/ lacks class folders {missing[:3]}")
        self.classes = list(IMAGENET30_CLASSES)
        return self._load_split(train_dir), self._load_split(test_dir)


def read_wnids(exclude: str | None) -> set[str]:
    """The synsets named by ``oe.exclude``: a packaged list (imagenet1k, imagenet30), a file, or none."""
    if exclude in (None, "none"):
        return set()
    if exclude in WNID_LISTS:
        text = (resources.files("oe_ad.data") / "lists" / f"{exclude}_wnids.txt").read_text()
    elif Path(exclude).is_file():
        text = Path(exclude).read_text()
    else:
        raise OEADError(f"oe.exclude={exclude}: choose imagenet1k, imagenet30, none, or a file of wnids")
    return set(text.split())


# ----------------------------------------------------------------------------------------------------
# the index of an image tree by synset


def _synset_dirs(root: Path) -> list[os.DirEntry]:
    return sorted((e for e in os.scandir(root) if e.is_dir()), key=lambda e: e.name)


def _index_key(root: Path, dirs: list[os.DirEntry]) -> str:
    # a folder's mtime changes when files are added or removed, so this notices a changed tree
    h = hashlib.sha256(str(root.resolve()).encode())
    for d in dirs:
        h.update(f"{d.name}|{d.stat().st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def build_index(dirs: list[os.DirEntry]) -> dict[str, np.ndarray]:
    """synsets (U), synset_of (int32 per file) and names (bytes per file) of every image in ``dirs``."""
    synsets, synset_of, names = [], [], []
    for d in progress(dirs, len(dirs), "indexing ImageNet-22k", "synsets"):
        files = sorted(e.name.encode() for e in os.scandir(d.path) if Path(e.name).suffix.lower() in IMAGE_EXTENSIONS)
        if files:
            synset_of.append(np.full(len(files), len(synsets), np.int32))
            synsets.append(d.name)
            names.append(np.array(files))
    if not synsets:
        return {"synsets": np.array([], "U9"), "synset_of": np.zeros(0, np.int32), "names": np.array([], "S1")}
    return {"synsets": np.array(synsets), "synset_of": np.concatenate(synset_of), "names": np.concatenate(names)}


def load_index(root: Path, cache_dir: str | None) -> tuple[dict[str, np.ndarray], str]:
    """The index of ``root`` (built on the first call, then read from ``cache_dir``) and its key."""
    dirs = _synset_dirs(root)
    key = _index_key(root, dirs)
    cache = Path(cache_dir) / f"imagenet22k-index-{key}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        with np.load(cache) as f:
            return {k: f[k] for k in f.files}, key
    log.info("indexing %s (%d synset folders; once, then cached)", root, len(dirs))
    index = build_index(dirs)
    if cache is not None:
        with atomic_open(cache, "wb") as fh:
            np.savez(fh, **index)
    return index, key


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

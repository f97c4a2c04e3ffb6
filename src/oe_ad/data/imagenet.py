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

from ..atomic import atomic_open
from ..errors import OEADError
from ..progress import progress
from .fingerprint import Cache
from .images import IMAGE_EXTENSIONS
from .sources import ImageFolder, require_dir

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

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache, classes: list[str] | None = None) -> str | None:
        return super().fingerprint({**spec, "layout": "classes"}, cache, IMAGENET30_CLASSES)

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

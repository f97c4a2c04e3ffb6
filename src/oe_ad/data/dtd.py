"""The Describable Textures Dataset (DTD; Cimpoi et al., CVPR 2014), one vs. rest over its 47 texture classes, read
through torchvision's reader as the paper's code reads it (``datasets/dtd.py``): trained on the ``train`` list of a
partition, tested on its ``test`` list (the ``val`` list is not used), decoded once at ``image_size`` and cached."""

from pathlib import Path

import torch
from torchvision import datasets as tv_datasets

from ..errors import OEADError
from .fingerprint import Cache, combine, named_files
from .images import decode_all
from .sources import LabelledSource, Split, chosen, download


class DTD(LabelledSource):
    """``root/dtd/dtd/images/<class>/*.jpg`` and the split lists ``root/dtd/dtd/labels/{train,val,test}<k>.txt``
    (``k`` = ``partition``, 1 to 10; the paper's code uses 1), as the official archive extracts under torchvision's
    ``root/dtd/``, downloaded there (md5 checked) if ``download``. Classes in alphabetical order, as the paper's."""

    classes = [
        "banded", "blotchy", "braided", "bubbly", "bumpy", "chequered", "cobwebbed", "cracked", "crosshatched",
        "crystalline", "dotted", "fibrous", "flecked", "freckled", "frilly", "gauzy", "grid", "grooved",
        "honeycombed", "interlaced", "knitted", "lacelike", "lined", "marbled", "matted", "meshed", "paisley",
        "perforated", "pitted", "pleated", "polka-dotted", "porous", "potholed", "scaly", "smeared", "spiralled",
        "sprinkled", "stained", "stratified", "striped", "studded", "swirly", "veined", "waffled", "woven",
        "wrinkled", "zigzagged"
    ]  # fmt: skip

    choices = {"partition": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)}

    def __init__(
        self,
        root: str,
        partition: int = 1,
        image_size: int | None = 256,
        cache_dir: str | None = None,
        download: bool = True,
        workers: int = 0,
    ) -> None:
        self.root, self.partition, self.image_size = root, chosen(DTD, "data", "partition", partition), image_size
        self.cache_dir, self.download, self.workers = cache_dir, download, workers

    @staticmethod
    def folder(root: str) -> Path:
        """Where torchvision's reader finds ``images/`` and ``labels/``."""
        return Path(root) / "dtd" / "dtd"

    @classmethod
    def fetch(cls, spec: dict) -> None:
        """Download and extract the archive when ``root/dtd/dtd/`` is missing and ``download`` is on."""
        if spec.get("download", True) and not cls.folder(spec["root"]).is_dir():
            download("DTD", tv_datasets.DTD, spec["root"], download=True)

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        """The partition's ``train`` and ``test`` lists and every image they list."""
        base, partition = cls.folder(spec["root"]), spec.get("partition", 1)
        lists = [f"labels/{split}{partition}.txt" for split in ("train", "test")]
        try:
            listed = [f"images/{line.strip()}" for name in lists for line in (base / name).read_text().splitlines()]
        except OSError:
            return None
        files = named_files(base, lists + [f for f in listed if f != "images/"])
        return combine(cache.digest("dtd", base, files), f"partition {partition}")

    def _split(self, split: str) -> Split:
        try:
            ds = tv_datasets.DTD(self.root, split=split, partition=self.partition, download=False)
        except (RuntimeError, OSError, ValueError) as e:
            hint = "set data.download=true" if isinstance(e, RuntimeError) else f"{e.__class__.__name__}: {e}"
            raise OEADError(f"data.root={self.root}: no readable DTD in {self.folder(self.root)} ({hint})") from None
        names = [ds.classes[label] for label in ds._labels]  # torchvision's classes are this split's: map by name
        unknown = sorted(set(names) - set(self.classes))
        if unknown:
            raise OEADError(
                f"data.root={self.root}: the DTD {split} list names classes that DTD has not: {unknown[:3]}"
            )
        images = decode_all(list(ds._image_files), self.image_size, self.cache_dir, self.workers)
        return Split(torch.from_numpy(images), torch.tensor([self.classes.index(n) for n in names]))

    def load(self) -> tuple[Split, Split]:
        return self._split("train"), self._split("test")

"""Normal datasets and OE pools, each decoded once into uint8 NCHW tensors.

A normal dataset gives (train, test) ``Split``s and its class names; an OE pool gives its size and the
images at given indices (memory-mapped or decoded once, so drawing a subset never reads the whole pool).
"""

import json
import pickle
import urllib.error
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets as tv_datasets

from ..errors import OEADError
from .benchmarks import normal_class_names, own_anomalies_split, split
from .fingerprint import Cache, combine, named_files, walk_folders
from .images import decode_all, list_images
from .layout import class_names, folder_layout, split_folders


@dataclass
class Split:
    images: Tensor  # (N, 3, H, W) uint8
    labels: Tensor  # (N,) int64
    anomalous: Tensor | None = None  # (N,) bool: a known anomaly of its class (data/layout.py); None: none are


class NormalSource(ABC):
    """A normal dataset: its class names and, per benchmark split, the images a job trains and tests on.

    ``grey``: its images are grey (three equal channels); the job's OE is made grey too (data/datamodule.py).
    """

    classes: list[str]
    grey: bool = False

    @abstractmethod
    def benchmark_split(self, normal_class: int, benchmark: str = "ovr") -> tuple[Tensor, Tensor, Tensor]:
        """(normal training images, test images, test labels with 1 = anomalous), uint8 NCHW images."""

    def anomaly_classes(self, normal_class: int, benchmark: str = "ovr") -> list[str]:
        """The classes whose test images are the anomalies (none: the anomalies are the class's own, as MVTec-AD's)."""
        return []


class LabelledSource(NormalSource):
    """A dataset of labelled classes: the anomalies of a split are the other classes (``benchmarks.split``), or,
    where the test split marks each class's own anomalies (``Split.anomalous``), those (one vs. rest only)."""

    @abstractmethod
    def load(self) -> tuple[Split, Split]:
        """The (train, test) splits; ``classes`` is known once this has run."""

    own_anomalies = False  # known once ``benchmark_split`` has run: the test split marks each class's anomalies

    def benchmark_split(self, normal_class: int, benchmark: str = "ovr") -> tuple[Tensor, Tensor, Tensor]:
        train, test = self.load()
        self.own_anomalies = test.anomalous is not None
        if self.own_anomalies:
            normal_idx, test_idx, test_labels = own_anomalies_split(
                train.labels, test.labels, test.anomalous, normal_class, len(self.classes), benchmark
            )
            return train.images[normal_idx], test.images[test_idx], test_labels
        normal_idx, test_labels = split(train.labels, test.labels, normal_class, len(self.classes), benchmark)
        return train.images[normal_idx], test.images, test_labels

    def anomaly_classes(self, normal_class: int, benchmark: str = "ovr") -> list[str]:
        if self.own_anomalies:
            return []
        normal = normal_class_names(self.classes, normal_class, benchmark)
        return [c for c in self.classes if c not in normal]


class LoadedSource(LabelledSource):
    """A labelled dataset decoded once (onto ``device`` if given) and shared by every job that uses it."""

    def __init__(self, source: LabelledSource, device: torch.device | None = None) -> None:
        self.source, self.device, self._splits = source, device, None

    @property
    def classes(self) -> list[str]:
        return self.source.classes

    @property
    def grey(self) -> bool:
        return self.source.grey

    def load(self) -> tuple[Split, Split]:
        if self._splits is None:
            splits = self.source.load()
            if self.device is not None:
                splits = tuple(
                    Split(*(None if t is None else t.to(self.device) for t in (s.images, s.labels, s.anomalous)))
                    for s in splits
                )
            self._splits = splits
        return self._splits


def download(what: str, fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise OEADError(
            f"could not download {what} ({e.__class__.__name__}: {e}); "
            "download it by hand or point the config at a local copy"
        ) from None


def require_dir(path: Path, key: str) -> Path:
    if not path.is_dir():
        raise OEADError(f"{key}={path}: no such directory")
    return path


def chosen(cls: type, node: str, key: str, value):
    """``value`` if it is one of the source's ``choices[key]`` (the schema checks the same before a job starts; this
    is for sources built from Python), else the schema's one line naming ``node.key``."""
    if value not in cls.choices[key]:
        raise OEADError(f"{node}.{key}={value}: choose from {', '.join(map(str, cls.choices[key]))}")
    return value


# ----------------------------------------------------------------------------------------------------
# CIFAR, read by torchvision.datasets (the python pickle format of https://www.cs.toronto.edu/~kriz/cifar.html)


class PresentCIFAR10(tv_datasets.CIFAR10):
    """torchvision's reader, accepting batch files that are present rather than md5-identical to the
    originals: the archive's md5 is still checked on download, a corrupt batch fails to unpickle, and
    hashing 180 MB on every construction would buy nothing more (it would also reject small test copies)."""

    def _check_integrity(self) -> bool:
        return all((Path(self.root) / self.base_folder / f).is_file() for f, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:  # class names come from oe_ad's own lists, not from batches.meta
        pass


class PresentCIFAR100(PresentCIFAR10, tv_datasets.CIFAR100):
    pass


def read_cifar(kind: type[tv_datasets.CIFAR10], root: Path, train: bool, download: bool, key: str) -> Split:
    """One split of CIFAR-10/100 (``.data``, ``.targets``) as uint8 NCHW images and int64 labels.
    ``download`` fetches the archive into ``root`` when a batch file is missing; problems are one-line errors."""
    what = "CIFAR-100" if issubclass(kind, tv_datasets.CIFAR100) else "CIFAR-10"
    try:
        ds = kind(str(root), train=train, download=download)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        if download:
            raise OEADError(
                f"could not download {what} into {key}={root} ({e.__class__.__name__}: {e}); "
                "download it by hand or point the config at a local copy"
            ) from None
        folder = root / kind.base_folder
        missing = next((f for f, _ in kind.train_list + kind.test_list if not (folder / f).is_file()), None)
        hint = f"no {kind.base_folder}/{missing}" if missing else f"{e.__class__.__name__}: {e}"
        raise OEADError(f"{key}={root}: {hint} (set {key.split('.')[0]}.download=true)") from None
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as e:
        raise OEADError(f"{key}={root}: a {what} batch file is not readable ({e.__class__.__name__})") from None
    images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # torchvision keeps NHWC
    return Split(images, torch.as_tensor(np.asarray(ds.targets, dtype=np.int64)))


def fetch_cifar(kind: type[tv_datasets.CIFAR10], root: str, enabled: bool) -> None:
    """Download CIFAR-10/100 into ``root`` when a batch file is missing and ``download`` is on (torchvision checks
    the archive's md5); else nothing (a missing file is refused when the source is built)."""
    base = Path(root) / kind.base_folder
    if enabled and not all((base / f).is_file() for f, _ in kind.train_list + kind.test_list):
        what = "CIFAR-100" if issubclass(kind, tv_datasets.CIFAR100) else "CIFAR-10"
        download_archive = tv_datasets.utils.download_and_extract_archive
        download(what, download_archive, kind.url, root, filename=kind.filename, md5=kind.tgz_md5)


def cifar_fingerprint(kind: type[tv_datasets.CIFAR10], root: str, cache: Cache, only: list[str] | None = None):
    """The batch files a CIFAR source reads (``only``: those names, e.g. CIFAR-100's ``train``)."""
    base = Path(root) / kind.base_folder
    return cache.digest(
        kind.base_folder, base, named_files(base, only or [f for f, _ in kind.train_list + kind.test_list])
    )


class CIFAR10(LabelledSource):
    """CIFAR-10 from ``root/cifar-10-batches-py`` (downloaded there on first use if ``download``)."""

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    @classmethod
    def fetch(cls, spec: dict) -> None:
        fetch_cifar(PresentCIFAR10, spec["root"], spec.get("download", True))

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        return cifar_fingerprint(PresentCIFAR10, spec["root"], cache)

    def __init__(self, root: str, download: bool = True) -> None:
        self.root = Path(root)
        self.download = download

    def load(self) -> tuple[Split, Split]:
        return tuple(
            read_cifar(PresentCIFAR10, self.root, train, self.download, "data.root") for train in (True, False)
        )


class ImageFolder(LabelledSource):
    """``root/train/<class>/`` and ``root/test/<class>/`` (or ``val``), classes sorted by name, in one of two layouts
    (data/layout.py; ``layout=auto`` tells them apart by the ``normal/`` folders, a mix is refused):

    - ``classes``: one vs. rest, every image under a class folder is of that class;
    - ``normal_anomalous``: ``<class>/normal/`` and ``<class>/anomalous/`` (the paper's code's custom data): a job
      trains on ``train/<c>/normal/`` and tests ``test/<c>/normal/`` against ``test/<c>/anomalous/``; the
      training anomalies are never read here (``oe=anomalies`` reads them as OE).
    """

    choices = {"layout": ("auto", "classes", "normal_anomalous")}

    def __init__(
        self,
        root: str,
        image_size: int | None = 32,
        cache_dir: str | None = None,
        workers: int = 0,
        layout: str = "auto",
    ) -> None:
        self.root = Path(root)
        self.image_size = image_size
        self.cache_dir = cache_dir
        self.workers = workers
        self.layout = chosen(ImageFolder, "data", "layout", layout)
        self.classes: list[str] = []

    def _split_dir(self, names: tuple[str, ...]) -> Path:
        for name in names:
            if (self.root / name).is_dir():
                return self.root / name
        raise OEADError(f"data.root={self.root}: expected a '{names[0]}/' folder of class folders")

    def _load_split(self, split_dir: Path, layout: str = "classes", test: bool = False) -> Split:
        files, labels, anomalous = [], [], []
        for label, bad, folder in split_folders(split_dir, self.classes, layout, "data.root", anomalies=test):
            found = list_images(folder)
            files += found
            labels += [label] * len(found)
            anomalous += [bad] * len(found)
        if not files:
            raise OEADError(f"no images found under {split_dir}")
        images = decode_all(files, self.image_size, self.cache_dir, self.workers)
        # no copy: a cached array is memory-mapped, so selecting the normal class reads only its rows
        own = torch.tensor(anomalous) if test and layout == "normal_anomalous" else None
        return Split(torch.from_numpy(images), torch.tensor(labels), own)

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache, classes: list[str] | None = None) -> str | None:
        """The images the layout reads: ``train/<class>/`` and ``test/<class>/`` (else ``val/``), or each class's
        ``normal/`` training folder and its test folders; the class list (an empty class folder shifts the labels
        of the others) and a layout other than ``classes``."""
        root = Path(spec["root"])
        test = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
        classes = classes or (class_names(root / "train") if test and (root / "train").is_dir() else None)
        if test is None or not (root / "train").is_dir() or classes is None:
            return None
        layout = folder_layout(root / "train", classes, spec.get("layout", "auto"), "data.root")
        folders = [f for split, anomalies in ((root / "train", False), (test, True))
                   for _, _, f in split_folders(split, classes, layout, "data.root", anomalies)]  # fmt: skip
        files = walk_folders(root, folders)
        parts = [f"classes {json.dumps(classes)}", *([f"layout {layout}"] if layout != "classes" else [])]
        return combine(cache.digest(f"folder-{cls.__name__}", root, files), *parts)

    def load(self) -> tuple[Split, Split]:
        require_dir(self.root, "data.root")
        train_dir = self._split_dir(("train",))
        test_dir = self._split_dir(("test", "val"))
        self.classes = class_names(train_dir)
        layout = folder_layout(train_dir, self.classes, self.layout, "data.root")
        return self._load_split(train_dir, layout), self._load_split(test_dir, layout, test=True)

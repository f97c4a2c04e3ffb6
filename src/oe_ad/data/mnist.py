"""MNIST and Fashion-MNIST (normal data, one vs. rest) and EMNIST letters (their OE in the paper's code's MNIST
runner), read from their idx files by torchvision's readers.

The images are 28x28 grey. Here they are resized to ``image_size`` (32: the CNN32 input) as ``images.decode``
resizes an image file, with PIL's bilinear filter, so that a digit saved as an image file scores the same under
``predict``; then they are copied into three channels, as every image of ``oe_ad`` has three. The paper's code trains
these at 28x28 in one channel with its CNN28 (docs/datasets.md).
"""

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision import datasets as tv_datasets

from ..errors import OEADError
from .fingerprint import Cache, combine, named_files
from .pools import HeldPool
from .sources import LabelledSource, Split, chosen, download


def three_channels(images: Tensor | np.ndarray, size: int | None) -> Tensor:
    """(N, H, W) uint8 grey images as (N, 3, S, S): resized (PIL, bilinear, as ``images.decode``) unless ``size``
    is None or theirs, then the grey copied into each channel."""
    arr = np.asarray(images, dtype=np.uint8)
    if size is not None and arr.shape[-2:] != (size, size):
        arr = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in arr])
    return torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def raw_files(reader: type[tv_datasets.MNIST], root: str) -> tuple[Path, list[str]]:
    """The folder and names of the idx files torchvision's ``reader`` reads (its ``resources`` unzipped)."""
    return Path(root) / reader.__name__ / "raw", [os.path.splitext(f)[0] for f, _ in reader.resources]


def read_idx(reader: type[tv_datasets.MNIST], root: str, train: bool, key: str, **kwargs) -> tuple[Tensor, Tensor]:
    """(images (N, 28, 28) uint8, labels (N,) int64) of one split, or a one-line error naming the folder."""
    try:
        ds = reader(root, train=train, download=False, **kwargs)
    except RuntimeError:  # torchvision's "Dataset not found"
        base = Path(root) / reader.__name__ / "raw"
        raise OEADError(
            f"{key}={root}: no {reader.__name__} idx files in {base} (set {key.split('.')[0]}.download=true)"
        ) from None
    except (AssertionError, ValueError, OSError) as e:
        raise OEADError(
            f"{key}={root}: a {reader.__name__} idx file is not readable ({e.__class__.__name__})"
        ) from None
    return ds.data, torch.as_tensor(ds.targets, dtype=torch.int64)


def fetch_idx(what: str, reader: type[tv_datasets.MNIST], root: str, files: list[str], enabled: bool, **kw) -> None:
    """Download the idx files when one of ``files`` is missing and ``enabled`` (torchvision checks each archive's
    md5); else nothing (a missing file is refused when the source is built)."""
    if enabled and named_files(Path(root) / reader.__name__ / "raw", files) is None:
        download(what, reader, root, train=True, download=True, **kw)


class MNIST(LabelledSource):
    """MNIST (LeCun et al., 1998): ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, torchvision's
    layout, downloaded there if ``download``; the ten digits one vs. rest, at ``image_size`` in three channels."""

    classes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]  # the paper's code's
    grey = True
    reader = tv_datasets.MNIST

    def __init__(self, root: str, image_size: int | None = 32, download: bool = True) -> None:
        self.root, self.image_size, self.download = root, image_size, download

    @classmethod
    def fetch(cls, spec: dict) -> None:
        fetch_idx(
            cls.__name__, cls.reader, spec["root"], raw_files(cls.reader, spec["root"])[1], spec.get("download", True)
        )

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        """The four idx files."""
        base, names = raw_files(cls.reader, spec["root"])
        return cache.digest(cls.reader.__name__, base, named_files(base, names))

    def load(self) -> tuple[Split, Split]:
        splits = [read_idx(self.reader, self.root, train, "data.root") for train in (True, False)]
        return tuple(Split(three_channels(images, self.image_size), labels) for images, labels in splits)


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao et al., 2017): ``root/FashionMNIST/raw/``, the layout and format of MNIST."""

    classes = ["top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
    reader = tv_datasets.FashionMNIST


class EMNISTLetters(HeldPool):
    """EMNIST letters' training images as OE (Cohen et al., 2017; the OE of the paper's code's MNIST runner):
    ``root/EMNIST/raw/emnist-letters-train-{images-idx3,labels-idx1}-ubyte``, downloaded there if ``download``
    (torchvision fetches every EMNIST split, 562 MB), turned upright (EMNIST stores images transposed, which the
    paper's code undoes too), at ``image_size`` in three channels.

    ``letters``: ``paper`` keeps a to y, as the paper's code does (its class list 0..25 misses label 26 of the
    1-based letter labels, so it never draws a 'z'); ``all`` keeps a to z.
    """

    choices = {"letters": ("paper", "all")}
    files = ("emnist-letters-train-images-idx3-ubyte", "emnist-letters-train-labels-idx1-ubyte")

    def __init__(self, root: str, letters: str = "paper", image_size: int | None = 32, download: bool = True) -> None:
        chosen(EMNISTLetters, "oe", "letters", letters)
        images, labels = read_idx(tv_datasets.EMNIST, root, True, "oe.root", split="letters")
        keep = labels <= (25 if letters == "paper" else 26)
        self.images = three_channels(images[keep].transpose(1, 2).numpy(), image_size)

    @classmethod
    def fetch(cls, spec: dict) -> None:
        fetch_idx(
            "EMNIST", tv_datasets.EMNIST, spec["root"], list(cls.files), spec.get("download", True), split="letters"
        )

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        """The letters' two training idx files (and which letters are kept)."""
        base = Path(spec["root"]) / "EMNIST" / "raw"
        return combine(
            cache.digest("EMNIST", base, named_files(base, list(cls.files))), f"letters {spec.get('letters', 'paper')}"
        )

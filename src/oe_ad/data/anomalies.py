"""A class's own known anomalies as OE (the paper's code's ``--oe-dataset custom``, ``datasets/custom.py``): the
anomaly folders of the normal class's training folder, and never a folder of its normal images."""

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..errors import OEADError
from .fingerprint import Cache, combine, walk_folders
from .images import decode_all, list_images
from .layout import MVTEC_NORMAL, class_names, has_normal_folder, label_folders, subfolders
from .pools import HeldPool
from .sources import chosen, require_dir


def _layout(root: Path, layout: str) -> str:
    if chosen(ClassAnomalies, "oe", "layout", layout) != "auto":
        return layout
    if (root / "train").is_dir():
        return "normal_anomalous"
    if any((d / "train").is_dir() for d in subfolders(root)):
        return "mvtec"
    raise OEADError(
        f"oe.root={root}: found neither train/<class>/anomalous/ folders nor MVTec-style <class>/train/<defect>/ ones"
    )


def class_folders(root: Path, layout: str, normal_class: int) -> tuple[str, list[Path], list[Path]]:
    """(the class's name, its anomaly folders, the folders its anomalies must not repeat: its normal training
    images and all its test images) in ``layout`` (``normal_anomalous`` or ``mvtec``, data/layout.py)."""
    if layout == "normal_anomalous":
        classes = class_names(root / "train")
    else:
        classes = [d.name for d in subfolders(root) if (d / "train").is_dir()]
    if not 0 <= normal_class < len(classes):
        last = len(classes) - 1
        raise OEADError(f"normal_class={normal_class} is out of range: oe.root={root} has classes 0..{last}")
    name = classes[normal_class]
    if layout == "normal_anomalous":
        train = root / "train" / name
        test = next((root / s / name for s in ("test", "val") if (root / s).is_dir()), None)
        if not has_normal_folder(train):
            raise OEADError(
                f"oe.root={root}: train/{name}/ has no normal/ folder: oe=anomalies reads a class's known anomalies "
                f"from train/{name}/anomalous/, next to its normal images in train/{name}/normal/"
            )
        normal, anomalous = label_folders(train, "oe.root")
    else:
        train, test = root / name / "train", root / name / "test"
        normal, anomalous = label_folders(train, "oe.root", normal_names=(MVTEC_NORMAL,), anomaly_names=None)
    if not anomalous:
        raise OEADError(f"oe.root={root}: {train.relative_to(root)}/ has no folder of anomalies to use as OE")
    return name, anomalous, [*normal, *([test] if test is not None and test.is_dir() else [])]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_no_leak(files: list[Path], guarded: list[Path], root: Path) -> None:
    """Refuse an OE file byte-identical to a guarded one (a normal training image or a test image of the class, e.g.
    one copied into both folders); only files of equal size are hashed."""
    sizes = {f.stat().st_size for f in files}
    seen = {_sha256(f): f for f in files}
    for g in guarded:
        if g.stat().st_size in sizes and (twin := seen.get(_sha256(g))) is not None:
            raise OEADError(
                f"oe.root={root}: the anomaly {twin.relative_to(root)} is the same file as {g.relative_to(root)}: an "
                "OE image must be neither a normal training image nor a test image"
            )


class ClassAnomalies(HeldPool):
    """The known anomalies of class ``normal_class`` under ``root`` as the OE pool (data/layout.py):

    - ``normal_anomalous``: ``root/train/<class>/anomalous/`` (and the paper's code's other anomaly folder names),
      the classes sorted by name as ``data=folder`` sorts them;
    - ``mvtec``: every folder of ``root/<class>/train/`` but ``good/``, the classes sorted by name (MVTec-AD's order
      when all 15 categories are there);
    - ``auto``: ``normal_anomalous`` when ``root/train/`` exists, else ``mvtec``.

    No normal image enters the pool: only anomaly folders are read, an image with an unclear label is refused
    (data/layout.py), and so is an anomaly byte-identical to a normal training image or a test image of the class.
    ``class_name`` lets the datamodule check that the pool belongs to the job's normal class.
    """

    choices = {"layout": ("auto", "normal_anomalous", "mvtec")}

    def __init__(
        self,
        root: str,
        normal_class: int,
        layout: str = "auto",
        image_size: int | None = 32,
        cache_dir: str | None = None,
    ) -> None:
        self.root = require_dir(Path(root), "oe.root")
        self.layout = _layout(self.root, layout)
        self.class_name, folders, guarded = class_folders(self.root, self.layout, normal_class)
        files = [f for folder in folders for f in list_images(folder)]
        if not files:
            raise OEADError(f"oe.root={root}: no images in the anomaly folders of class {self.class_name}")
        check_no_leak(files, [f for folder in guarded for f in list_images(folder)], self.root)
        self.files = files
        self.images = torch.from_numpy(np.array(decode_all(files, image_size, cache_dir)))

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        """The images of the class's anomaly folders, and the class's name."""
        root = Path(spec["root"])
        if not root.is_dir():
            return None
        name, folders, _ = class_folders(root, _layout(root, spec.get("layout", "auto")), spec["normal_class"])
        files = walk_folders(root, folders)
        return combine(cache.digest("anomalies", folders[0].parent, files or None), f"class {name}")

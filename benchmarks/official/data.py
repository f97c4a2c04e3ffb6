"""Data for the paper's code: a ``cifar-10-batches-py`` copy of a CIFAR-10 ImageFolder tree, and the OE pool.

The paper's ``train_cifar.py`` reads CIFAR-10 through torchvision's ``CIFAR10`` class, which wants the pickled
batches of the original archive. This writes them from the JPEG ``ImageFolder`` copy that oe_ad's ``data=folder``
source reads, with oe_ad's own file listing and decoder (``oe_ad.data.images``), so both codes train and test on
identical pixels: classes sorted by name (CIFAR-10's label order), files sorted within each class.

Each batch is a pickled dict with *string* keys ``'data'`` (N x 3072 uint8, each row an image's R, G and B planes
of 32 x 32, i.e. CHW flattened) and ``'labels'`` (list of int); ``batches.meta`` holds ``'label_names'``.
torchvision unpickles them with ``encoding='latin1'``, which leaves string keys as they are.
"""

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np

from oe_ad.data.images import decode, list_images

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BASE_FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
META_FILE = "batches.meta"


class DataError(Exception):
    """A data problem the user fixes (wrong folder, wrong pool file); the message names the path."""


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_split(split_dir: Path, classes: list[str]) -> tuple[np.ndarray, list[int]]:
    """(N x 3072 uint8 rows in CHW order, labels) of every image under ``split_dir/<class>/``, oe_ad's order."""
    rows, labels = [], []
    for label, cls in enumerate(classes):
        for path in list_images(split_dir / cls):
            img = decode(path, None)
            if img.shape != (32, 32, 3):
                raise DataError(f"{path}: expected a 32x32 RGB image, got shape {img.shape}")
            rows.append(img.transpose(2, 0, 1).reshape(-1))
            labels.append(label)
    if not rows:
        raise DataError(f"no images under {split_dir}")
    return np.stack(rows).astype(np.uint8), labels


def _dump(obj: dict, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar_batches(folder: Path, out: Path) -> dict:
    """Write ``out/cifar-10-batches-py`` from ``folder/{train,test}/<class>/*``; return its manifest.

    The training images are split in order into the five ``data_batch_*`` files (10,000 each for CIFAR-10).
    The manifest records each file's MD5 (what torchvision's integrity check compares) and SHA-256.
    """
    folder = Path(folder)
    classes = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir()) if (folder / "train").is_dir() else []
    if not classes:
        raise DataError(f"{folder}: expected train/<class>/ folders of images (a CIFAR-10 ImageFolder copy)")
    train_x, train_y = _read_split(folder / "train", classes)
    test_x, test_y = _read_split(folder / "test", classes)
    tmp = Path(out) / (BASE_FOLDER + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    parts = np.array_split(np.arange(len(train_y)), len(TRAIN_FILES))
    for name, idx in zip(TRAIN_FILES, parts):
        _dump({"batch_label": name, "data": train_x[idx], "labels": [train_y[i] for i in idx]}, tmp / name)
    _dump({"batch_label": TEST_FILE, "data": test_x, "labels": test_y}, tmp / TEST_FILE)
    _dump({"label_names": classes, "num_cases_per_batch": len(parts[0]), "num_vis": 3072}, tmp / META_FILE)
    files = {
        name: {"md5": file_digest(tmp / name, "md5"), "sha256": file_digest(tmp / name)}
        for name in [*TRAIN_FILES, TEST_FILE, META_FILE]
    }
    final = Path(out) / BASE_FOLDER
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return {"classes": classes, "n_train": len(train_y), "n_test": len(test_y), "files": files}


def check_pool(path: Path) -> tuple[int, ...]:
    """The OE pool's shape; it must be an (N, 32, 32, 3) uint8 .npy (read without loading it)."""
    try:
        pool = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npy file ({e})") from None
    if pool.ndim != 4 or pool.shape[1:] != (32, 32, 3) or pool.dtype != np.uint8:
        raise DataError(f"{path}: expected an (N, 32, 32, 3) uint8 array, got {pool.shape} {pool.dtype}")
    return tuple(pool.shape)


def prepare(data: Path, oe: Path, work_data: Path, archive: Path | None = None) -> dict:
    """Build (once) ``work_data/`` = the CIFAR batches + ``manifest.json``; return the manifest.

    A manifest made from the same ``data`` folder and the same OE file (path, size and mtime) is reused.
    ``archive``, when given, is the archive the ImageFolder copy was extracted from; only its SHA-256 is recorded.
    """
    data, oe, work_data = Path(data).resolve(), Path(oe).resolve(), Path(work_data)
    if not data.is_dir():
        raise DataError(f"--data {data}: no such folder (a CIFAR-10 ImageFolder copy with train/ and test/)")
    if not oe.is_file():
        raise DataError(f"--oe {oe}: no such file (an (N, 32, 32, 3) uint8 .npy OE pool)")
    oe_stat = {"path": str(oe), "size": oe.stat().st_size, "mtime": int(oe.stat().st_mtime)}
    manifest_path = work_data / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        same = manifest.get("source") == str(data) and manifest.get("oe", {}).get("stat") == oe_stat
        if same and (work_data / BASE_FOLDER).is_dir():
            if archive is not None and manifest.get("archive", {}).get("path") != str(Path(archive).resolve()):
                manifest["archive"] = {"path": str(Path(archive).resolve()), "sha256": file_digest(Path(archive))}
                _write_json(manifest_path, manifest)
            return manifest
    work_data.mkdir(parents=True, exist_ok=True)
    cifar = write_cifar_batches(data, work_data)
    if cifar["classes"] != CIFAR10_CLASSES:
        raise DataError(f"--data {data}: class folders {cifar['classes']} are not CIFAR-10's {CIFAR10_CLASSES}")
    manifest = {
        "source": str(data),
        "cifar": cifar,
        "oe": {"stat": oe_stat, "shape": list(check_pool(oe)), "sha256": file_digest(oe)},
    }
    if archive is not None:
        manifest["archive"] = {"path": str(Path(archive).resolve()), "sha256": file_digest(Path(archive))}
    _write_json(manifest_path, manifest)
    return manifest


def _write_json(path: Path, obj: object) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)

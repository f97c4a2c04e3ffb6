"""Where a custom dataset keeps a class's normal images and its anomalies: the folder layouts of the paper's code
(``datasets/custom.py``) and MVTec-AD's.

- ``classes``: one vs. rest over class folders, ``<split>/<class>/**``; the other classes are the anomalies.
- ``normal_anomalous``: ``<split>/<class>/normal/**`` and ``<split>/<class>/anomalous/**``. A class is tested on its
  own ``test/<class>/`` folders; its ``train/<class>/anomalous/`` images are known anomalies, usable as OE
  (``oe=anomalies``) and never read as normal data. The folder names are the paper's code's, in any case: ``normal``
  or ``nominal``; ``anomalous``, ``anomaly``, ``anomalies``, ``oe`` or ``outlier-exposure``.
- ``mvtec`` (anomalies as OE only): ``<class>/train/good/**`` normal, every other folder of ``<class>/train/`` (one
  per defect type) anomalous.

Anything that fits none of these where a layout expects it (another folder name, an image lying loose in a class
folder) is refused with the path named: an image whose label is a guess could put a normal image among the OE.
"""

from pathlib import Path

from ..errors import OEADError
from .images import IMAGE_EXTENSIONS

NORMAL_NAMES = ("normal", "nominal")
ANOMALY_NAMES = ("anomalous", "anomaly", "anomalies", "oe", "outlier-exposure")
MVTEC_NORMAL = "good"


def subfolders(folder: Path) -> list[Path]:
    """The folders in ``folder``, sorted by name (hidden ones left out)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_names(split_dir: Path) -> list[str]:
    """The class folders of a split, sorted by name: class index = position."""
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def has_normal_folder(class_dir: Path) -> bool:
    return class_dir.is_dir() and any(p.name.lower() in NORMAL_NAMES for p in subfolders(class_dir))


def folder_layout(train_dir: Path, classes: list[str], layout: str, key: str) -> str:
    """``layout`` (``auto``, ``classes`` or ``normal_anomalous``) resolved for the class folders of ``train_dir``:
    ``auto`` is ``normal_anomalous`` when every class folder has a ``normal/`` folder, ``classes`` when none has; a
    mix is refused (say which with ``data.layout``)."""
    marked = [c for c in classes if has_normal_folder(train_dir / c)]
    if layout == "auto":
        unmarked = [c for c in classes if c not in marked]
        if marked and unmarked:
            raise OEADError(
                f"{key}: train/{marked[0]}/ has a normal/ folder but train/{unmarked[0]}/ has none: give every class "
                "normal/ and anomalous/ folders, or set data.layout=classes to read class folders whole"
            )
        layout = "normal_anomalous" if marked else "classes"
    if layout == "classes":
        odd = next((c for c in classes if c.lower() in NORMAL_NAMES + ANOMALY_NAMES), None)
        if odd is not None:
            raise OEADError(
                f"{key}: a class folder named train/{odd}/: normal/ and anomalous/ folders go inside a class folder, "
                "train/<class>/normal/ and train/<class>/anomalous/"
            )
    return layout


def label_folders(class_dir: Path, key: str, normal_names=NORMAL_NAMES, anomaly_names=ANOMALY_NAMES):
    """(normal folders, anomaly folders) of one class folder; another folder name or an image lying loose in the
    class folder is refused (other files are not read). ``anomaly_names`` None: every folder that is not normal is
    an anomaly folder (MVTec-AD's defect types)."""
    normal, anomalous = [], []
    for p in sorted(class_dir.iterdir()):
        name = p.name.lower()
        if p.name.startswith("."):
            continue
        if p.is_dir() and name in normal_names:
            normal.append(p)
        elif p.is_dir() and (anomaly_names is None or name in anomaly_names):
            anomalous.append(p)
        elif p.is_dir():
            raise OEADError(
                f"{key}: {p} is neither a normal folder ({', '.join(normal_names)}) nor an anomaly folder "
                f"({', '.join(anomaly_names)})"
            )
        elif p.suffix.lower() in IMAGE_EXTENSIONS:  # neither normal nor anomalous: not read, so refused
            raise OEADError(f"{key}: the image {p} lies loose in its class folder: move it into {normal_names[0]}/ "
                            "or into a folder of anomalies")  # fmt: skip
    if not normal:
        raise OEADError(f"{key}: {class_dir} has no {normal_names[0]}/ folder")
    return normal, anomalous


def split_folders(split_dir: Path, classes: list[str], layout: str, key: str, anomalies: bool) -> list[tuple]:
    """(class index, anomalous, folder) of every folder a split reads: whole class folders (``classes``), or each
    class's normal folders and, with ``anomalies``, its anomaly folders (``normal_anomalous``)."""
    if layout == "classes":
        return [(k, False, split_dir / c) for k, c in enumerate(classes)]
    out = []
    for k, c in enumerate(classes):
        if not (split_dir / c).is_dir():
            raise OEADError(
                f"{key}: no {split_dir.name}/{c}/ folder (each class needs its normal/ folder in each split)"
            )
        normal, anomalous = label_folders(split_dir / c, key)
        out += [(k, False, f) for f in normal] + ([(k, True, f) for f in anomalous] if anomalies else [])
    return out

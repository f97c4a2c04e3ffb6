"""MVTec-AD (Figure 4, Table 15): one category per ``normal_class``; its defects, not other classes, are the anomalies.

So it is not a class-label split: the source supplies the benchmark split itself through
``benchmark_split`` (train/good as normal training data; test/good normal, every other test folder anomalous).
"""

from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets.utils import download_url, extract_archive

from ..atomic import file_sha256
from ..errors import OEADError
from .fingerprint import Cache, walk_folders
from .images import decode_all, list_images
from .sources import NormalSource, download, require_dir

CATEGORIES = [
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill", "screw",
    "tile", "toothbrush", "transistor", "wood", "zipper",
]  # fmt: skip
NORMAL = "good"


class MVTecAD(NormalSource):
    """``root/<category>/{train/good, test/<defect or good>}``, decoded once at ``image_size`` and cached.

    With ``download`` and no category folder under ``root``, the official archive is downloaded there,
    checked against its SHA-256 and extracted.
    """

    url = (
        "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/420938113-1629952094/"
        "mvtec_anomaly_detection.tar.xz"
    )
    sha256 = "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
    classes = CATEGORIES

    def __init__(
        self,
        root: str,
        image_size: int = 256,
        cache_dir: str | None = None,
        download: bool = True,
        workers: int = 0,
    ) -> None:
        self.root = Path(root)
        self.image_size, self.cache_dir, self.download, self.workers = image_size, cache_dir, download, workers

    @classmethod
    def fetch(cls, spec: dict) -> None:
        """Download and extract the archive when ``root`` holds no category folder and ``download`` is on."""
        root = Path(spec["root"])
        if spec.get("download", True) and not any((root / c).is_dir() for c in CATEGORIES):
            cls(str(root), download=True)._ensure(CATEGORIES[0])

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        """Every category's ``train/good/`` and ``test/<defect or good>/`` images."""
        root, files = Path(spec["root"]), []
        for cat in (c for c in CATEGORIES if (Path(spec["root"]) / c).is_dir()):
            tests = (
                sorted(p for p in (root / cat / "test").iterdir() if p.is_dir())
                if (root / cat / "test").is_dir()
                else []
            )
            files += walk_folders(root, [root / cat / "train" / NORMAL, *tests])
        return cache.digest("mvtec", root, files or None)

    def _ensure(self, category: str) -> Path:
        base = self.root / category
        if base.is_dir():
            return base
        if not self.download or any((self.root / c).is_dir() for c in CATEGORIES):
            raise OEADError(f"data.root={self.root}: no {category}/ folder (MVTec-AD category)")
        archive = self.root / Path(self.url).name
        if not archive.exists():
            download("MVTec-AD", download_url, self.url, str(self.root), archive.name)
        if file_sha256(archive) != self.sha256:
            archive.unlink()
            raise OEADError(f"checksum mismatch for {archive} downloaded from {self.url}; file removed")
        extract_archive(str(archive), str(self.root))
        if not base.is_dir():
            raise OEADError(f"data.root={self.root}: the archive held no {category}/ folder")
        return base

    def _decode(self, files: list[Path], where: Path) -> Tensor:
        if not files:
            raise OEADError(f"no images found under {where}")
        return torch.from_numpy(decode_all(files, self.image_size, self.cache_dir, self.workers))

    def benchmark_split(self, normal_class: int, benchmark: str = "ovr") -> tuple[Tensor, Tensor, Tensor]:
        """(normal training images, test images, test labels with 1 = defect) of category ``normal_class``."""
        if not 0 <= normal_class < len(CATEGORIES):
            raise OEADError(f"normal_class={normal_class} is out of range: MVTec-AD has categories 0..14")
        if benchmark != "ovr":
            raise OEADError(f"benchmark={benchmark}: MVTec-AD tests good vs. defect per category; use benchmark=ovr")
        base = self._ensure(CATEGORIES[normal_class])
        train = self._decode(list_images(base / "train" / NORMAL), base / "train" / NORMAL)
        test_files, labels = [], []
        for folder in sorted(p for p in require_dir(base / "test", "data.root").iterdir() if p.is_dir()):
            files = list_images(folder)
            test_files += files
            labels += [int(folder.name != NORMAL)] * len(files)
        if NORMAL not in {f.parent.name for f in test_files} or not any(labels):
            raise OEADError(f"{base / 'test'}: expected a good/ folder and at least one defect folder")
        return train, self._decode(test_files, base / "test"), torch.tensor(labels)

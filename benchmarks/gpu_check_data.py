"""Data for `make gpu-check` on your own machine: CIFAR-10 as an image folder, CIFAR-100's training images as the
OE pool (docs/gpu.md, "Checking a GPU install").

    python benchmarks/gpu_check_data.py data/gpu-check [--cifar-root data]

Reads CIFAR-10 and CIFAR-100 from --cifar-root (torchvision's python archives, downloaded there with their md5
checked if missing: about 340 MB), then writes DIR/cifar10/{train,test}/<class>/<index>.png (lossless, 60,000
images) and DIR/cifar100-oe.npy ((50000, 32, 32, 3) uint8). Each is written under a temporary name and renamed,
so an interrupted run leaves nothing half-written; what exists already is kept.
"""

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # a checkout without `make install`

from oe_ad.data.pools import CIFAR100Pool  # noqa: E402
from oe_ad.data.sources import CIFAR10  # noqa: E402
from oe_ad.errors import OEADError  # noqa: E402


def write_folder(out: Path, cifar_root: Path) -> None:
    """CIFAR-10 as ``out/{train,test}/<class>/<index>.png``."""
    source = CIFAR10(str(cifar_root), download=True)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for split, part in zip(("train", "test"), source.load()):
        for i, (image, label) in enumerate(zip(part.images.permute(0, 2, 3, 1).numpy(), part.labels.tolist())):
            folder = tmp / split / CIFAR10.classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:05d}.png")
    tmp.rename(out)


def write_oe(out: Path, cifar_root: Path) -> None:
    """CIFAR-100's 50,000 training images as an ``(N, 32, 32, 3)`` uint8 ``.npy``."""
    images = CIFAR100Pool(str(cifar_root), download=True).images.permute(0, 2, 3, 1).numpy()
    tmp = out.with_name(out.name + ".partial.npy")
    np.save(tmp, np.ascontiguousarray(images))
    tmp.rename(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="where cifar10/ and cifar100-oe.npy go (e.g. data/gpu-check)")
    ap.add_argument("--cifar-root", type=Path, default=Path("data"), help="torchvision's CIFAR folder (default data)")
    args = ap.parse_args(argv)
    folder, oe = args.dir / "cifar10", args.dir / "cifar100-oe.npy"
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        if not folder.is_dir():
            print(f"writing {folder} (60,000 PNG images) ...", file=sys.stderr, flush=True)
            write_folder(folder, args.cifar_root)
        if not oe.is_file():
            write_oe(oe, args.cifar_root)
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"GPU_DATA={folder} GPU_OE={oe}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

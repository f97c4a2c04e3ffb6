"""Decode image files once into uint8 NCHW arrays, cached on disk so a second run reads one .npy."""

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_open
from ..errors import OEADError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


def list_images(root: Path) -> list[Path]:
    """Every image file under ``root``, recursively, in sorted order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def decode(path: Path, size: int | None) -> np.ndarray:
    """One image as HWC uint8 RGB; resized (shorter side to ``size``, then centre crop) if needed."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if size is not None and img.size != (size, size):
                scale = size / min(img.size)
                w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
                img = img.resize((w, h), Image.BILINEAR)
                left, top = (w - size) // 2, (h - size) // 2
                img = img.crop((left, top, left + size, top + size))
            return np.asarray(img, dtype=np.uint8)
    except OSError as e:
        raise OEADError(f"cannot decode image {path}: {e}") from None


def _cache_key(files: list[Path], size: int | None) -> str:
    h = hashlib.sha256(str(size).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def decode_all(files: list[Path], size: int | None, cache_dir: str | os.PathLike | None) -> np.ndarray:
    """Decode ``files`` into an (N, 3, S, S) uint8 array; reuse the cached array if the files are unchanged."""
    cache = Path(cache_dir) / f"images-{_cache_key(files, size)}.npy" if cache_dir else None
    if cache is not None and cache.exists():
        return np.load(cache, mmap_mode="r")
    arrays = [decode(f, size) for f in files]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise OEADError(
            f"images under {files[0].parent.parent} have different sizes {sorted(shapes)[:3]}; "
            "set data.image_size (or oe.image_size) to resize them"
        )
    out = np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
    if cache is not None:
        with atomic_open(cache, "wb") as fh:
            np.save(fh, out)
    return out

"""``.npy`` image arrays (the 300K-random-images format): the header alone, or the array memory-mapped."""

from pathlib import Path

import numpy as np

from ..errors import OEADError


def npy_header(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` from its header alone (a text file renamed ``.npy`` is named as such)."""
    if not path.is_file():
        raise OEADError(f"{key}={path}: no such file")
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
    except (ValueError, OSError, EOFError):
        raise OEADError(f"{key}={path}: not a NumPy array (.npy) file") from None
    return tuple(shape), np.dtype(dtype)


def read_npy_images(path: Path, key: str) -> np.ndarray:
    """An (N, H, W, 3) uint8 ``.npy``, memory-mapped; one-line errors name ``key``."""
    npy_header(path, key)  # a text file renamed .npy: "not a NumPy array", not a pickle message
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise OEADError(f"{key}={path}: not a readable .npy file ({e})") from None
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise OEADError(f"{key}={path}: expected an (N, H, W, 3) uint8 array, got {array.shape} {array.dtype}")
    return array


def checked_indices(indices: list, size: int, key: str) -> np.ndarray:
    """``indices`` as an int64 array if they are distinct integers within 0..size-1; else a one-line error."""
    if not indices:
        raise OEADError(f"{key}=[]: give at least one image index (or null for the whole file)")
    if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in indices):
        raise OEADError(f"{key}={indices}: must be a list of integer image indices")
    bad = [i for i in indices if not 0 <= i < size]
    if bad:
        raise OEADError(f"{key}: index {bad[0]} is outside the file's images 0..{size - 1}")
    if len(set(indices)) != len(indices):
        raise OEADError(f"{key}={indices}: an index is listed twice")
    return np.asarray(indices, dtype=np.int64)

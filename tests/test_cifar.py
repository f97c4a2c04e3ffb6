"""CIFAR-10/100 through torchvision.datasets: pixel layout, labels, CIFAR-100 OE classes, one-line errors."""

import pickle

import numpy as np
import pytest

from oe_ad.data.pools import CIFAR100Pool
from oe_ad.data.sources import CIFAR10
from oe_ad.errors import OEADError


def _write_batch(path, data: np.ndarray, labels: list[int], key: str) -> None:
    with open(path, "wb") as fh:
        pickle.dump({"data": data.reshape(len(data), -1), key: labels}, fh)


def test_cifar10_keeps_channel_first_pixels_and_labels(cifar_root):
    """Image i of the NCHW tensor is row i of the batch file, read as 3 planes of 32x32 (R, G, B)."""
    with open(cifar_root / "cifar-10-batches-py" / "test_batch", "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    _, test = CIFAR10(str(cifar_root), download=False).load()
    assert np.array_equal(test.images.numpy(), raw["data"].reshape(-1, 3, 32, 32))
    assert test.labels.tolist() == raw["labels"] and test.images.is_contiguous()


@pytest.fixture
def cifar100_root(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    rng = np.random.default_rng(0)
    labels = [k % 100 for k in range(300)]
    _write_batch(base / "train", rng.integers(0, 256, (300, 3, 32, 32), dtype=np.uint8), labels, "fine_labels")
    _write_batch(base / "test", rng.integers(0, 256, (10, 3, 32, 32), dtype=np.uint8), labels[:10], "fine_labels")
    return tmp_path


def test_cifar100_pool_keeps_k_seeded_classes(cifar100_root):
    pool = CIFAR100Pool(str(cifar100_root), classes=2, seed=3, download=False)
    assert len(pool) == 6 and len(pool.chosen) == 2  # 3 images per class in the fake set
    again = CIFAR100Pool(str(cifar100_root), classes=2, seed=3, download=False)
    assert pool.chosen.tolist() == again.chosen.tolist()
    assert pool.load(np.arange(6)).shape == (6, 3, 32, 32)


def test_missing_batch_is_named_without_download(cifar100_root):
    (cifar100_root / "cifar-100-python" / "test").unlink()
    with pytest.raises(OEADError, match=r"oe.root=.*no cifar-100-python/test \(set oe.download=true\)"):
        CIFAR100Pool(str(cifar100_root), download=False)


def test_corrupt_batch_is_one_line_error(cifar100_root):
    (cifar100_root / "cifar-100-python" / "train").write_bytes(b"junk")
    with pytest.raises(OEADError, match="batch file is not readable"):
        CIFAR100Pool(str(cifar100_root), download=False)

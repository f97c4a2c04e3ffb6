import numpy as np
import pytest
from PIL import Image

from oe_ad.data import images as images_mod
from oe_ad.data.pools import NpyPool
from oe_ad.data.sources import CIFAR10, ImageFolder
from oe_ad.errors import OEADError


def test_cifar10_reads_the_python_batches(cifar_root):
    train, test = CIFAR10(str(cifar_root), download=False).load()
    assert train.images.shape == (100, 3, 32, 32) and test.images.shape == (30, 3, 32, 32)
    assert str(train.images.dtype) == "torch.uint8" and int(train.labels.max()) <= 9


def test_cifar10_missing_without_download_names_the_root(tmp_path):
    with pytest.raises(OEADError, match=str(tmp_path)):
        CIFAR10(str(tmp_path), download=False).load()


def test_image_folder_classes_sorted_and_decoded_once(folder_root, tmp_path, monkeypatch):
    src = ImageFolder(str(folder_root), cache_dir=str(tmp_path))
    train, test = src.load()
    assert src.classes == ["class0", "class1", "class2"]
    assert train.images.shape == (72, 3, 32, 32) and train.labels.tolist() == [0] * 24 + [1] * 24 + [2] * 24
    assert len(list(tmp_path.glob("images-*.npy"))) == 2  # train and test cached

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(images_mod, "decode", boom)
    train2, _ = ImageFolder(str(folder_root), cache_dir=str(tmp_path)).load()  # served from the cache
    assert np.array_equal(train.images.numpy(), train2.images.numpy())


def test_undecodable_image_is_named(tmp_path):
    d = tmp_path / "train" / "a"
    d.mkdir(parents=True)
    (d / "broken.png").write_bytes(b"not an image")
    (tmp_path / "test" / "a").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "test" / "a" / "ok.png")
    with pytest.raises(OEADError, match="broken.png"):
        ImageFolder(str(tmp_path)).load()


def test_npy_pool_is_memory_mapped_and_validated(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3))
    pool = NpyPool(str(good))
    assert isinstance(pool.array, np.memmap) and len(pool) == 4
    assert pool.load(np.array([2, 0])).shape == (2, 3, 8, 8)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 8, 8), dtype=np.float32))
    with pytest.raises(OEADError, match="bad.npy"):
        NpyPool(str(bad))
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"garbage")
    with pytest.raises(OEADError, match="junk.npy"):
        NpyPool(str(junk))
    with pytest.raises(OEADError, match="missing.npy"):
        NpyPool(str(tmp_path / "missing.npy"))

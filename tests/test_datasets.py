"""ImageNet-30, ImageNet-22k, 80 Million Tiny Images, MVTec-AD, LOO and ResNet-18-CBAM on fake data made here."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from oe_ad.config import CONF_DIR
from oe_ad.config.schema import resolve_milestones
from oe_ad.data import imagenet as imagenet_mod
from oe_ad.data.benchmarks import normal_class_names, split
from oe_ad.data.datamodule import OEDataModule
from oe_ad.data.imagenet import IMAGENET30_CLASSES, ImageNet30, read_wnids
from oe_ad.data.images import decode_all, list_images
from oe_ad.data.mvtec import CATEGORIES, MVTecAD
from oe_ad.data.options import Augmentation
from oe_ad.data.pools import ImageNet22kPool, TinyImagesPool
from oe_ad.data.stream import OEStream
from oe_ad.errors import OEADError
from oe_ad.job.lightning import run_job
from oe_ad.nets.resnet_cbam import ResNet18CBAM
from oe_ad.sweep import expand


def save_images(folder: Path, n: int, value: int, size=(48, 40), suffix: str = ".png") -> None:
    """n images of one grey level (+ the index in a JPEG-proof 8x8 block); non-square, so decoding resizes + crops."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((size[1], size[0], 3), value, np.uint8)
        img[:8, :8] = (value + 16 * i) % 256
        Image.fromarray(img).save(folder / f"{i:03d}{suffix}")


@pytest.fixture(scope="module")
def imagenet30_root(tmp_path_factory) -> Path:
    """train/<class>/ (2 images) and val/<class>/ (1 image) for the 30 classes, each class its own grey level."""
    root = tmp_path_factory.mktemp("in30")
    for k, cls in enumerate(reversed(IMAGENET30_CLASSES)):  # created out of order: the order is the class list's
        value = 8 * (29 - k)
        save_images(root / "train" / cls, 2, value)
        save_images(root / "val" / cls, 1, value)
    return root


IN1K_NOT_30 = "n01440764"  # tench: in ImageNet-1k, not in ImageNet-30
IN30 = "n12267677"  # acorn
NOT_IN1K = ("n00004475", "n09999999")


@pytest.fixture(scope="module")
def in22k_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("in22k")
    for value, wnid in enumerate((IN30, IN1K_NOT_30, *NOT_IN1K)):
        save_images(root / wnid, 3, 50 * (value + 1), size=(40, 40), suffix=".JPEG")
    (root / "README.txt").write_text("not a synset folder")
    return root


@pytest.fixture(scope="module")
def mvtec_root(tmp_path_factory) -> Path:
    """One category, bottle: 4 good training images; test/good (2) and two defect folders (2 + 1)."""
    root = tmp_path_factory.mktemp("mvtec")
    base = root / "bottle"
    save_images(base / "train" / "good", 4, 100, size=(40, 40))
    save_images(base / "test" / "good", 2, 100, size=(40, 40))
    save_images(base / "test" / "broken_large", 2, 200, size=(40, 40))
    save_images(base / "test" / "contamination", 1, 30, size=(40, 40))
    (base / "ground_truth" / "broken_large").mkdir(parents=True)
    return root


def write_tiny_images(path: Path, images: np.ndarray) -> None:
    """The tiny_images.bin layout: each 32x32x3 image column-major (MATLAB order), 3,072 bytes."""
    with open(path, "wb") as fh:
        for img in images:
            fh.write(img.flatten(order="F").tobytes())


@pytest.fixture(scope="module")
def tiny_bin(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    d = tmp_path_factory.mktemp("tiny")
    images = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)  # HWC
    write_tiny_images(d / "tiny_images.bin", images)
    (d / "cifar_idxs.txt").write_text("2\n5\n10\n")  # 1-based: file images 1, 4, 9 are CIFAR
    return d / "tiny_images.bin", d / "cifar_idxs.txt", images


# ---- benchmarks ------------------------------------------------------------------------------------


def test_one_vs_rest_and_leave_one_out_labels_on_a_toy_dataset():
    train, test = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 2, 2])
    normal_idx, anomalous = split(train, test, normal_class=1, num_classes=3, benchmark="ovr")
    assert normal_idx.tolist() == [1, 4] and anomalous.tolist() == [1, 0, 1, 1]
    normal_idx, anomalous = split(train, test, normal_class=1, num_classes=3, benchmark="loo")
    assert normal_idx.tolist() == [0, 2, 3, 5] and anomalous.tolist() == [0, 1, 0, 0]
    assert normal_class_names(["a", "b", "c"], 1, "loo") == ["a", "c"]
    with pytest.raises(OEADError, match="benchmark=nope"):
        split(train, test, 1, 3, "nope")


# ---- ImageNet-30 -----------------------------------------------------------------------------------


def test_imagenet30_classes_in_spec_order_decoded_once_and_val_accepted(imagenet30_root, tmp_path):
    src = ImageNet30(str(imagenet30_root), image_size=40, cache_dir=str(tmp_path))
    train, test = src.load()
    assert src.classes == IMAGENET30_CLASSES and src.classes[0] == "acorn" and src.classes[29] == "volcano"
    assert train.images.shape == (60, 3, 40, 40) and test.images.shape == (30, 3, 40, 40)  # 48x40 -> 40x40
    assert train.labels.tolist() == [k for k in range(30) for _ in range(2)]
    assert (train.images[train.labels == 3, 1].float().mean() - 8 * 3).abs() < 1  # class 3's own images
    assert len(list(tmp_path.glob("images-*.npy"))) == 2
    cached = decode_all(list_images(imagenet30_root / "train"), 40, tmp_path)  # same files: the cached array
    assert isinstance(cached, np.memmap) and np.array_equal(cached, train.images.numpy())


def test_imagenet30_missing_class_folder_is_named(tmp_path):
    save_images(tmp_path / "train" / "acorn", 1, 0)
    save_images(tmp_path / "test" / "acorn", 1, 0)
    with pytest.raises(OEADError, match="airliner"):
        ImageNet30(str(tmp_path), 40).load()


def test_datamodule_ovr_and_loo_on_imagenet30(imagenet30_root):
    def setup(benchmark):
        aug = Augmentation(crop=32, padding=0)
        dm = OEDataModule(ImageNet30(str(imagenet30_root), 40), None, 2, None, 0, batch_size=4, augmentation=aug)
        dm.benchmark = benchmark
        dm.setup()
        return dm

    ovr, loo = setup("ovr"), setup("loo")
    assert len(ovr.train_normal) == 2 and int(ovr.test_labels.sum()) == 29
    assert len(loo.train_normal) == 58 and loo.test_labels.tolist() == [int(k == 2) for k in range(30)]
    assert loo.normal_names == [c for c in IMAGENET30_CLASSES if c != "ambulance"]
    x, _ = next(iter(ovr.train_dataloader()))
    assert x.shape == (4, 3, 32, 32)  # random 32 crop of the 40 image, no padding


# ---- ImageNet-22k ----------------------------------------------------------------------------------


def test_wnid_lists_are_packaged():
    in1k, in30 = read_wnids("imagenet1k"), read_wnids("imagenet30")
    assert len(in1k) == 1000 and len(in30) == 30 and in30 < in1k and IN30 in in30
    assert read_wnids("none") == set()
    with pytest.raises(OEADError, match="oe.exclude=bogus"):
        read_wnids("bogus")


def test_imagenet22k_excludes_synsets_and_caches_its_index(in22k_root, tmp_path, monkeypatch):
    pool = ImageNet22kPool(str(in22k_root), exclude="imagenet1k", image_size=32, cache_dir=str(tmp_path), workers=0)
    assert pool.kept_synsets == sorted(NOT_IN1K) and len(pool) == 6
    assert {p.parent.name for p in map(pool.path, range(len(pool)))} == set(NOT_IN1K)
    assert len(list(tmp_path.glob("imagenet22k-index-*.npz"))) == 1

    def boom(*a):
        raise AssertionError("indexed again")

    monkeypatch.setattr(imagenet_mod, "build_index", boom)  # the second pool reads the cached index
    only30 = ImageNet22kPool(str(in22k_root), exclude="imagenet30", image_size=32, cache_dir=str(tmp_path), workers=0)
    assert only30.kept_synsets == sorted([IN1K_NOT_30, *NOT_IN1K]) and len(only30) == 9
    images = pool.load(np.array([0, 4]))
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images, pool.load(np.array([0, 4])))  # second time from the subset cache
    with pytest.raises(OEADError, match="no images"):
        everything = write_list(tmp_path, [IN30, IN1K_NOT_30, *NOT_IN1K])
        ImageNet22kPool(str(in22k_root), exclude=str(everything), cache_dir=str(tmp_path))


def write_list(folder: Path, wnids: list[str]) -> Path:
    path = folder / "exclude.txt"
    path.write_text("\n".join(wnids))
    return path


def test_a_pool_larger_than_max_in_memory_is_streamed_in_balanced_batches(in22k_root, imagenet30_root, tmp_path):
    pool = ImageNet22kPool(str(in22k_root), exclude="none", image_size=40, cache_dir=str(tmp_path), workers=0)
    pool.max_in_memory = 4
    dm = OEDataModule(ImageNet30(str(imagenet30_root), 40), pool, 0, None, seed=0, batch_size=4, augment=False)
    dm.setup()
    assert isinstance(dm.train_oe, OEStream) and len(dm.train_oe) == 12
    dm.augmenter.train = lambda x, gen: x  # look at the raw uint8 batch
    batches = list(dm.train_dataloader())
    assert len(batches) == 1
    x, is_normal = batches[0]
    assert x.shape == (8, 3, 40, 40) and is_normal.tolist() == [True] * 4 + [False] * 4
    pool_images = pool.load(np.arange(len(pool)))
    for img in x[4:]:  # the OE half holds pool images, distinct within the epoch
        assert (pool_images == img).flatten(1).all(1).sum() == 1
    again = next(iter(dm.train_dataloader()))[0]
    assert torch.equal(x, again)  # the stream order is fixed by seed and epoch


# ---- 80 Million Tiny Images ------------------------------------------------------------------------


def test_tiny_images_reads_column_major_images_and_skips_excluded(tiny_bin):
    path, exclude, images = tiny_bin
    pool = TinyImagesPool(str(path), str(exclude))
    kept = [i for i in range(10) if i not in (1, 4, 9)]
    assert len(pool) == 7 and pool.file_index(np.arange(7)).tolist() == kept
    loaded = pool.load(np.arange(7))
    assert loaded.shape == (7, 3, 32, 32)
    assert np.array_equal(loaded.numpy(), images[kept].transpose(0, 3, 1, 2))  # HWC image -> CHW, not transposed
    assert np.array_equal(pool.read(3), images[kept[3]].transpose(2, 0, 1))
    with pytest.raises(OEADError, match="outside"):  # read as 0-based, index 10 is past the 10 images
        TinyImagesPool(str(path), str(exclude), one_based=False)


def test_tiny_images_validation(tiny_bin, tmp_path):
    path, _, _ = tiny_bin
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\0" * 3000)
    with pytest.raises(OEADError, match="bad.bin"):
        TinyImagesPool(str(bad))
    out_of_range = tmp_path / "idx.txt"
    out_of_range.write_text("11\n")
    with pytest.raises(OEADError, match="idx.txt"):
        TinyImagesPool(str(path), str(out_of_range))
    with pytest.raises(OEADError, match="missing.txt"):
        TinyImagesPool(str(path), str(tmp_path / "missing.txt"))


# ---- MVTec-AD --------------------------------------------------------------------------------------


def test_mvtec_good_vs_every_defect_folder(mvtec_root, tmp_path):
    src = MVTecAD(str(mvtec_root), image_size=32, cache_dir=str(tmp_path), download=False)
    train, test, anomalous = src.benchmark_split(0)
    assert src.classes == CATEGORIES and len(CATEGORIES) == 15 and CATEGORIES[0] == "bottle"
    assert train.shape == (4, 3, 32, 32) and test.shape == (5, 3, 32, 32)
    assert anomalous.tolist() == [1, 1, 1, 0, 0]  # broken_large, contamination, good (sorted folders)
    with pytest.raises(OEADError, match="cable"):
        src.benchmark_split(1)  # a missing category is named; no download with other categories present
    with pytest.raises(OEADError, match="benchmark=loo"):
        src.benchmark_split(0, "loo")
    with pytest.raises(OEADError, match="normal_class=15"):
        src.benchmark_split(15)


# ---- ResNet-18-CBAM --------------------------------------------------------------------------------


def test_resnet18_cbam_shapes_and_gradients_at_224():
    torch.manual_seed(0)
    net = ResNet18CBAM()
    out = net(torch.randn(2, 3, 224, 224))
    assert net.out_dim == 256 and out.shape == (2, 256)
    out.pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert 11e6 < sum(p.numel() for p in net.parameters()) < 12e6  # ResNet-18 size + CBAM + 512->256


# ---- configs and training jobs ---------------------------------------------------------------------


def compose_cfg(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_data_configs_pick_their_net_oe_schedule_and_sweep():
    cfg = compose_cfg("data=imagenet30")
    assert cfg.net._target_.endswith("ResNet18CBAM") and cfg.oe.name == "imagenet22k"
    assert (cfg.epochs, resolve_milestones(cfg.milestones, cfg.epochs)) == (150, [100, 125])
    assert (cfg.augmentation.crop, cfg.augmentation.padding, cfg.data.image_size) == (224, 0, 256)
    assert compose_cfg("data=imagenet30", "net=cnn32", "oe=tiny_images").net._target_.endswith("CNN32")
    assert compose_cfg("data=imagenet30", "oe=none").oe is None
    mvtec = compose_cfg("data=mvtec")
    assert (mvtec.epochs, resolve_milestones(mvtec.milestones, mvtec.epochs), mvtec.oe.name) == (
        300,
        [200, 250],
        "imagenet22k",
    )
    assert compose_cfg().net._target_.endswith("CNN32")  # CIFAR-10 keeps CNN32
    assert len(expand(["data=mvtec"])) == 15 * 10 and len(expand(["data=imagenet30", "seed=0"])) == 30


def job_overrides(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "epochs=1",
        "milestones=[1]",
        "batch_size=4",
        "logger=none",
        "trainer.accelerator=cpu",
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path}/cache",
        *extra,
    ]


def run(tmp_path: Path, *overrides: str) -> dict:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=job_overrides(tmp_path, *overrides))
    record = run_job(cfg, tmp_path / "job")
    assert (tmp_path / "job" / "result.json").exists() and 0 <= record["test_auroc"] <= 1
    return record


SMALL_224 = ("data.image_size=40", "augmentation.crop=32", "oe.image_size=40", "oe.workers=0", "data.workers=0")


def test_job_on_imagenet30_with_imagenet22k_oe(imagenet30_root, in22k_root, tmp_path):
    r = run(tmp_path, "data=imagenet30", f"data.root={imagenet30_root}", f"oe.root={in22k_root}", "oe_size=4",
            "method=hsc", "normal_class=1", *SMALL_224)  # fmt: skip
    assert (r["data"], r["oe"], r["class_name"], r["oe_count"]) == ("imagenet30", "imagenet22k", "airliner", 4)
    assert r["config"]["net"]["_target_"].endswith("ResNet18CBAM")


def test_loo_job_on_imagenet30_streaming_the_oe(imagenet30_root, in22k_root, tmp_path):
    r = run(tmp_path, "data=imagenet30", f"data.root={imagenet30_root}", f"oe.root={in22k_root}", "benchmark=loo",
            "oe.max_in_memory=2", "net=cnn32", *SMALL_224)  # fmt: skip
    assert r["benchmark"] == "loo" and r["oe_count"] == 6  # the whole pool (ImageNet-1k synsets excluded)


def test_job_on_mvtec(mvtec_root, in22k_root, tmp_path):
    r = run(tmp_path, "data=mvtec", f"data.root={mvtec_root}", "data.download=false", f"oe.root={in22k_root}",
            "oe.exclude=imagenet30", "net=cnn32", *SMALL_224)  # fmt: skip
    assert (r["data"], r["class_name"], r["oe_count"]) == ("mvtec", "bottle", 9)


def test_job_with_tiny_images_oe(folder_root, tiny_bin, tmp_path):
    path, exclude, _ = tiny_bin
    r = run(tmp_path, "data=folder", f"data.root={folder_root}", "oe=tiny_images", f"oe.path={path}",
            f"oe.exclude_file={exclude}", "oe_size=5")  # fmt: skip
    assert r["oe"] == "tiny_images" and r["oe_count"] == 5

"""The paper's code's other one-vs-rest benchmarks (MNIST, Fashion-MNIST, DTD, CUB-200-2011) and EMNIST letters as
OE, on small files in each format written here: idx files, a DTD tree with its split lists, a CUB_200_2011 tree."""

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.dtd as tv_dtd
import torchvision.datasets.mnist as tv_mnist
from hydra import compose, initialize_config_dir
from PIL import Image

from conftest import tiny_job
from oe_ad.config import CONF_DIR
from oe_ad.config.schema import resolve_milestones, validate_config
from oe_ad.data import cub as cub_mod
from oe_ad.data import fingerprint as fp
from oe_ad.data.cub import CUB200
from oe_ad.data.datamodule import OEDataModule
from oe_ad.data.dtd import DTD
from oe_ad.data.mnist import MNIST, EMNISTLetters, FashionMNIST
from oe_ad.data.pools import NpyPool
from oe_ad.errors import OEADError
from oe_ad.sweep import expand


def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format of MNIST's files: magic 0x0000 08 <ndim> (unsigned bytes), each dimension big-endian, data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def digits(labels: np.ndarray) -> np.ndarray:
    """28x28 images whose grey level is 20 * label + 10, with a bright top row (so a transposition shows)."""
    images = np.repeat((20 * labels + 10).astype(np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    images[:, 0, :] = 255
    return images


def write_mnist_like(root: Path, folder: str, train_labels: np.ndarray, test_labels: np.ndarray) -> None:
    for prefix, labels in (("train", train_labels), ("t10k", test_labels)):
        write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", digits(labels))
        write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels)


@pytest.fixture(scope="module")
def idx_root(tmp_path_factory) -> Path:
    """MNIST and FashionMNIST (3 training and 2 test images per class) and EMNIST letters (2 per letter, 1..26)."""
    root = tmp_path_factory.mktemp("idx")
    for folder in ("MNIST", "FashionMNIST"):
        write_mnist_like(root, folder, np.repeat(np.arange(10), 3), np.repeat(np.arange(10), 2))
    letters = np.repeat(np.arange(1, 27), 2)
    write_idx(root / "EMNIST" / "raw" / "emnist-letters-train-images-idx3-ubyte", digits(letters % 12))
    write_idx(root / "EMNIST" / "raw" / "emnist-letters-train-labels-idx1-ubyte", letters)
    return root


def save_jpeg(path: Path, value: int, size: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size + 8, 3), value, np.uint8)).save(path, quality=95)


@pytest.fixture(scope="module")
def dtd_root(tmp_path_factory) -> Path:
    """root/dtd/dtd/: one training, validation and test image per class, listed in labels/{train,val,test}1.txt
    (the classes listed out of order: labels come from the names)."""
    root = tmp_path_factory.mktemp("dtd")
    base = root / "dtd" / "dtd"
    for split in ("train", "val", "test"):
        lines = []
        for k, cls in reversed(list(enumerate(DTD.classes))):
            name = f"{cls}/{cls}_{split}.jpg"
            save_jpeg(base / "images" / name, 5 * k)
            lines.append(name)
        (base / "labels").mkdir(exist_ok=True)
        (base / "labels" / f"{split}1.txt").write_text("".join(f"{line}\n" for line in lines))
    return root


CUB_USED = (0, 1, 2, 199)  # the classes with images in the fake tree (all 200 are in classes.txt)


def write_cub(root: Path) -> Path:
    """root/CUB_200_2011/: classes.txt of all 200 classes; images of CUB_USED classes, 2 training and 1 test each."""
    base = root / "CUB_200_2011"
    base.mkdir(parents=True)
    (base / "classes.txt").write_text("".join(f"{k + 1} {k + 1:03d}.{c}\n" for k, c in enumerate(CUB200.classes)))
    images, labels, split = [], [], []
    for k in CUB_USED:
        for i, training in enumerate((1, 1, 0)):
            path = f"{k + 1:03d}.{CUB200.classes[k]}/{CUB200.classes[k]}_{i}.jpg"
            save_jpeg(base / "images" / path, (k + 30 * i) % 256)
            images.append(path)
            labels.append(k + 1)
            split.append(training)
    for name, values in (("images.txt", images), ("image_class_labels.txt", labels), ("train_test_split.txt", split)):
        (base / name).write_text("".join(f"{i + 1} {v}\n" for i, v in enumerate(values)))
    return root


@pytest.fixture(scope="module")
def cub_root(tmp_path_factory) -> Path:
    return write_cub(tmp_path_factory.mktemp("cub"))


# -- the sources -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [MNIST, FashionMNIST])
def test_mnist_and_fashion_mnist_read_idx_files_into_three_grey_channels_one_vs_rest(kind, idx_root):
    src = kind(str(idx_root), download=False)
    train, test = src.load()
    assert train.images.shape == (30, 3, 32, 32) and test.images.shape == (20, 3, 32, 32) and src.grey
    assert (
        torch.equal(train.images[:, 0], train.images[:, 2])
        and train.labels.tolist() == np.repeat(range(10), 3).tolist()
    )
    normal, images, labels = src.benchmark_split(4)
    assert (
        len(normal) == 3 and int(normal[0, 0, 16, 16]) == 90 and labels.tolist() == [int(c != 4) for c in test.labels]
    )
    native, _ = kind(str(idx_root), image_size=None, download=False).load()
    assert native.images.shape[-2:] == (28, 28) and int(native.images[0, 0, 0, 5]) == 255
    expected = np.asarray(Image.fromarray(digits(np.array([4]))[0]).convert("RGB").resize((32, 32), Image.BILINEAR))
    assert np.array_equal(normal[0].permute(1, 2, 0).numpy(), expected)  # as images.decode resizes a saved digit


def test_a_missing_idx_file_is_named_and_nothing_is_downloaded_unasked(tmp_path):
    with pytest.raises(OEADError, match=r"no MNIST idx files in .*MNIST/raw \(set data.download=true\)"):
        MNIST(str(tmp_path), download=False).load()


def test_emnist_letters_are_upright_and_the_paper_s_pool_has_no_z(idx_root):
    paper, every = EMNISTLetters(str(idx_root), download=False), EMNISTLetters(str(idx_root), letters="all")
    assert len(paper) == 50 and len(every) == 52 and paper.images.shape[1:] == (3, 32, 32)
    first = EMNISTLetters(str(idx_root), image_size=None).images[0, 0]
    assert bool((first[:, 0] == 255).all()) and not bool((first[0, 1:] == 255).all())  # the bright row is a column
    with pytest.raises(OEADError, match="oe.letters=z"):
        EMNISTLetters(str(idx_root), letters="z")


def test_dtd_through_torchvision_trains_on_the_train_list_and_tests_on_the_test_list(dtd_root):
    src = DTD(str(dtd_root), image_size=32, download=False)
    train, test = src.load()
    assert len(src.classes) == 47 and train.labels.tolist() == list(range(46, -1, -1)) == test.labels.tolist()
    assert abs(int(train.images[0, 0, 16, 16]) - 5 * 46) <= 2  # zigzagged, listed first
    normal, _, labels = src.benchmark_split(46)
    assert len(normal) == 1 and labels.tolist() == [0] + [1] * 46
    with pytest.raises(OEADError, match="no readable DTD"):
        DTD(str(dtd_root), partition=2, download=False).load()
    with pytest.raises(OEADError, match="data.partition=0"):
        DTD(str(dtd_root), partition=0)


def test_cub_reads_its_index_files_as_the_paper_s_code_does(cub_root, tmp_path):
    src = CUB200(str(cub_root), image_size=32, download=False)
    train, test = src.load()
    assert len(src.classes) == 200 and train.labels.tolist() == [0, 0, 1, 1, 2, 2, 199, 199]
    assert test.labels.tolist() == [0, 1, 2, 199] and train.images.shape == (8, 3, 32, 32)
    normal, _, labels = src.benchmark_split(199)
    assert len(normal) == 2 and labels.tolist() == [1, 1, 1, 0]
    bad = write_cub(tmp_path / "bad")
    names = bad / "CUB_200_2011" / "classes.txt"
    names.write_text(names.read_text().replace("002.Laysan_Albatross", "002.Albatross"))
    with pytest.raises(OEADError, match="classes.txt: class 2 is not 'Laysan_Albatross'"):
        CUB200(str(bad)).load()
    split = bad / "CUB_200_2011" / "train_test_split.txt"
    names.write_text((cub_root / "CUB_200_2011" / "classes.txt").read_text())
    split.write_text(split.read_text().replace("12 0", "12 2"))
    with pytest.raises(OEADError, match="train_test_split.txt 0 or 1"):
        CUB200(str(bad)).load()
    split.write_text("x 1\n")
    with pytest.raises(OEADError, match="train_test_split.txt:1: expected '<id> <value>'"):
        CUB200(str(bad)).load()


# -- identity and downloads ----------------------------------------------------------------------------------------
def copy_fp(kind, root: Path, **spec) -> str | None:
    return kind.fingerprint({"root": str(root), **spec}, fp.Cache())


@pytest.mark.parametrize(
    "kind, changed",
    [
        (MNIST, "MNIST/raw/t10k-labels-idx1-ubyte"),
        (FashionMNIST, "FashionMNIST/raw/train-images-idx3-ubyte"),
        (EMNISTLetters, "EMNIST/raw/emnist-letters-train-labels-idx1-ubyte"),
        (DTD, "dtd/dtd/labels/test1.txt"),
        (DTD, "dtd/dtd/images/banded/banded_train.jpg"),
        (CUB200, "CUB_200_2011/train_test_split.txt"),
        (CUB200, "CUB_200_2011/images/003.Sooty_Albatross/Sooty_Albatross_2.jpg"),
    ],
)
def test_a_fingerprint_changes_when_a_file_the_source_reads_changes(
    kind, changed, idx_root, dtd_root, cub_root, tmp_path
):
    source = {DTD: dtd_root, CUB200: cub_root}.get(kind, idx_root)
    root = tmp_path / "copy"
    shutil.copytree(source, root)
    first = copy_fp(kind, root)
    assert first is not None and copy_fp(kind, root) == first
    (root / changed).write_bytes((root / changed).read_bytes() + b"\n")
    assert copy_fp(kind, root) not in (None, first)
    if kind is EMNISTLetters:
        assert copy_fp(kind, root, letters="all") != copy_fp(kind, root)


def test_mnist_fingerprint_ignores_files_it_does_not_read(idx_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(idx_root, root)
    first = copy_fp(MNIST, root)
    (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"an archive left behind")
    (root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"another dataset")
    assert copy_fp(MNIST, root) == first


def test_identifying_never_downloads_and_each_source_fetches_its_own_archive(
    idx_root, dtd_root, cub_root, tmp_path, monkeypatch
):
    fetched = []

    def fake(source: Path, into):
        def download_and_extract_archive(url, download_root, filename=None, md5=None, **_):
            fetched.append((url, md5))
            shutil.copytree(source, into(Path(download_root)), dirs_exist_ok=True)

        return download_and_extract_archive

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", fake(idx_root / "MNIST" / "raw", lambda d: d))
    monkeypatch.setattr(tv_dtd, "download_and_extract_archive", fake(dtd_root / "dtd", lambda d: d))
    monkeypatch.setattr(cub_mod, "download_and_extract_archive", fake(cub_root, lambda d: d))
    for kind, source in ((MNIST, idx_root), (DTD, dtd_root), (CUB200, cub_root)):
        target = tmp_path / kind.__name__
        assert copy_fp(kind, target, download=True) is None and fetched == []  # identifying: nothing fetched
        kind.fetch({"root": str(target), "download": False})
        assert fetched == []
        kind.fetch({"root": str(target), "download": True})
        assert fetched and copy_fp(kind, target) == copy_fp(kind, source)
        url, md5 = fetched[-1]
        assert url.startswith("https://") and len(md5) == 32
        count = len(fetched)
        kind.fetch({"root": str(target), "download": True})  # present: nothing more
        assert len(fetched) == count
        fetched.clear()


# -- configs and jobs ----------------------------------------------------------------------------------------------
def compose_cfg(*overrides: str, hydra: bool = False):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def test_each_data_config_takes_its_runner_s_net_oe_schedule_and_sweep():
    expected = {  # data: (net, oe, epochs, milestones, batch_size, crop, augment, classes)
        "mnist": ("CNN32", "emnist", 200, [100, 150], 128, 32, False, 10),
        "fmnist": ("CNN32", "cifar100", 200, [100, 150], 128, 32, True, 10),
        "dtd": ("ResNet18CBAM", "imagenet22k", 150, [100, 125], 40, 224, True, 47),
        "cub200": ("ResNet18CBAM", "imagenet22k", 150, [100, 125], 30, 224, True, 200),
    }
    for data, (net, oe, epochs, milestones, batch, crop, augment, classes) in expected.items():
        cfg = compose_cfg(f"data={data}")
        got = (
            cfg.net._target_.rpartition(".")[2],
            cfg.oe.name,
            cfg.epochs,
            resolve_milestones(cfg.milestones, cfg.epochs),
        )
        assert got + (cfg.batch_size, cfg.augmentation.crop, cfg.augment) == (
            net,
            oe,
            epochs,
            milestones,
            batch,
            crop,
            augment,
        )
        assert len(expand([f"data={data}", "seed=0"])) == classes
    assert compose_cfg("data=dtd").augmentation.noise == 0 and compose_cfg("data=fmnist").augmentation.jitter == 0


def test_the_schema_knows_each_fixed_dataset_s_classes_from_its_source(tmp_path):
    for data, n in (("mnist", 10), ("fmnist", 10), ("dtd", 47), ("cub200", 200)):
        ok = compose_cfg(f"data={data}", f"normal_class={n - 1}", "oe=none", "method=deep_svdd",
                         f"paths.output_dir={tmp_path}")  # fmt: skip
        validate_config(ok)
        with pytest.raises(OEADError, match=f"normal_class={n}: must be <= {n - 1}"):
            validate_config(compose_cfg(f"data={data}", f"normal_class={n}", "oe=none", "method=deep_svdd",
                                        f"paths.output_dir={tmp_path}"))  # fmt: skip


def test_a_grey_dataset_makes_its_oe_grey_as_the_paper_s_grayscale_does(idx_root, tmp_path):
    colours = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "colour.npy", colours)
    dm = OEDataModule(FashionMNIST(str(idx_root)), NpyPool(str(tmp_path / "colour.npy")), 0, None, seed=0)
    dm.setup()
    oe = dm.train_oe  # the whole pool, in order
    luma = np.stack([np.asarray(Image.fromarray(c).convert("L")) for c in colours])  # PIL's, as Grayscale(1)
    assert all(torch.equal(oe[:, 0], oe[:, c]) for c in (1, 2)) and np.array_equal(oe[:, 0].numpy(), luma)


def test_jobs_train_and_record_on_each_benchmark(idx_root, dtd_root, cub_root, oe_npy, tmp_path):
    small = ("net=cnn32", "data.image_size=36", "augmentation.crop=32", "oe=npy", f"oe.path={oe_npy}", "data.workers=0")
    runs = [
        ("mnist", 3, ["data=mnist", f"data.root={idx_root}", "data.download=false", f"oe.root={idx_root}",
                      "oe.download=false", "normal_class=3"]),
        ("fmnist", 9, ["data=fmnist", f"data.root={idx_root}", "data.download=false", "oe=npy", f"oe.path={oe_npy}",
                       "normal_class=9"]),
        ("dtd", 5, ["data=dtd", f"data.root={dtd_root}", "data.download=false", "normal_class=5", *small]),
        ("cub200", 199, ["data=cub200", f"data.root={cub_root}", "data.download=false", "normal_class=199", *small]),
    ]  # fmt: skip
    for data, k, overrides in runs:
        r = tiny_job(tmp_path / data, *overrides)
        assert (r["data"], r["normal_class"]) == (data, k) and len(r["config"]["data"]["fingerprint"]) == 16
    assert r["class_name"] == "Common_Yellowthroat"

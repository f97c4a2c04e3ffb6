"""The paper's code's custom-data layouts for ``data=folder`` (one vs. rest over class folders; ``normal/`` vs.
``anomalous/`` per class) and a class's own known anomalies as OE (``oe=anomalies``), on folders made here."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from conftest import tiny_job
from oe_ad.config import CONF_DIR
from oe_ad.data import fingerprint as fp
from oe_ad.data.anomalies import ClassAnomalies
from oe_ad.data.datamodule import OEDataModule
from oe_ad.data.sources import ImageFolder
from oe_ad.errors import OEADError

# grey levels: class k's normal images are NORMAL[k], its anomalies ANOMALY[k]; pixel (0, 0) numbers the image and
# pixel (0, 1) the split, so no two files are the same
NORMAL, ANOMALY = (40, 120, 200), (80, 160, 240)


def save(folder: Path, n: int, value: int, split: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        img = np.full((32, 32, 3), value, np.uint8)
        img[0, 0], img[0, 1] = i, split
        Image.fromarray(img).save(folder / f"{i:03d}.png")


def make_tree(root: Path, classes: int = 3) -> Path:
    """``{train,test}/c<k>/{normal,anomalous}/``: 8 normal + 3 anomalous training images, 4 + 2 test images."""
    for s, (split, n, m) in enumerate((("train", 8, 3), ("test", 4, 2))):
        for k in range(classes):
            save(root / split / f"c{k}" / "normal", n, NORMAL[k], s)
            save(root / split / f"c{k}" / "anomalous", m, ANOMALY[k], s)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("normal_anomalous"))


def grey_levels(images: torch.Tensor) -> set[int]:
    return set(images[:, 0, 5, 5].tolist())


def test_normal_anomalous_layout_trains_on_normal_and_tests_the_class_against_its_own_anomalies(tree):
    src = ImageFolder(str(tree), cache_dir=None)
    train, test, labels = src.benchmark_split(1)
    assert src.classes == ["c0", "c1", "c2"]
    assert len(train) == 8 and grey_levels(train) == {NORMAL[1]}  # the training anomalies are never read here
    assert labels.tolist() == [0] * 4 + [1] * 2 and grey_levels(test[:4]) == {NORMAL[1]}
    assert grey_levels(test[4:]) == {ANOMALY[1]} and src.anomaly_classes(1) == []  # no other class is tested
    with pytest.raises(OEADError, match="benchmark=loo"):
        src.benchmark_split(1, "loo")
    classes = ImageFolder(str(tree), layout="classes")  # the same folders read whole: one vs. rest
    train, test, labels = classes.benchmark_split(1)
    assert len(train) == 11 and len(test) == 18 and int(labels.sum()) == 12


def test_a_folder_that_fits_no_layout_is_refused_with_its_path(tmp_path):
    mixed = make_tree(tmp_path / "mixed", 2)
    save(mixed / "train" / "c9", 2, 10, 0)  # a class without normal/
    with pytest.raises(OEADError, match="train/c0/ has a normal/ folder but train/c9/ has none"):
        ImageFolder(str(mixed)).load()
    flat = tmp_path / "flat"  # the classes are normal/ and anomalous/ themselves
    for name in ("normal", "anomalous"):
        save(flat / "train" / name, 2, 10, 0)
        save(flat / "test" / name, 2, 10, 1)
    with pytest.raises(OEADError, match="a class folder named train/anomalous/"):
        ImageFolder(str(flat)).load()
    odd = make_tree(tmp_path / "odd", 1)
    save(odd / "test" / "c0" / "defects", 1, 10, 1)
    with pytest.raises(OEADError, match="defects is neither a normal folder"):
        ImageFolder(str(odd)).load()
    loose = make_tree(tmp_path / "loose", 1)
    save(loose / "train" / "c0", 1, 10, 0, start=50)  # neither normal nor anomalous
    with pytest.raises(OEADError, match="050.png lies loose in its class folder"):
        ImageFolder(str(loose)).load()
    with pytest.raises(OEADError, match="data.layout=mixed"):
        ImageFolder(str(loose), layout="mixed")


def test_the_class_anomalies_are_the_pool_and_no_normal_image_ever_is(tree, tmp_path):
    pool = ClassAnomalies(str(tree), normal_class=2)
    assert (pool.layout, pool.class_name, len(pool)) == ("normal_anomalous", "c2", 3)
    assert all(f.parent == tree / "train" / "c2" / "anomalous" for f in pool.files)
    assert grey_levels(pool.load(np.arange(3))) == {ANOMALY[2]}
    train, test = ImageFolder(str(tree)).load()  # every normal image of every class, training and test
    normal = torch.cat([train.images, test.images[~test.anomalous]])
    assert len(normal) == 3 * (8 + 4) and not (pool.images[:, None] == normal[None]).flatten(2).all(-1).any()
    nested = tmp_path / "nested"  # normal images in a subfolder of normal/ stay normal (the paper's code calls them
    shutil.copytree(tree, nested)  # anomalous: it labels an image by the name of the folder it lies in)
    save(nested / "train" / "c2" / "normal" / "more", 2, NORMAL[2], 0, start=20)
    assert len(ClassAnomalies(str(nested), 2)) == 3 and len(ImageFolder(str(nested)).benchmark_split(2)[0]) == 10
    shutil.copy(nested / "train" / "c2" / "normal" / "000.png", nested / "train" / "c2" / "anomalous" / "copy.png")
    with pytest.raises(OEADError, match="anomalous/copy.png is the same file as train/c2/normal/000.png"):
        ClassAnomalies(str(nested), 2)
    (nested / "train" / "c2" / "anomalous" / "copy.png").unlink()
    shutil.copy(nested / "test" / "c2" / "normal" / "001.png", nested / "train" / "c2" / "anomalous" / "t.png")
    with pytest.raises(OEADError, match="is the same file as test/c2/normal/001.png"):
        ClassAnomalies(str(nested), 2)
    with pytest.raises(OEADError, match="train/c0/ has no normal/ folder"):
        ClassAnomalies(str(make_flat(tmp_path / "classes")), 0)


def make_flat(root: Path) -> Path:
    for split in ("train", "test"):
        save(root / split / "c0", 2, 10, int(split == "test"))
    return root


def test_mvtec_style_folders_give_every_training_defect_folder_but_good(tmp_path):
    root = tmp_path / "mvtec"
    for k, cat in enumerate(("bottle", "cable")):
        save(root / cat / "train" / "good", 4, NORMAL[k], 0)
        save(root / cat / "train" / "broken", 2, ANOMALY[k], 0)
        save(root / cat / "train" / "scratch", 1, ANOMALY[k], 0, start=10)
        save(root / cat / "test" / "good", 2, NORMAL[k], 1)
        save(root / cat / "test" / "broken", 2, ANOMALY[k], 1, start=20)
    pool = ClassAnomalies(str(root), normal_class=1)
    assert (pool.layout, pool.class_name, len(pool), grey_levels(pool.images)) == ("mvtec", "cable", 3, {ANOMALY[1]})
    with pytest.raises(OEADError, match="normal_class=2 is out of range"):
        ClassAnomalies(str(root), normal_class=2)
    r = tiny_job(tmp_path / "job", "data=mvtec", f"data.root={root}", "data.download=false", "data.image_size=36",
            "data.workers=0", "augmentation.crop=32", "net=cnn32", "oe=anomalies", "normal_class=1")  # fmt: skip
    assert (r["class_name"], r["oe"], r["oe_count"], r["config"]["oe"]["image_size"]) == ("cable", "anomalies", 3, 36)


def test_the_datamodule_refuses_another_class_s_anomalies(tree, tmp_path):
    other = make_tree(tmp_path / "other", 3)
    (other / "train" / "c0").rename(other / "train" / "z0")  # sorted differently: index 0 is now c1
    (other / "test" / "c0").rename(other / "test" / "z0")
    dm = OEDataModule(ImageFolder(str(tree)), ClassAnomalies(str(other), 0), normal_class=0, oe_size=None, seed=0)
    with pytest.raises(OEADError, match="anomalies of class 'c1' but normal_class=0 is 'c0'"):
        dm.setup()


def test_fingerprints_follow_exactly_the_files_each_source_reads(tree, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tree, root)
    data = lambda: ImageFolder.fingerprint({"root": str(root), "layout": "auto"}, fp.Cache())  # noqa: E731
    pool = lambda k=1: ClassAnomalies.fingerprint({"root": str(root), "normal_class": k}, fp.Cache())  # noqa: E731
    first_data, first_pool, other_class = data(), pool(), pool(0)
    assert first_pool != other_class
    save(root / "train" / "c1" / "anomalous", 1, 7, 0)  # rewrites 000.png: the pool reads it, the data do not
    assert pool() != first_pool and data() == first_data and pool(0) == other_class
    save(root / "test" / "c1" / "anomalous", 1, 7, 1)  # a test anomaly: the data's, not the pool's
    assert data() != first_data and pool(0) == other_class
    classes = ImageFolder.fingerprint({"root": str(root), "layout": "classes"}, fp.Cache())
    assert classes not in (None, data())  # the same folders in another layout are other data


def test_data_layout_leaves_the_config_hash_and_the_fingerprint_names_what_it_resolves_to(tree, folder_root):
    from omegaconf import OmegaConf

    from oe_ad.job.records import config_hash

    def identified(root: Path, *overrides: str) -> dict:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=["data=folder", f"data.root={root}", *overrides])
        fp.identify(cfg, reads_oe=False)
        return OmegaConf.to_container(cfg, resolve=True)

    auto, classes = identified(folder_root), identified(folder_root, "data.layout=classes")
    before = identified(folder_root)
    del before["data"]["layout"]  # a record from before data.layout
    assert config_hash(auto) == config_hash(classes) == config_hash(before)
    assert config_hash(identified(tree)) != config_hash(identified(tree, "data.layout=classes"))


def test_a_job_trains_on_a_class_s_normal_images_with_its_anomalies_as_oe(tree, tmp_path):
    r = tiny_job(tmp_path, "data=folder", f"data.root={tree}", "oe=anomalies", "normal_class=1")
    assert (r["data"], r["oe"], r["class_name"], r["oe_count"]) == ("folder", "anomalies", "c1", 3)
    assert r["config"]["oe"]["normal_class"] == 1 and r["config"]["data"]["layout"] == "auto"

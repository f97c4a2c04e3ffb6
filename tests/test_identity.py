"""A job's identity is what its data are, not where they lie (data/fingerprint.py): a moved, renamed or symlinked
dataset is the same job (skipped, same folder); a changed one is never taken for the old one."""

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

import conftest
from conftest import merged, tiny_overrides
from oe_ad import report, run
from oe_ad.config import job_dirname
from oe_ad.data import fingerprint as fp
from oe_ad.data.images import list_images
from oe_ad.job import loop as train
from oe_ad.job.lightning import run_job
from oe_ad.job.records import PATH_KEYS, RECORD_NAME, config_hash, write_record
from test_bad_inputs import call_main


def node(class_path: str, **keys) -> OmegaConf:
    return OmegaConf.create({"name": "x", "_target_": class_path, **keys})


def target(group: str, option: str) -> str:
    """The ``_target_`` of a packaged config (``conf/oe/npy.yaml``): the class, wherever in the package it lives."""
    conf = OmegaConf.load(conftest.CONF_DIR / group / f"{option}.yaml")
    return (conf.data if group == "data" else conf)._target_


FOLDER, NPY, CIFAR = target("data", "folder"), target("oe", "npy"), target("data", "cifar10")


def folder_fp(root: Path, cache: Path | None = None) -> str | None:
    return fp.source_fingerprint(node(FOLDER, root=str(root)), fp.Cache(cache))


@pytest.fixture
def data(folder_root, oe_npy, tmp_path) -> tuple[Path, Path]:
    """Copies of the session's image folder and OE file that a test may move and change."""
    root, npy = tmp_path / "place" / "data", tmp_path / "place" / "oe.npy"
    shutil.copytree(folder_root, root)
    shutil.copy(oe_npy, npy)
    return root, npy


# -- fingerprints ----------------------------------------------------------------------------------------------
def test_a_moved_or_symlinked_folder_keeps_its_fingerprint_and_every_change_changes_it(data, tmp_path):
    root, _ = data
    first = folder_fp(root)
    assert len(first) == 16 and int(first, 16) >= 0
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    root.rename(moved)
    (tmp_path / "link").symlink_to(moved)
    assert folder_fp(moved) == folder_fp(tmp_path / "link") == first
    (moved / "train" / "README.txt").write_text("not an image: not read, not identity")
    assert folder_fp(moved) == first
    (moved / "train" / "class00").mkdir()  # an empty class: the labels of classes 1 and 2 shift
    assert folder_fp(moved) != first
    (moved / "train" / "class00").rmdir()
    img = moved / "train" / "class0" / "000.png"
    original = img.read_bytes()
    changes = {
        "rewritten": lambda: Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img),
        "same size, one byte": lambda: img.write_bytes(original[:-5] + bytes([original[-5] ^ 1]) + original[-4:]),
        "added": lambda: shutil.copy(img, img.with_name("999.png")),
        "renamed": lambda: img.rename(img.with_name("998.png")),
        "resized": lambda: img.write_bytes(original + b"\0"),
    }
    seen = {first}
    for what, change in changes.items():
        change()
        now = folder_fp(moved)
        assert now not in seen, what
        seen.add(now)
        for extra in moved.rglob("99*.png"):  # undo
            extra.unlink()
        img.write_bytes(original)
        assert folder_fp(moved) == first, what


def test_the_cache_spares_the_reading_and_a_touch_re_reads_to_the_same_fingerprint(data, tmp_path, monkeypatch):
    root, npy = data
    reads = []
    digest = fp.content_digest
    monkeypatch.setattr(fp, "content_digest", lambda files, *a: (reads.append(len(files)), digest(files, *a))[1])
    cache = tmp_path / "cache"
    first = folder_fp(root, cache)
    assert reads == [108] and len(list((cache / fp.CACHE_FOLDER).iterdir())) == 1  # 3 classes x (24 + 12)
    assert folder_fp(root, cache) == first and reads == [108]  # cached: listed and stat'ed, not read
    os.utime(root / "train" / "class1" / "003.png")  # a touch: re-read once, same fingerprint
    assert folder_fp(root, cache) == first and reads == [108, 108]
    assert folder_fp(root, cache) == first and reads == [108, 108]  # the touched signature is cached again
    np.save(npy, np.load(npy)[::-1])  # same size and header, other content
    spec = node(NPY, path=str(npy))
    assert fp.source_fingerprint(spec, fp.Cache(str(cache))) == fp.source_fingerprint(spec)


def test_the_walk_lists_what_list_images_lists(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    for name in ("a/x.png", "a/b/y.PNG", ".h.jpg", "other/z.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x" * 10)
    (tmp_path / "a" / "link").symlink_to(tmp_path / "other")  # a symlinked folder: not followed
    (tmp_path / "f.png").symlink_to(tmp_path / "other" / "z.png")  # a symlinked file: read
    (tmp_path / "broken.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "d.png").mkdir()
    listed = {f.rel for f in fp.walk(tmp_path)}
    assert listed == {str(p.relative_to(tmp_path)) for p in list_images(tmp_path)}
    assert listed == {"a/x.png", "a/b/y.PNG", ".h.jpg", "other/z.png", "f.png"}


def test_large_sources_are_sampled_yet_a_sampled_change_or_any_size_change_is_seen(data, monkeypatch):
    root, npy = data
    monkeypatch.setattr(fp, "FULL_HASH_BYTES", 0)
    monkeypatch.setattr(fp, "SAMPLE_FILES", 4)
    assert fp.sample(108) == [0, 36, 71, 107] and fp.sample(3) == [0, 1, 2]
    first = folder_fp(root)
    sampled = root / "train" / "class0" / "000.png"  # the first file of the sorted list is always in the sample
    sampled.write_bytes(sampled.read_bytes()[:-1] + b"\x01")
    assert folder_fp(root) != first
    monkeypatch.setattr(fp, "SAMPLE_CHUNKS", 3)
    monkeypatch.setattr(fp, "CHUNK_BYTES", 1024)
    spec = node(NPY, path=str(npy))
    before = fp.source_fingerprint(spec)
    array = np.load(npy)
    array[-1, -1, -1] ^= 1  # the last byte: in the last chunk
    np.save(npy, array)
    assert fp.source_fingerprint(spec) != before


def test_tiny_images_count_the_excluded_indices_and_cifar_its_batch_files(cifar_root, tmp_path):
    tiny, exclude = tmp_path / "t.bin", tmp_path / "idx.txt"
    tiny.write_bytes(bytes(range(256)) * 12 * 4)
    exclude.write_text("1\n2\n")
    spec = node(target("oe", "tiny_images"), path=str(tiny), exclude_file=str(exclude))
    first = fp.source_fingerprint(spec)
    exclude.write_text("1\n3\n")
    assert fp.source_fingerprint(spec) != first
    cifar = node(CIFAR, root=str(cifar_root), download=False)
    copy = tmp_path / "cifar-copy"
    shutil.copytree(cifar_root, copy)
    (copy / "cifar-10-batches-py" / "readme.html").write_text("not read")
    assert fp.source_fingerprint(node(CIFAR, root=str(copy), download=False)) == (fp.source_fingerprint(cifar))
    (copy / "cifar-10-batches-py" / "test_batch").unlink()
    absent = node(CIFAR, root=str(copy), download=False)
    assert fp.source_fingerprint(absent) is None  # the source names what is missing when built


def test_imagenet22k_is_listed_by_name_and_its_exclusions_count(tmp_path):
    from test_datasets import IN1K_NOT_30, IN30, save_images

    root = tmp_path / "in22k"
    for value, wnid in enumerate((IN30, IN1K_NOT_30)):
        save_images(root / wnid, 3, 50 * (value + 1), size=(40, 40), suffix=".JPEG")
    in22k = target("oe", "imagenet22k")
    first = fp.source_fingerprint(node(in22k, root=str(root), exclude="imagenet1k"), fp.Cache(tmp_path / "c"))
    moved = tmp_path / "moved"
    root.rename(moved)
    assert fp.source_fingerprint(node(in22k, root=str(moved), exclude="imagenet1k")) == first
    assert fp.source_fingerprint(node(in22k, root=str(moved), exclude="imagenet30")) != first
    save_images(moved / IN30, 4, 50, size=(40, 40), suffix=".JPEG")  # one more file: the folder's mtime changes
    assert fp.source_fingerprint(node(in22k, root=str(moved), exclude="imagenet1k"), fp.Cache(tmp_path / "c")) != (
        first
    )


def test_a_source_class_the_package_does_not_know_is_identified_by_its_files_less_the_cache(tmp_path):
    (tmp_path / "d" / "cache").mkdir(parents=True)
    (tmp_path / "d" / "x.bin").write_bytes(b"abc")
    spec = node("collections.OrderedDict", root=str(tmp_path / "d"), cache_dir=str(tmp_path / "d" / "cache"))
    first = fp.source_fingerprint(spec, fp.Cache(str(tmp_path / "d" / "cache")))
    (tmp_path / "d" / "cache" / "images-1.npy").write_bytes(b"cache")
    assert fp.source_fingerprint(spec, fp.Cache(str(tmp_path / "d" / "cache"))) == first
    (tmp_path / "d" / "x.bin").write_bytes(b"abd")
    assert fp.source_fingerprint(spec, fp.Cache(str(tmp_path / "d" / "cache"))) != first


# -- the config hash, the folder name, the record ----------------------------------------------------------------
def test_paths_leave_the_hash_and_the_folder_name_and_the_fingerprint_enters_them(make_cfg, data):
    root, npy = data
    assert job_dirname([f"{k}=/a/b" for k in PATH_KEYS] + ["seed=1"], []) == "seed=1"
    cfg = make_cfg("method=hsc", f"data.root={root}", f"oe.path={npy}")
    train.validate(cfg)
    assert (cfg.data.fingerprint, cfg.oe.fingerprint) == (folder_fp(root), fp.source_fingerprint(cfg.oe))
    config = OmegaConf.to_container(cfg, resolve=True)
    moved = json.loads(json.dumps(config))
    moved["data"]["root"], moved["oe"]["path"] = "/elsewhere/data", "/elsewhere/pool.npy"
    assert config_hash(moved) == config_hash(config)
    moved["data"]["fingerprint"] = "0" * 16
    assert config_hash(moved) != config_hash(config)
    svdd = make_cfg("method=deep_svdd", f"data.root={root}", "oe.path=/no/such.npy")  # reads no OE
    train.validate(svdd)
    assert svdd.oe.fingerprint is None


def test_a_moved_or_symlinked_dataset_is_skipped_in_the_same_folder_and_a_changed_one_is_not(
    data, tmp_path, monkeypatch, capsys
):
    root, npy = data
    trained = []  # the folders of the jobs that trained and wrote a record
    finish = train.finish
    monkeypatch.setattr(train, "finish", lambda job, out: (trained.append(Path(job.spec.dir)), finish(job, out))[1])
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs"
    common = [*tiny_overrides(root, npy, out), "method=hsc", "epochs=1", "milestones=[]", "name=moves"]

    def job(data_root: Path, oe_path: Path, *extra: str) -> int | str:
        """The exit code, or the error line."""
        argv = merged([*common, f"data.root={data_root}", f"oe.path={oe_path}", *extra])
        code, errors = call_main(run.main, argv, monkeypatch, capsys)
        return code if not errors else errors[0]

    assert job(root, npy) == 0 and len(trained) == 1
    folder = trained[0]
    assert folder.parent == out / "moves" / "hsc"
    name = folder.name
    for fragment in ("data.root", "oe.path", "place", "oe.npy", str(tmp_path).strip("/").replace("/", "_")):
        assert fragment not in name
    record = json.loads((folder / RECORD_NAME).read_text())
    read = {"root": os.path.realpath(root)}
    assert record["inputs"]["data"] == {"fingerprint": record["config"]["data"]["fingerprint"], "read": read}
    assert record["inputs"]["oe"]["read"] == {"path": os.path.realpath(npy)}
    written = (folder / RECORD_NAME).stat().st_mtime_ns

    new = tmp_path / "new" / "place"  # (1) moved, the OE file renamed
    new.mkdir(parents=True)
    root.rename(new / "cifar-like")
    npy.rename(new / "pool.npy")
    assert job(new / "cifar-like", new / "pool.npy") == 0
    (tmp_path / "link").symlink_to(new / "cifar-like")  # (2) through a symlink
    assert job(tmp_path / "link", new / "pool.npy") == 0
    assert len(trained) == 1 and (folder / RECORD_NAME).stat().st_mtime_ns == written
    assert sorted(p.name for p in (out / "moves" / "hsc").iterdir()) == [name]  # no second folder

    image = new / "cifar-like" / "test" / "class2" / "005.png"  # (3) one image replaced
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    refused = job(new / "cifar-like", new / "pool.npy")
    assert "record of another config" in refused and len(trained) == 1  # never taken for the old data
    assert "(data.fingerprint differs: the images under data.root changed since this record)" in refused
    assert job(new / "cifar-like", new / "pool.npy", "force=true") == 0 and len(trained) == 2
    again = json.loads((folder / RECORD_NAME).read_text())
    assert again["config"]["data"]["fingerprint"] != record["config"]["data"]["fingerprint"]
    assert (folder / f"result.{record['config_hash']}.json").exists()  # the old record, kept aside

    pool = np.load(new / "pool.npy")  # (4) the OE file changed: not the same job either
    pool[0, 0, 0, 0] ^= 1
    np.save(new / "pool.npy", pool)
    refused = job(new / "cifar-like", new / "pool.npy")
    assert "record of another config" in refused and len(trained) == 2
    assert "oe.fingerprint differs: the images under the OE source (oe.path / oe.root) changed" in refused


def test_a_record_from_before_fingerprints_is_moved_aside_and_the_job_trained(make_cfg, tmp_path, caplog):
    cfg = make_cfg("method=hsc", "epochs=1", "milestones=[]")
    job = tmp_path / "default" / "hsc" / "job"
    old = OmegaConf.to_container(cfg, resolve=True)  # its hash held data.root and no fingerprint
    write_record(job, {"config_hash": "0123456789abcdef", "test_auroc": 0.5, "config": old})
    with caplog.at_level(logging.WARNING):
        record = run_job(cfg, job)
    assert record["config_hash"] != "0123456789abcdef" and "fingerprint" in record["config"]["data"]
    assert json.loads((job / "result.0123456789abcdef.json").read_text())["test_auroc"] == 0.5
    assert sum("predates data fingerprints" in r.getMessage() for r in caplog.records) == 1


# -- the report --------------------------------------------------------------------------------------------------
def _record(folder: Path, seed: int, root: str, fingerprint: str, auc: float) -> None:
    config = {"method": {"name": "hsc"}, "seed": seed, "epochs": 3, "normal_class": 0, "oe_size": None}
    config["data"] = {"name": "folder", "root": root, "fingerprint": fingerprint}
    rec = {"config_hash": config_hash(config), "method": "hsc", "data": "folder", "oe": "npy", "benchmark": "ovr"}
    rec.update(normal_class=0, class_name="class0", seed=seed, oe_size=None, test_auroc=auc, config=config)
    write_record(folder, rec)


def test_the_report_pools_seeds_read_from_two_places_and_splits_on_other_data(tmp_path):
    _record(tmp_path / "a", 0, "/old/place", "aaaa", 0.8)
    _record(tmp_path / "b", 1, "/new/link", "aaaa", 0.6)
    assert report.main([str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "70.0 ± 14.1 [-57.1, 197.1] (n=2)" in md and "data.root" not in md
    _record(tmp_path / "c", 0, "/new/link", "bbbb", 0.5)
    assert report.main([str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "data.fingerprint=aaaa" in md and "data.fingerprint=bbbb" in md and "50.0 (n=1)" in md


def test_identifying_never_downloads_and_the_source_fetches_what_its_config_downloads(
    cifar_root, oe_npy, tmp_path, monkeypatch
):
    import sys

    import torchvision.datasets.utils as tv_utils
    from hydra.utils import get_class

    fetched = []

    def fake_archive(url, root, filename, md5):  # stands in for the md5-checked download of the archive
        fetched.append(filename)
        shutil.copytree(cifar_root / "cifar-10-batches-py", Path(root) / "cifar-10-batches-py")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_archive)
    pools = sys.modules[get_class(NPY).__module__]  # NpyPool's module downloads with its download_url
    monkeypatch.setattr(pools, "download_url", lambda url, root, name: shutil.copy(oe_npy, Path(root) / name))
    expected = fp.source_fingerprint(node(CIFAR, root=str(cifar_root), download=False))
    absent = node(CIFAR, root=str(tmp_path / "b"), download=True)
    assert fp.source_fingerprint(absent) is None and fetched == []  # identifying downloads nothing
    get_class(CIFAR).fetch({"root": str(tmp_path / "b"), "download": True})  # the source's own download
    assert fp.source_fingerprint(absent) == expected and fetched == ["cifar-10-python.tar.gz"]
    get_class(CIFAR).fetch({"root": str(tmp_path / "b"), "download": True})  # present: nothing more
    assert fetched == ["cifar-10-python.tar.gz"]
    pool = node(NPY, path=str(tmp_path / "300K.npy"), url="https://example.org/300K.npy")
    assert fp.source_fingerprint(pool) is None
    get_class(NPY).fetch({"path": str(tmp_path / "300K.npy"), "url": "https://example.org/300K.npy"})
    assert fp.source_fingerprint(pool) == fp.source_fingerprint(node(NPY, path=str(oe_npy)))

"""What a job's data is, not where it lies: a content fingerprint of every data source a job reads.

A job's config hash and its folder name leave out the paths of its data (``results.PATH_KEYS``: ``data.root``,
``oe.root``, ``oe.path``, ``oe.url``, ``oe.exclude_file``). In their place :func:`identify` writes
``data.fingerprint`` and ``oe.fingerprint`` into the config: 16 hex digits of SHA-256 over what those paths
hold. Moving the data, renaming an OE file or reading it through a symlink keeps the fingerprint; a file
added, removed, resized or rewritten changes it, so a changed dataset is never taken for the old one.

What a fingerprint covers: exactly the files the source reads (the CIFAR batch files, the images under a
folder's ``train/<class>/`` and ``test/<class>/``, the MVTec-AD categories, an OE ``.npy``, ...), by their
names relative to the data folder, their sizes and their contents. Contents are hashed whole when the files
hold at most ``FULL_HASH_BYTES`` together (8 GiB: CIFAR-10/100, image folders such as ImageNet-30, MVTec-AD,
the 300K-images ``.npy``); larger sources (ImageNet-22k, 80M Tiny Images) are hashed in a fixed sample
(``SAMPLE_FILES`` files spread evenly over the sorted list; a single file in ``SAMPLE_CHUNKS`` chunks), so there
a same-size rewrite of a file outside the sample goes unnoticed. ImageNet-22k's ~14M files are listed by name
only (from the pool's own index); their sizes count for the sampled files.

Modification times are not part of a fingerprint: they decide when it is computed again. A fingerprint is
cached in ``paths.cache_dir/fingerprints/`` under the data's real path, valid while every file keeps its size
and mtime (ImageNet-22k: while every synset folder keeps its mtime, the rule of its index). A ``touch`` costs
one re-read and yields the same fingerprint; a move or a copy is fingerprinted once more at its new place.

Absent data that the config downloads (CIFAR, MVTec-AD, an OE ``.npy`` with ``url``) is downloaded first: its
identity is its content. Absent data that is not downloaded gets no fingerprint (``null``); the source then
fails with its own one-line error when the job builds it. A source class the package does not know is
identified by every file under the folders and files its path keys name (``paths.cache_dir`` left out).
"""

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ..atomic import atomic_open
from ..job.records import PATH_KEYS
from .images import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

VERSION = 1  # part of every fingerprint: a new algorithm must not match an old fingerprint by chance
FULL_HASH_BYTES = 8 << 30  # sources up to this size are hashed whole
SAMPLE_FILES = 1024  # files hashed of a larger source (first and last included)
SAMPLE_CHUNKS = 256  # chunks hashed of a single file larger than SAMPLE_CHUNKS * CHUNK_BYTES
CHUNK_BYTES = 1 << 20
CACHE_FOLDER = "fingerprints"
NODES = ("data", "oe")  # the config nodes whose sources a job reads


@dataclass(frozen=True)
class Listed:
    """One file a source reads: its name relative to the data folder, where it is, its size and mtime."""

    rel: str
    path: str
    size: int
    mtime_ns: int


# -- listing what a source reads ---------------------------------------------------------------------------
def walk(
    root: Path, suffixes: set[str] | None = IMAGE_EXTENSIONS, prefix: str = "", skip: frozenset[str] = frozenset()
) -> list[Listed]:
    """The files under ``root`` as ``images.list_images`` finds them (recursively, not into symlinked folders;
    ``suffixes`` None: every file), each stat'ed once; folders whose real path is in ``skip`` are left out."""
    out: list[Listed] = []
    stack = [(str(root), prefix)]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if not skip or os.path.realpath(e.path) not in skip:
                    stack.append((e.path, f"{rel}{e.name}/"))
            elif (suffixes is None or os.path.splitext(e.name)[1].lower() in suffixes) and e.is_file():
                st = e.stat()
                out.append(Listed(rel + e.name, e.path, st.st_size, st.st_mtime_ns))
    out.sort(key=lambda f: f.rel)
    return out


def one_file(path: Path) -> list[Listed] | None:
    """A single-file source: named by nothing (a renamed file is the same data)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [Listed("", str(path), st.st_size, st.st_mtime_ns)] if os.path.isfile(path) else None


def named_files(base: Path, names: list[str]) -> list[Listed] | None:
    """Fixed files under ``base`` (None if one is missing)."""
    out = []
    for name in names:
        found = one_file(base / name)
        if found is None:
            return None
        out.append(replace(found[0], rel=name))
    return out


def folder_classes(root: Path) -> list[str] | None:
    """The classes ``ImageFolder`` finds: the folders in ``train/``, by name (an empty one is a class too)."""
    train = root / "train"
    return sorted(p.name for p in train.iterdir() if p.is_dir()) if train.is_dir() else None


def image_folder_files(root: Path, classes: list[str] | None) -> list[Listed] | None:
    """What ``ImageFolder``/``ImageNet30`` read: ``train/<class>/`` and ``test/<class>/`` (else ``val/``)."""
    train = root / "train"
    test = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if not train.is_dir() or test is None or classes is None:
        return None
    files: list[Listed] = []
    for split in (train, test):
        for cls in classes:
            files += walk(split / cls, prefix=f"{split.name}/{cls}/")
    return files


def mvtec_files(root: Path) -> list[Listed] | None:
    """What ``MVTecAD`` reads: every category's ``train/good/`` and ``test/<defect or good>/`` images."""
    from .mvtec import CATEGORIES, NORMAL

    files: list[Listed] = []
    for cat in CATEGORIES:
        base = root / cat
        if not base.is_dir():
            continue
        files += walk(base / "train" / NORMAL, prefix=f"{cat}/train/{NORMAL}/")
        if (base / "test").is_dir():
            for folder in sorted(p for p in (base / "test").iterdir() if p.is_dir()):
                files += walk(folder, prefix=f"{cat}/test/{folder.name}/")
    return files or None


# -- hashing -----------------------------------------------------------------------------------------------
def file_digest(path: str, size: int, whole: bool) -> str:
    """SHA-256 of a file's bytes: all of them, or (a large file, ``whole`` False) SAMPLE_CHUNKS chunks spread
    evenly from its first to its last byte."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if whole or size <= SAMPLE_CHUNKS * CHUNK_BYTES:
            for block in iter(lambda: fh.read(CHUNK_BYTES), b""):
                h.update(block)
        else:
            last = size - CHUNK_BYTES
            for k in range(SAMPLE_CHUNKS):
                fh.seek(k * last // (SAMPLE_CHUNKS - 1))
                h.update(fh.read(CHUNK_BYTES))
    return h.hexdigest()


def sample(n: int) -> list[int]:
    """SAMPLE_FILES positions spread evenly over range(n), first and last included (all of them if fewer)."""
    if n <= SAMPLE_FILES:
        return list(range(n))
    return sorted({round(k * (n - 1) / (SAMPLE_FILES - 1)) for k in range(SAMPLE_FILES)})


def content_digest(files: list[Listed], sizes: bool = True) -> str:
    """SHA-256 over the files' names (and sizes) and their contents, whole or sampled (module docstring)."""
    total = sum(f.size for f in files)
    whole = sizes and total <= FULL_HASH_BYTES
    h = hashlib.sha256(f"oe_ad data fingerprint v{VERSION}\n{len(files)} files\n".encode())
    for f in files:
        h.update(f"{f.rel}\t{f.size}\n".encode() if sizes else f"{f.rel}\n".encode())
    h.update(b"whole\n" if whole else b"sampled\n")
    for i in range(len(files)) if whole else sample(len(files)):
        f = files[i]
        h.update(f"{f.rel}\t{f.size}\t{file_digest(f.path, f.size, whole)}\n".encode())
    return h.hexdigest()


def signature(files: list[Listed]) -> str:
    """What must stay the same for a cached fingerprint to hold: every file's name, size and mtime."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.rel}\t{f.size}\t{f.mtime_ns}\n".encode())
    return h.hexdigest()


class Cache:
    """Fingerprints in ``<cache_dir>/fingerprints/``, one small JSON per (kind, real path); an unwritable or
    absent cache folder only means computing again."""

    def __init__(self, cache_dir: str | os.PathLike | None) -> None:
        self.folder = Path(cache_dir) / CACHE_FOLDER if cache_dir else None

    def _file(self, kind: str, where: str) -> Path | None:
        key = hashlib.sha256(f"{kind}\n{os.path.realpath(where)}".encode()).hexdigest()[:24]
        return None if self.folder is None else self.folder / f"{kind}-{key}.json"

    def get(self, kind: str, where: str, sig: str) -> str | None:
        path = self._file(kind, where)
        try:
            entry = json.loads(path.read_text()) if path is not None else None
        except (OSError, ValueError):
            return None
        return entry.get("digest") if isinstance(entry, dict) and entry.get("signature") == sig else None

    def put(self, kind: str, where: str, sig: str, digest: str) -> None:
        path = self._file(kind, where)
        if path is None:
            return
        entry = {"kind": kind, "path": os.path.realpath(where), "signature": sig, "digest": digest, "version": VERSION}
        try:
            with atomic_open(path) as fh:
                json.dump(entry, fh)
        except OSError as e:
            log.debug("fingerprint cache not written (%s): %s", path, e)


def files_digest(kind: str, where: str | os.PathLike, files: list[Listed] | None, cache: Cache) -> str | None:
    """The content digest of ``files`` (None: absent), from the cache while their signature holds."""
    if files is None:
        return None
    sig = signature(files)
    digest = cache.get(kind, str(where), sig)
    if digest is None:
        if sum(f.size for f in files) > 256 * CHUNK_BYTES:
            log.info("fingerprinting %s (%d files; once, then cached)", where, len(files))
        digest = content_digest(files)
        cache.put(kind, str(where), sig, digest)
    return digest


# -- per source: the package's own classes, by name (wherever in oe_ad.data they live) --------------------------
def _cifar(spec: dict, cache: Cache, tv: type, read: list[str] | None) -> str | None:
    """A torchvision CIFAR folder (``read``: the files the source reads, None: all batch files), downloaded first
    (torchvision checks the archive's md5) when a batch file is missing and ``download`` is on."""
    from torchvision.datasets.utils import download_and_extract_archive

    from .sources import download

    every = [f for f, _ in tv.train_list + tv.test_list]
    root = Path(spec["root"])
    base = root / tv.base_folder
    if named_files(base, every) is None and spec.get("download", True):  # as the source: all present, or fetch
        download(tv.__name__.replace("CIFAR", "CIFAR-"), download_and_extract_archive, tv.url, str(root),
                 filename=tv.filename, md5=tv.tgz_md5)  # fmt: skip
    return files_digest(tv.base_folder, base, named_files(base, read or every), cache)


def _cifar10(cls: type, spec: dict, cache: Cache) -> str | None:
    from torchvision.datasets import CIFAR10

    return _cifar(spec, cache, CIFAR10, None)


def _cifar100_pool(cls: type, spec: dict, cache: Cache) -> str | None:
    from torchvision.datasets import CIFAR100

    return _cifar(spec, cache, CIFAR100, ["train"])  # the pool reads the training images


def _image_folder(cls: type, spec: dict, cache: Cache) -> str | None:
    """``ImageFolder`` (classes: the folders in ``train/``) and ``ImageNet30`` (its 30 classes)."""
    from .imagenet import IMAGENET30_CLASSES

    root = Path(spec["root"])
    classes = IMAGENET30_CLASSES if cls.__name__ == "ImageNet30" else folder_classes(root)
    digest = files_digest(f"folder-{cls.__name__}", root, image_folder_files(root, classes), cache)
    if digest is None:
        return None  # the class list counts too: an empty class folder shifts the labels of the others
    return hashlib.sha256(f"{digest}\nclasses {json.dumps(classes)}".encode()).hexdigest()


def _folder_pool(cls: type, spec: dict, cache: Cache) -> str | None:
    return files_digest("images", spec["root"], walk(Path(spec["root"])) or None, cache)


def _mvtec(cls: type, spec: dict, cache: Cache) -> str | None:
    from .mvtec import CATEGORIES

    root = Path(spec["root"])
    if mvtec_files(root) is None and spec.get("download", True):
        cls(str(root), download=True)._ensure(CATEGORIES[0])  # downloads (SHA-256 checked) and extracts
    return files_digest("mvtec", root, mvtec_files(root), cache)


def _npy_pool(cls: type, spec: dict, cache: Cache) -> str | None:
    path = Path(spec["path"])
    if not path.exists() and spec.get("url"):
        cls(str(path), spec.get("url"), spec.get("sha256"))  # downloads (and checks) it, as the job would
    return files_digest("file", path, one_file(path), cache)


def _tiny_images(cls: type, spec: dict, cache: Cache) -> str | None:
    parts = [files_digest("file", spec["path"], one_file(Path(spec["path"])), cache)]
    if spec.get("exclude_file") is not None:
        parts.append(files_digest("file", spec["exclude_file"], one_file(Path(spec["exclude_file"])), cache))
    return None if None in parts else hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _imagenet22k(cls: type, spec: dict, cache: Cache) -> str | None:
    """Every file's name (from the pool's own index), the sampled files' sizes and contents, the excluded set."""
    from .imagenet import load_index, read_wnids

    root = Path(spec["root"])
    if not root.is_dir():
        return None
    index, key = load_index(root, spec.get("cache_dir"))  # key: the synset folders and their mtimes
    digest = cache.get("imagenet22k", str(root), key)
    if digest is None:
        synsets, synset_of, names = index["synsets"], index["synset_of"], index["names"]
        rels = [f"{synsets[s]}/{n.decode()}" for s, n in zip(synset_of, names)]
        h = hashlib.sha256(f"oe_ad data fingerprint v{VERSION}\n{len(rels)} files by name\n".encode())
        for rel in rels:
            h.update(f"{rel}\n".encode())
        for i in sample(len(rels)):  # sizes only of the sampled files: a stat of 14M files is slow
            size = os.stat(root / rels[i]).st_size
            h.update(f"{rels[i]}\t{size}\t{file_digest(str(root / rels[i]), size, False)}\n".encode())
        digest = h.hexdigest()
        cache.put("imagenet22k", str(root), key, digest)
    excluded = " ".join(sorted(read_wnids(spec.get("exclude", "imagenet1k"))))
    return hashlib.sha256(f"{digest}\nexclude {excluded}".encode()).hexdigest()


KNOWN: dict[str, Callable[[type, dict, Cache], str | None]] = {
    "CIFAR10": _cifar10,
    "CIFAR100Pool": _cifar100_pool,
    "ImageFolder": _image_folder,
    "ImageNet30": _image_folder,
    "FolderPool": _folder_pool,
    "MVTecAD": _mvtec,
    "NpyPool": _npy_pool,
    "TinyImagesPool": _tiny_images,
    "ImageNet22kPool": _imagenet22k,
}


def _generic(spec: dict, leaves: list[str], cache: Cache, skip: frozenset[str]) -> str:
    """A source class the package does not know: every file under each folder, or each file, that its path keys
    name; a value that names nothing (or a URL) counts as itself."""
    parts = []
    for leaf in leaves:
        value = spec.get(leaf)
        path = Path(str(value)) if value is not None else None
        if path is not None and path.is_dir():
            digest = files_digest("tree", path, walk(path, None, skip=skip), cache)
        elif path is not None and path.is_file():
            digest = files_digest("file", path, one_file(path), cache)
        else:
            digest = f"value {json.dumps(value)}"
        parts.append(f"{leaf}\t{digest}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


_remembered: dict[str, str] | None = None  # inside ``once_per_source``: the fingerprints computed so far


@contextmanager
def once_per_source() -> Iterator[None]:
    """Within this block each source is fingerprinted once (the jobs of one sweep or stack share their data;
    listing 60,000 files for each of them would cost a second or more per job)."""
    global _remembered
    outer = _remembered
    _remembered = {} if outer is None else outer
    try:
        yield
    finally:
        _remembered = outer


def source_fingerprint(node: DictConfig, name: str, cache_dir: str | None) -> str | None:
    """The fingerprint of the source a config node (``data`` or ``oe``) builds (None: its data is absent).
    Across processes the cache in ``cache_dir`` saves the reading of files whose size and mtime are unchanged."""
    spec = OmegaConf.to_container(node, resolve=True)
    spec.pop("fingerprint", None)
    key = json.dumps([spec, cache_dir], sort_keys=True, default=str)
    if _remembered is not None and key in _remembered:
        return _remembered[key]
    digest = _source_fingerprint(spec, name, cache_dir)
    if _remembered is not None and digest is not None:  # absent data is not remembered: it may be downloaded
        _remembered[key] = digest
    return digest


def _source_fingerprint(spec: dict, name: str, cache_dir: str | None) -> str | None:
    from hydra.utils import get_class

    cls = get_class(spec["_target_"])
    cache = Cache(cache_dir)
    known = KNOWN.get(cls.__name__) if cls.__module__.startswith("oe_ad.data.") else None
    if known is not None:
        digest = known(cls, spec, cache)
    else:
        leaves = [k.partition(".")[2] for k in PATH_KEYS if k.startswith(f"{name}.") and k.partition(".")[2] in spec]
        skip = frozenset(os.path.realpath(d) for d in (cache_dir, spec.get("cache_dir")) if d)
        digest = _generic(spec, leaves, cache, skip)
    return None if digest is None else digest[:16]


# -- the config --------------------------------------------------------------------------------------------
def fingerprint(cfg: DictConfig, reads_oe: bool) -> dict[str, str | None]:
    """``{"data": ..., "oe": ...}``: the fingerprint of each source the job reads (``oe`` None: the job reads no
    OE, ``reads_oe`` False; absent without an ``oe`` node)."""
    cache_dir = OmegaConf.select(cfg, "paths.cache_dir", default=None)
    out = {"data": source_fingerprint(cfg.data, "data", cache_dir)}
    if cfg.get("oe"):
        out["oe"] = source_fingerprint(cfg.oe, "oe", cache_dir) if reads_oe else None
    return out


def identify(cfg: DictConfig, reads_oe: bool) -> DictConfig:
    """Write ``data.fingerprint`` and ``oe.fingerprint`` into the config (in place), before its hash is taken:
    the config hash then identifies the data by what it is, not where it is. Idempotent."""
    found = fingerprint(cfg, reads_oe)
    with open_dict(cfg):
        for name, value in found.items():
            cfg[name].fingerprint = value
    return cfg


def inputs(cfg: DictConfig, reads_oe: bool) -> dict[str, Any]:
    """For the record: per source read, its fingerprint (the identity) and the real paths read (information)."""
    out: dict[str, Any] = {}
    for name in NODES:
        node = cfg.get(name)
        if not node or (name == "oe" and not reads_oe):
            continue
        read = {}
        for key in PATH_KEYS:
            node_name, _, leaf = key.partition(".")
            value = node.get(leaf) if node_name == name and leaf != "url" else None
            if value is not None:
                read[leaf] = os.path.realpath(str(value))
        out[name] = {"fingerprint": node.get("fingerprint"), "read": read}
    return out

"""What a job's data is, not where it lies: a content fingerprint of every data source a job reads.

A job's config hash and its folder name leave out the paths of its data (``job.records.PATH_KEYS``). In their place
:func:`identify` writes ``data.fingerprint`` and ``oe.fingerprint`` into the config: 16 hex digits of SHA-256 over
the files the source reads, which the source class names itself (its ``fingerprint(spec, cache)`` classmethod,
built from :func:`walk`, :func:`one_file` and :meth:`Cache.digest`): their names relative to the data folder, their
sizes and contents. Moving the data, renaming an OE file or reading it through a symlink keeps the fingerprint; a
file added, removed, resized or rewritten changes it. Contents are hashed whole up to ``FULL_HASH_BYTES`` (8 GiB:
CIFAR, image folders, MVTec-AD, the 300K-images ``.npy``); larger sources (ImageNet-22k, 80M Tiny Images) in a
fixed sample (``SAMPLE_FILES`` files spread evenly; a single file in ``SAMPLE_CHUNKS`` chunks), so a same-size
rewrite outside the sample goes unnoticed there. A source class that names nothing is identified by every file
under the folders and files its path keys name.

Identifying never downloads: absent data gets no fingerprint (None), and the job fetches it first (a source's
``fetch``) or the source refuses it when built. Modification times are not part of a fingerprint; they decide when
it is computed again: :class:`Cache` keeps fingerprints in memory and in ``paths.cache_dir/fingerprints/``, valid
while every file keeps its size and mtime.
"""

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ..atomic import atomic_open
from .images import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)
VERSION = 1  # part of every fingerprint: a new algorithm must not match an old fingerprint by chance
FULL_HASH_BYTES = 8 << 30  # sources up to this size are hashed whole
SAMPLE_FILES = 1024  # files hashed of a larger source (first and last included)
SAMPLE_CHUNKS = 256  # chunks hashed of a single file larger than SAMPLE_CHUNKS * CHUNK_BYTES
CHUNK_BYTES = 1 << 20
CACHE_FOLDER = "fingerprints"
PATH_LEAVES = ("root", "path", "url", "exclude_file", "snapshot")  # the keys of a node that say where its files lie


@dataclass(frozen=True)
class Listed:
    """One file a source reads: its name relative to the data folder, where it is, its size and mtime."""

    rel: str
    path: str
    size: int
    mtime_ns: int


def walk(root: Path, suffixes: set[str] | None = IMAGE_EXTENSIONS, prefix: str = "", skip: frozenset = frozenset()):
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
                if os.path.realpath(e.path) not in skip:
                    stack.append((e.path, f"{rel}{e.name}/"))
            elif (suffixes is None or os.path.splitext(e.name)[1].lower() in suffixes) and e.is_file():
                st = e.stat()
                out.append(Listed(rel + e.name, e.path, st.st_size, st.st_mtime_ns))
    return sorted(out, key=lambda f: f.rel)


def walk_folders(root: Path, folders: list[Path]) -> list[Listed]:
    """The image files of ``folders`` (each under ``root``), named relative to ``root``."""
    return [f for folder in folders for f in walk(folder, prefix=f"{folder.relative_to(root).as_posix()}/")]


def one_file(path: Path, rel: str = "") -> list[Listed] | None:
    """A single file, named ``rel`` (by default by nothing: a renamed file is the same data); None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [Listed(rel, str(path), st.st_size, st.st_mtime_ns)] if os.path.isfile(path) else None


def named_files(base: Path, names: list[str]) -> list[Listed] | None:
    """Fixed files under ``base`` (None if one is missing)."""
    files = [one_file(base / name, name) for name in names]
    return None if None in files else [f[0] for f in files]


def file_digest(path: str, size: int, whole: bool) -> str:
    """SHA-256 of a file's bytes: all of them, or SAMPLE_CHUNKS chunks spread evenly from its first to its last."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if whole or size <= SAMPLE_CHUNKS * CHUNK_BYTES:
            for block in iter(lambda: fh.read(CHUNK_BYTES), b""):
                h.update(block)
        else:
            for k in range(SAMPLE_CHUNKS):
                fh.seek(k * (size - CHUNK_BYTES) // (SAMPLE_CHUNKS - 1))
                h.update(fh.read(CHUNK_BYTES))
    return h.hexdigest()


def sample(n: int) -> list[int]:
    """SAMPLE_FILES positions spread evenly over range(n), first and last included (all of them if fewer)."""
    return (
        list(range(n))
        if n <= SAMPLE_FILES
        else sorted({round(k * (n - 1) / (SAMPLE_FILES - 1)) for k in range(SAMPLE_FILES)})
    )


def content_digest(files: list[Listed], sizes: bool = True) -> str:
    """SHA-256 over the files' names (and sizes) and their contents, whole or sampled (module docstring)."""
    whole = sizes and sum(f.size for f in files) <= FULL_HASH_BYTES
    h = hashlib.sha256(f"oe_ad data fingerprint v{VERSION}\n{len(files)} files\n".encode())
    for f in files:
        h.update(f"{f.rel}\t{f.size}\n".encode() if sizes else f"{f.rel}\n".encode())
    h.update(b"whole\n" if whole else b"sampled\n")
    for f in files if whole else [files[i] for i in sample(len(files))]:
        h.update(f"{f.rel}\t{f.size}\t{file_digest(f.path, f.size, whole)}\n".encode())
    return h.hexdigest()


def signature(files: list[Listed]) -> str:
    """What must stay the same for a cached fingerprint to hold: every file's name, size and mtime."""
    return hashlib.sha256("".join(f"{f.rel}\t{f.size}\t{f.mtime_ns}\n" for f in files).encode()).hexdigest()


class Cache:
    """Fingerprints already computed: in ``memory`` (shared by the jobs of one process) and in ``folder``
    (``<cache_dir>/fingerprints/``, one small JSON per kind and real path); an unwritable or absent folder only
    means computing again."""

    def __init__(self, cache_dir: str | os.PathLike | None = None, memory: dict | None = None) -> None:
        self.folder = Path(cache_dir) / CACHE_FOLDER if cache_dir else None
        self.memory = {} if memory is None else memory

    def lookup(self, kind: str, where: str | os.PathLike, sig: str, compute) -> str:
        """The fingerprint of ``kind`` at ``where`` for signature ``sig``, computed by ``compute()`` once."""
        key = hashlib.sha256(f"{kind}\n{os.path.realpath(where)}".encode()).hexdigest()[:24]
        if self.memory.get(key, (None,))[0] == sig:
            return self.memory[key][1]
        path = None if self.folder is None else self.folder / f"{kind}-{key}.json"
        try:
            entry = json.loads(path.read_text()) if path else {}
        except (OSError, ValueError):
            entry = {}
        digest = entry.get("digest") if isinstance(entry, dict) and entry.get("signature") == sig else None
        if digest is None:
            digest = compute()
            try:
                if path is not None:
                    with atomic_open(path) as fh:
                        json.dump(
                            {"kind": kind, "path": os.path.realpath(where), "signature": sig, "digest": digest}, fh
                        )
            except OSError as e:
                log.debug("fingerprint cache not written (%s): %s", path, e)
        self.memory[key] = (sig, digest)
        return digest

    def digest(self, kind: str, where: str | os.PathLike, files: list[Listed] | None) -> str | None:
        """The content digest of ``files`` (None: absent), from the cache while their signature holds."""
        if files is None:
            return None

        def compute() -> str:
            if sum(f.size for f in files) > 256 * CHUNK_BYTES:
                log.info("fingerprinting %s (%d files; once, then cached)", where, len(files))
            return content_digest(files)

        return self.lookup(kind, where, signature(files), compute)


def combine(*parts: str | None) -> str | None:
    """One digest of several (None if one is absent)."""
    return None if None in parts else hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _by_path_keys(spec: dict, cache: Cache) -> str:
    """A source class that names nothing: every file under each folder, or each file, that its path keys name (the
    cache folders left out); a value that names nothing (or a URL) counts as itself."""
    skip = frozenset(os.path.realpath(d) for d in (spec.get("cache_dir"), cache.folder and cache.folder.parent) if d)
    parts = []
    for leaf in (k for k in PATH_LEAVES if k in spec):
        path = Path(str(spec[leaf])) if spec[leaf] is not None else None
        if path is not None and path.is_dir():
            part = cache.digest("tree", path, walk(path, None, skip=skip))
        elif path is not None and path.is_file():
            part = cache.digest("file", path, one_file(path))
        else:
            part = f"value {json.dumps(spec[leaf])}"
        parts.append(f"{leaf}\t{part}")
    return combine(*parts)


def source_fingerprint(node: DictConfig, cache: Cache | None = None) -> str | None:
    """The fingerprint of the source a config node (``data`` or ``oe``) builds (None: its data are absent)."""
    from hydra.utils import get_class

    spec = OmegaConf.to_container(node, resolve=True)
    spec.pop("fingerprint", None)
    cache = cache if cache is not None else Cache()
    seen = ("source", json.dumps(spec, sort_keys=True, default=str))  # a sweep's jobs share their sources
    if seen not in cache.memory:
        cls = get_class(spec.pop("_target_"))
        named = getattr(cls, "fingerprint", None)
        digest = named(spec, cache) if callable(named) else _by_path_keys(spec, cache)
        if digest is None:
            return None  # absent data are not remembered: they may be fetched
        cache.memory[seen] = digest[:16]
    return cache.memory[seen]


def identify(cfg: DictConfig, reads_oe: bool, cache: Cache | None = None) -> DictConfig:
    """Write ``data.fingerprint``, ``oe.fingerprint`` (None: the job reads no OE) and, for a network initialised from
    ``net.snapshot``, ``net.fingerprint`` into the config, in place, before its hash is taken: the config hash then
    names the data and the initial weights by what they are, not where. Idempotent."""
    cache = cache if cache is not None else Cache(OmegaConf.select(cfg, "paths.cache_dir", default=None))
    snapshot = OmegaConf.select(cfg, "net.snapshot", default=None)  # a network's initial weights count too
    with open_dict(cfg):
        cfg.data.fingerprint = source_fingerprint(cfg.data, cache)
        if cfg.get("oe"):
            cfg.oe.fingerprint = source_fingerprint(cfg.oe, cache) if reads_oe else None
        if snapshot is not None:
            cfg.net.fingerprint = (cache.digest("file", snapshot, one_file(Path(snapshot))) or "absent")[:16]
    return cfg


def inputs(cfg: DictConfig, reads_oe: bool) -> dict[str, Any]:
    """For the record: per source read, its fingerprint (the identity) and the real paths read (information)."""
    nodes = {"data": cfg.get("data"), "oe": cfg.get("oe") if reads_oe else None}
    nodes["net"] = cfg.net if OmegaConf.select(cfg, "net.snapshot", default=None) else None
    return {
        name: {
            "fingerprint": node.get("fingerprint"),
            "read": {k: os.path.realpath(str(node[k])) for k in PATH_LEAVES if k != "url" and node.get(k) is not None},
        }
        for name, node in nodes.items()
        if node
    }

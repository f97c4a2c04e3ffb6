"""Result records: one JSON per finished job, written atomically, keyed by a hash of the effective config."""

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .atomic import atomic_open
from .errors import OEADError

RECORD_NAME = "result.json"
SEARCH_RECORD_NAME = "search.json"  # the record of one search job (python -m oe_ad.search)
ERROR_FILE = "error.json"  # a failed job's one-line error, for the end-of-sweep summary
INDEX_DIR = ".index"  # in the experiment folder: one small file per finished config hash -> its record
# Keys that change where, how or how fast a job runs, or how it is reported, not what it computes.
NON_EFFECTIVE_KEYS = (
    *("paths", "data.cache_dir", "oe.cache_dir", "logger", "force", "trainer.enable_progress_bar", "name"),
    *("checkpoint", "threads", "report"),
)


def config_hash(config: dict[str, Any]) -> str:
    """Stable hash of a resolved config, ignoring paths and logging (two runs of one job share it)."""
    cfg = json.loads(json.dumps(config, default=str))
    for key in NON_EFFECTIVE_KEYS:
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_open(path) as fh:
        fh.write(text)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=str))


def write_record(job_dir: Path, record: dict[str, Any]) -> Path:
    path = Path(job_dir) / RECORD_NAME
    write_json_atomic(path, record)
    return path


def read_hash(record_path: Path) -> str | None:
    """The config hash stored in a record (None if the file is missing or unreadable)."""
    try:
        return json.loads(Path(record_path).read_text()).get("config_hash")
    except (OSError, ValueError):
        return None


def find_record(exp_dir: Path, job_dir: Path, chash: str) -> Path | None:
    """The record of config ``chash`` in this experiment: in ``job_dir`` itself or wherever the index says."""
    own = Path(job_dir) / RECORD_NAME
    if read_hash(own) == chash:
        return own
    entry = Path(exp_dir) / INDEX_DIR / chash
    if entry.is_file():
        indexed = Path(exp_dir) / entry.read_text().strip()
        if read_hash(indexed) == chash:
            return indexed
    return None


def index_record(exp_dir: Path, record_path: Path, chash: str) -> None:
    """Note in ``exp_dir/.index/<hash>`` where the record of ``chash`` lives (one file per hash, so
    parallel jobs never write the same file)."""
    rel = os.path.relpath(Path(record_path).resolve(), Path(exp_dir).resolve())
    write_text_atomic(Path(exp_dir) / INDEX_DIR / chash, rel)


def claim_job_dir(job_dir: Path, chash: str, force: bool) -> None:
    """A job folder holds the record of one config. If it holds another config's record, refuse (nothing
    is trained or overwritten); with ``force`` move that record aside to ``result.<its hash>.json``."""
    own = Path(job_dir) / RECORD_NAME
    other = (read_hash(own) or "unreadable") if own.exists() else chash
    if other == chash:
        return
    if not force:
        raise OEADError(
            f"{own} is the record of another config (hash {other}, this job is {chash}): "
            "choose another name=... for this experiment, or force=true to keep it aside and re-run"
        )
    os.replace(own, own.with_name(f"result.{other}.json"))


def iter_records(root: Path) -> Iterator[dict[str, Any]]:
    """Every record under ``root`` (recursively), once per config hash (the newest wins)."""
    by_hash: dict[str, tuple[float, dict]] = {}
    for path in Path(root).rglob(RECORD_NAME):
        with open(path) as fh:
            rec = json.load(fh)
        rec["_path"] = str(path)
        key = rec.get("config_hash", str(path))
        mtime = path.stat().st_mtime
        if key not in by_hash or mtime > by_hash[key][0]:
            by_hash[key] = (mtime, rec)
    for _, rec in sorted(by_hash.values(), key=lambda t: t[1]["_path"]):
        yield rec

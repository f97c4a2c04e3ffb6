"""Result records: one JSON per finished job, written atomically, keyed by a hash of the effective config."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .atomic import atomic_open

RECORD_NAME = "result.json"
# Keys that change where or how a job is logged, not what it computes.
NON_EFFECTIVE_KEYS = ("paths", "logger", "force", "trainer.enable_progress_bar", "name")


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

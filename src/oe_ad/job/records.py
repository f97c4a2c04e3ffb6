"""Result records: one JSON per finished job, written atomically, keyed by a hash of the effective config."""

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..atomic import atomic_open
from ..errors import OEADError

RECORD_NAME = "result.json"
SEARCH_RECORD_NAME = "search.json"  # the record of one search job (python -m oe_ad.search)
ERROR_FILE = "error.json"  # a failed job's one-line error, for the end-of-sweep summary
log = logging.getLogger(__name__)
_warned: set[str] = set()  # files already named in a warning (a report reads the records more than once)
INDEX_DIR = ".index"  # in the experiment folder: one small file per finished config hash -> its record
# Where a job's data and snapshot lie (the path-valued keys of conf/data, conf/oe, conf/net). They leave the config
# hash and the job folder name; ``data.fingerprint``, ``oe.fingerprint``, ``net.fingerprint`` say what they hold.
PATH_KEYS = ("data.root", "oe.root", "oe.path", "oe.url", "oe.exclude_file", "net.snapshot")
# Keys that change where, how or how fast a job runs, or how it is reported, not what it computes.
NON_EFFECTIVE_KEYS = (
    *("paths", "data.cache_dir", "oe.cache_dir", "logger", "force", "trainer.enable_progress_bar", "name"),
    *("checkpoint", "threads", "report", *PATH_KEYS),
    "data.layout",  # how data=folder reads data.root: the layout it resolves to is in data.fingerprint
)


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """What a resolved config computes: a copy without the keys that change only where, how or how fast a job
    runs (``NON_EFFECTIVE_KEYS``). The data count through their fingerprints (``data.fingerprint``)."""
    cfg = json.loads(json.dumps(config, default=str))
    for key in NON_EFFECTIVE_KEYS:
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return cfg


def config_hash(config: dict[str, Any]) -> str:
    """Stable hash of a resolved config's :func:`effective` part (two runs of one job share it)."""
    return hashlib.sha256(json.dumps(effective(config), sort_keys=True).encode()).hexdigest()[:16]


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two plain configs."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for k in sorted(old.keys() | new.keys(), key=str)
            for d in differences(old.get(k), new.get(k), f"{prefix}{k}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]


def what_differs(record: dict[str, Any], config: dict[str, Any]) -> str:
    """Why a record is of another config, in words: ``data.fingerprint differs: the images under data.root changed
    since this record``, ``epochs differs (the record's 3, this job's 2)``."""
    old, new = effective(record.get("config") or {}), effective(config)
    keys = differences(old, new)
    said = []
    for key in keys[:3]:
        node, _, leaf = key.partition(".")
        if leaf == "fingerprint":
            where = {"data": "the images under data.root", "oe": "the images under the OE source (oe.path / oe.root)"}
            said.append(f"{key} differs: {where.get(node, 'the snapshot file net.snapshot')} changed since this record")
        else:
            was, now = (_show(_get(c, key)) for c in (old, new))
            said.append(f"{key} differs (the record's {was}, this job's {now})")
    more = f" and {len(keys) - 3} more keys" if len(keys) > 3 else ""
    return "; ".join(said) + more if said else f"its config hash is {record.get('config_hash')}"


_ABSENT = object()


def _show(value: Any) -> str:
    return "absent" if value is _ABSENT else json.dumps(value)


def _get(config: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(config, dict) or part not in config:
            return _ABSENT
        config = config[part]
    return config


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


def without_fingerprints(path: Path) -> bool:
    """Whether a record predates data fingerprints (its hash included the data's paths, not their content)."""
    rec = read_record(path)
    data = (rec or {}).get("config", {}).get("data")
    return isinstance(data, dict) and "fingerprint" not in data


def claim_job_dir(job_dir: Path, chash: str, force: bool, config: dict[str, Any] | None = None) -> None:
    """A job folder holds the record of one config. If it holds another config's record, refuse (nothing
    is trained or overwritten); with ``force`` move that record aside to ``result.<its hash>.json``. A record
    written before data fingerprints is moved aside with a warning (its data cannot be told from its paths)."""
    own = Path(job_dir) / RECORD_NAME
    other = (read_hash(own) or "unreadable") if own.exists() else chash
    if other == chash:
        return
    if other == "unreadable":  # e.g. truncated by a full disk: the job never really finished
        aside = own.with_name(f"result.unreadable-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json")
        os.replace(own, aside)
        log.warning("%s is unreadable (truncated?): moved aside to %s; training the job again", own, aside.name)
        return
    if without_fingerprints(own):
        os.replace(own, own.with_name(f"result.{other}.json"))
        log.warning(
            "%s predates data fingerprints (its config hash held the data's paths): moved aside to result.%s.json; "
            "training the job again",
            own,
            other,
        )
        return
    if not force:
        why = what_differs(read_record(own) or {}, config) if config is not None else f"hash {other}, this job {chash}"
        raise OEADError(
            f"{own} is the record of another config ({why}): "
            "choose another name=... for this experiment, or force=true to keep it aside and re-run"
        )
    os.replace(own, own.with_name(f"result.{other}.json"))


def read_record(path: Path) -> dict[str, Any] | None:
    """A record, or None with one warning naming the file if it is unreadable (truncated, not JSON)."""
    try:
        rec = json.loads(Path(path).read_text())
        if not isinstance(rec, dict):
            raise ValueError("not a JSON object")
        return rec
    except (OSError, ValueError) as e:
        if str(path) not in _warned:
            _warned.add(str(path))
            log.warning("warning: skipping unreadable record %s (%s)", path, e.__class__.__name__)
        return None


def iter_records(root: Path) -> Iterator[dict[str, Any]]:
    """Every readable record under ``root`` (recursively), once per config hash (the newest wins; two records
    of one config and seed get a warning, as they would otherwise count twice)."""
    by_hash: dict[str, tuple[float, dict]] = {}
    for path in sorted(Path(root).rglob(RECORD_NAME)):
        rec = read_record(path)
        if rec is None:
            continue
        rec["_path"] = str(path)
        key = rec.get("config_hash", str(path))
        mtime = path.stat().st_mtime
        if key in by_hash and f"dup:{path}" not in _warned:
            _warned.add(f"dup:{path}")
            log.warning(
                "warning: %s and %s hold the same config and seed (hash %s): using the newer",
                by_hash[key][1]["_path"],
                path,
                key,
            )
        if key not in by_hash or mtime > by_hash[key][0]:
            by_hash[key] = (mtime, rec)
    for _, rec in sorted(by_hash.values(), key=lambda t: t[1]["_path"]):
        yield rec

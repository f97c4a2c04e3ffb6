"""Read W&B offline runs back (the ``run-<id>.wandb`` file: a LevelDB-style log of protobuf records), so
tests can assert what a run would upload without an account or a network."""

import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B run file"
    pos, parts = 7, []
    while pos + 7 <= len(data):  # a record still being written ends the scan (read again later)
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer: zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        if pos + 7 + length > len(data):
            return
        parts.append(data[pos + 7 : pos + 7 + length])
        pos += 7 + length
        if kind in (FULL, LAST):
            rec = pb.Record()
            rec.ParseFromString(b"".join(parts))
            parts = []
            yield rec


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


@dataclass
class OfflineRun:
    folder: Path
    id: str = ""
    name: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


def read_run(folder: Path, wait: float = 60.0) -> OfflineRun:
    """An offline run folder (``.../wandb/offline-run-*``) as id, name, group, tags, config, summary, history.

    W&B's service writes the file after ``finish()`` returns, so this waits (up to ``wait`` s) for its exit record."""
    deadline = time.monotonic() + wait
    while True:
        run = _read(Path(folder))
        if run.finished or time.monotonic() > deadline:
            return run
        time.sleep(0.5)


def _read(folder: Path) -> OfflineRun:
    (path,) = folder.glob("run-*.wandb")
    run = OfflineRun(folder)
    for rec in _records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.id, run.name, run.group, run.tags = r.run_id, r.display_name, r.run_group, list(r.tags)
            run.config.update({_key(i): json.loads(i.value_json) for i in r.config.update})
        elif kind == "config":
            run.config.update({_key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "summary":
            run.summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "exit":
            run.finished = True
    return run


def offline_runs(root: Path) -> list[OfflineRun]:
    """Every offline run under ``root``, oldest first."""
    return [read_run(f) for f in sorted(Path(root).rglob("offline-run-*"), key=lambda p: p.name)]

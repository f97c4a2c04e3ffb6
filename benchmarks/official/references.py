"""Merge finished runs into a reference file (``benchmarks/references/cifar10-12ep.json``), with provenance.

A recorded run stays: merging adds the runs of the work folder that the file does not hold yet (a run is known
by its job id and start date) and recomputes each cell's n, mean and sample sd. The file explains its own fields
under ``"schema"``.
"""

import json
import re
import statistics
from datetime import datetime
from pathlib import Path

from .jobs import (
    BATCH_SIZE,
    EPOCHS,
    MILESTONES,
    NORMAL_CLASS,
    SINGLE_IMAGE_COUNT,
    SINGLE_IMAGE_SEED,
    single_image_indices,
)
from .patches import PATCHES

SCHEMA = {
    "protocol": "what every run shares: the paper's script, data, schedule, patches, how the single OE images "
    "were chosen",
    "cells": "one entry per configuration (id: c<normal class>-<method>-<full|none|n<oe size>|img<pool index>>)",
    "cells.*.runs": "test AUC (%) of each run, in the order of runs_detail",
    "cells.*.ap": "test average precision (%) of each run (anomalies are the positive class, as eoe computes it)",
    "cells.*.n / mean / sd": "number of runs, mean and sample standard deviation (null for one run) of runs",
    "cells.*.oe": "'full' (whole pool), 'subset' (oe_size random pool images, drawn by eoe in each run), "
    "'image' (exactly pool image oe_index), 'none'",
    "cells.*.runs_detail[]": "provenance of each run: job, date (ISO 8601 start), wall_s, eoe_commit, command (the "
    "exact command line, its paths named by role: <python> the interpreter, <eoe> the paper's code's checkout, "
    "<work> run_official.py's --work folder, <checkout> this repository; <data> and <oe> the --data and --oe "
    "inputs), eoe_args, oe_indices (the pool indices eoe drew per dataset build; 'all' for the whole pool, null "
    "without OE), environment (python, torch, torchvision, numpy, threads, cpu), data (SHA-256s)",
}


def summary(runs: list[float]) -> dict:
    return {
        "n": len(runs),
        "mean": round(statistics.fmean(runs), 4) if runs else None,
        "sd": round(statistics.stdev(runs), 4) if len(runs) > 1 else None,
    }


def protocol(records: list[dict], existing: dict | None) -> dict:
    """The shared part; taken from the file when it has one, otherwise from the first record."""
    if existing and "protocol" in existing:
        return existing["protocol"]
    first = records[0]
    pool_size = first["data"]["oe_shape"][0]
    return {
        "script": "src/eoe/main/train_cifar.py of liznerski/eoe, run unmodified via benchmarks/official/patches.py",
        "eoe_commit": first["eoe_commit"],
        "dataset": "CIFAR-10 (JPEG q75 copy) written as cifar-10-batches-py by benchmarks/official/data.py",
        "ad_mode": "one vs. rest",
        "normal_class": NORMAL_CLASS,
        "epochs": EPOCHS,
        "milestones": list(MILESTONES),
        "batch_size": BATCH_SIZE,
        "transforms": "train_cifar.py's own (ColorJitter 0.01, flip, crop 32 pad 4, ToTensor, noise 0.001, normalise)",
        "oe_pool": f"{pool_size} images, (N, 32, 32, 3) uint8 .npy, read by the patched TinyImages",
        "single_images": {
            "rule": f"numpy.random.default_rng({SINGLE_IMAGE_SEED}).choice({pool_size}, {SINGLE_IMAGE_COUNT}, "
            "replace=False), sorted",
            "indices": single_image_indices(pool_size),
        },
        "seeding": "none: the paper's code is unseeded; each run is an independent draw",
        "threads_per_run": first["environment"]["threads"],
        "patches": PATCHES,
    }


def run_detail(record: dict) -> dict:
    keys = ("job", "date", "wall_s", "eoe_commit", "command", "eoe_args", "oe_indices", "environment", "data")
    return {"auc": record["auc"], "ap": record["ap"], **{k: record[k] for k in keys}}


def merge(existing: dict | None, records: list[dict], order: list[str] | None = None) -> dict:
    """``existing`` (or a new file) plus the ``records`` it does not hold yet."""
    cells = dict(existing["cells"]) if existing else {}
    for record in records:
        cell = cells.get(record["cell"])
        if cell is None:
            keys = ("method", "oe", "oe_size", "oe_index", "normal_class", "epochs", "milestones", "batch_size")
            cell = {**{k: record[k] for k in keys}, "runs_detail": []}
        known = {(r["job"], r["date"]) for r in cell["runs_detail"]}
        if (record["job"], record["date"]) not in known:
            cell = {**cell, "runs_detail": [*cell["runs_detail"], run_detail(record)]}
        cells[record["cell"]] = cell
    for cid, cell in cells.items():
        detail = sorted(cell["runs_detail"], key=lambda r: (r["job"], r["date"]))
        runs = [r["auc"] for r in detail]
        head = {k: v for k, v in cell.items() if k not in ("runs", "ap", "n", "mean", "sd", "runs_detail")}
        cells[cid] = {**head, "runs": runs, "ap": [r["ap"] for r in detail], **summary(runs), "runs_detail": detail}
    rank = {cid: i for i, cid in enumerate(order or [])}
    cells = dict(sorted(cells.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
    return {"schema": SCHEMA, "protocol": protocol(records, existing), "cells": cells}


CELL_FIELDS = ("method", "oe", "oe_size", "oe_index", "normal_class", "epochs", "milestones", "batch_size")
CELL_FIELDS += ("runs", "ap", "n", "mean", "sd", "runs_detail")
RUN_FIELDS = ("auc", "ap", "job", "date", "wall_s", "eoe_commit", "command", "eoe_args", "oe_indices")
RUN_FIELDS += ("environment", "data")
ENV_FIELDS = ("python", "torch", "torchvision", "numpy", "threads", "cpu")
HEX40, HEX64 = re.compile(r"[0-9a-f]{40}"), re.compile(r"[0-9a-f]{64}")
VERSION = re.compile(r"\d+\.\d+(\.\d+)?\S*")


def _is_iso(value: object) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value) is not None
    except ValueError:
        return False


def _draws_fit(cell: dict, draws: object) -> bool:
    """Whether a run's recorded OE draws fit its cell: none without OE, the whole pool, the one image, or
    ``oe_size`` indices per draw."""
    if cell.get("oe") == "none":
        return draws is None
    if not isinstance(draws, list) or not draws:
        return False
    if cell.get("oe") == "full":
        return all(d == "all" for d in draws)
    if cell.get("oe") == "image":
        return all(d == [cell.get("oe_index")] for d in draws)
    if cell.get("oe") == "subset":
        return all(isinstance(d, list) and len(d) == cell.get("oe_size") for d in draws)
    return False


def _check_run(where: str, cell: dict, run: dict) -> list[str]:
    missing = [k for k in RUN_FIELDS if k not in run]
    if missing:
        return [f"{where}: missing {', '.join(missing)}"]
    env, data = run["environment"], run["data"]
    hashes = [data.get("oe_sha256"), *(data.get("cifar_batches_sha256") or {None: None}).values()]
    checks = [(k in env, f"environment: missing {k}") for k in ENV_FIELDS]
    checks += [
        (isinstance(run["eoe_commit"], str) and HEX40.fullmatch(run["eoe_commit"]), "eoe_commit is not 40 hex digits"),
        (isinstance(run["command"], str) and run["command"].strip(), "empty command"),
        (_is_iso(run["date"]), f"date {run['date']!r} is not ISO 8601"),
        (isinstance(env.get("torch"), str) and VERSION.fullmatch(env["torch"]), "environment.torch is not a version"),
        (all(isinstance(h, str) and HEX64.fullmatch(h) for h in hashes), "data: a SHA-256 is missing or malformed"),
        (_draws_fit(cell, run["oe_indices"]), f"oe_indices do not fit oe={cell.get('oe')!r}"),
    ]
    return [f"{where}: {message}" for ok, message in checks if not ok]


def validate(doc: dict) -> list[str]:
    """Every problem with a reference file's content (empty: fine): missing fields, malformed provenance,
    summaries that do not match the runs, single-image cells without their pool index."""
    problems = [f"missing top-level {k}" for k in ("schema", "protocol", "cells") if k not in doc]
    if problems:
        return problems
    commit = doc["protocol"].get("eoe_commit")
    if not isinstance(commit, str) or not HEX40.fullmatch(commit):
        problems.append(f"protocol.eoe_commit {commit!r} is not 40 hex digits")
    if not doc["protocol"].get("patches"):
        problems.append("protocol.patches: missing or empty")
    for cid, cell in doc["cells"].items():
        missing = [k for k in CELL_FIELDS if k not in cell]
        if missing:
            problems.append(f"{cid}: missing {', '.join(missing)}")
            continue
        runs, detail = cell["runs"], cell["runs_detail"]
        if not (cell["n"] == len(runs) == len(detail) == len(cell["ap"])) or cell["n"] < 1:
            problems.append(f"{cid}: n {cell['n']} does not match runs / ap / runs_detail")
            continue
        if [r.get("auc") for r in detail] != runs or [r.get("ap") for r in detail] != cell["ap"]:
            problems.append(f"{cid}: runs / ap are not the AUC / AP of runs_detail")
        if not all(0 <= a <= 100 for a in runs):
            problems.append(f"{cid}: an AUC outside [0, 100] %")
        if cell["mean"] is None or abs(cell["mean"] - statistics.fmean(runs)) > 5e-4:
            problems.append(f"{cid}: mean {cell['mean']} is not the mean of runs")
        sd = statistics.stdev(runs) if len(runs) > 1 else None
        if (sd is None) != (cell["sd"] is None) or (sd is not None and abs(cell["sd"] - sd) > 5e-4):
            problems.append(f"{cid}: sd {cell['sd']} is not the sample sd of runs")
        if cell["oe"] == "image" and not isinstance(cell["oe_index"], int):
            problems.append(f"{cid}: a single-image cell must name its pool index (oe_index)")
        for i, run in enumerate(detail):
            problems += _check_run(f"{cid}.runs_detail[{i}]", cell, run)
    return problems


def collect(work: Path, out: Path, order: list[str] | None = None) -> dict:
    """Merge every record under ``work`` into ``out`` (written atomically); return the merged content."""
    records = [json.loads(p.read_text()) for p in sorted(Path(work).glob("c*-*/run*.json"))]
    existing = json.loads(out.read_text()) if out.is_file() else None
    if not records and existing is None:
        raise FileNotFoundError(f"{work}: no finished runs (WORK/<cell>/run<k>.json) to collect")
    merged = merge(existing, records, order)
    problems = validate(merged)
    if problems:
        raise ValueError(f"{out}: the merged references are not valid: {'; '.join(problems[:5])}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(merged, indent=1) + "\n")
    tmp.replace(out)
    return merged

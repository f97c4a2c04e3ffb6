"""Which records a report may pool: the same effective config except the seed.

A report averages over seeds only. Two records that differ in any other key that changes what a job computes
(``epochs``, ``lr``, ``augment``, ``net.*``, ``method.radial``, ``filter``, ...) land in different groups, and
every such key that varies within the folder becomes a labelled column (``variant``), unless a column the
table already shows (method, data, OE, benchmark, OE size) determines it (``method.gamma`` comes with focal).
A key a figure draws along (its x, e.g. the OE size of Figure 2) determines nothing: a schedule that changes with
the OE size is a different configuration, and a curve never joins its points. A varying key that another one
determines (``trainer.max_epochs`` or ``milestones`` with ``epochs``) is left out of the label (but still separates).
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..job.records import NON_EFFECTIVE_KEYS

POOLED = ("seed", "oe.seed")  # the seed, and the keys interpolated from it
SHOWN = ("method", "data", "oe", "benchmark", "oe_size")  # record fields the tables show already
ROW_KEYS = ("normal_class",)  # rows of the per-class tables
LABELLED = ("epochs",)  # always named in a variant when it varies; other keys only when nothing named fixes them


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values (as JSON text, so they can be compared)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: "{}"}
    return {prefix[:-1]: json.dumps(node, sort_keys=True, default=str) if isinstance(node, list) else node}


def effective(record: dict[str, Any]) -> dict[str, Any]:
    """The record's config as dotted keys, without the keys the config hash ignores and without the seed."""
    flat = flatten(record.get("config") or {})
    dropped = (*NON_EFFECTIVE_KEYS, *POOLED, "hydra")
    return {k: v for k, v in flat.items() if not any(k == d or k.startswith(f"{d}.") for d in dropped)}


def group_id(config: dict[str, Any]) -> str:
    """One id per effective config minus the seed (records with the same id differ only in their seed)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _consistent(key: str, labels: Sequence[str], configs: Sequence[dict]) -> bool:
    """Whether each label goes with one value of ``key`` throughout."""
    seen: dict[str, Any] = {}
    for label, cfg in zip(labels, configs):
        if seen.setdefault(label, cfg.get(key, "<absent>")) != cfg.get(key, "<absent>"):
            return False
    return True


def _determined(key: str, configs: Sequence[dict], records: Sequence[dict], fields: Sequence[str] = SHOWN) -> bool:
    """Whether one of the fields the table shows already fixes ``key`` (e.g. ``method.gamma`` by the method)."""
    return any(_consistent(key, [json.dumps(rec.get(f), default=str) for rec in records], configs) for f in fields)


def varying_keys(records: Sequence[dict], shown: Iterable[str] = (), along: Iterable[str] = ()) -> list[str]:
    """The effective keys with more than one value in ``records`` that a table must show as columns; ``along``:
    the fields a figure draws along, which determine no other key."""
    configs = [effective(r) for r in records]
    keys = sorted({k for c in configs for k in c})
    skip = {*ROW_KEYS, *shown, *along}
    fields = [f for f in SHOWN if f not in set(along)]
    out = []
    for key in keys:
        if key in skip or len({json.dumps(c.get(key, "<absent>"), default=str) for c in configs}) < 2:
            continue
        if not _determined(key, configs, records, fields):
            out.append(key)
    return out


def _shortest(keys: list[str], configs: Sequence[dict]) -> list[str]:
    """``keys`` without those another kept key determines (``epochs`` always stays)."""
    order = sorted(keys, key=lambda k: (k not in LABELLED, k.count("."), k not in ("milestones", "lr", "augment"), k))
    kept: list[str] = []
    for key in order:
        by = [json.dumps([c.get(k, "<absent>") for k in kept], default=str) for c in configs]
        if key in LABELLED or not kept or not _consistent(key, by, configs):
            kept.append(key)
    return [k for k in keys if k in kept]


def annotate(records: Sequence[dict], shown: Iterable[str] = (), along: Iterable[str] = ()) -> list[dict[str, str]]:
    """Per record: ``variant`` (``"epochs=3 lr=0.01"``, empty when nothing varies) and ``config_group``."""
    configs = [effective(r) for r in records]
    keys = _shortest(varying_keys(records, shown, along), configs)
    out = []
    for cfg in configs:
        variant = " ".join(f"{k}={_label(cfg.get(k))}" for k in keys)
        out.append({"variant": variant, "config_group": group_id(cfg)})
    return out


def _label(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

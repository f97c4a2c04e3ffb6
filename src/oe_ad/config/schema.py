"""The config schema and its one validation: every job's config passes :func:`validate_config` once, before any
data is read, and without importing torch or Lightning (a bad option is refused in about a second).

Types and unknown keys come from declarations: the dataclasses below (types; ``rule`` adds a range or choices),
merged with the composed config as OmegaConf typed nodes, and, for every node with a ``_target_`` (``method``,
``net``, ``data``, ``oe``, ``filter``, ``trainer``, ``logger``, ``method.optimizer``), the keywords of that target,
read from its source by :mod:`oe_ad.config.targets`. The project's own rules (what a method needs, the schedule, the
data's files, the output folder) run after them in :func:`validate_config`. Normalised values are written back, so
records and config hashes hold ``augment: false`` and the milestones as epochs, never ``no`` or a fraction.
"""

import difflib
import math
import os
import re
import tempfile
from dataclasses import dataclass, field, fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigKeyError, ValidationError

from ..data.npy import checked_indices, npy_header
from ..data.options import Augmentation, BatchOptions, rule
from ..errors import OEADError
from ..methods.oe_use import OE_USES, trains_with_oe
from ..search import ALGORITHMS
from .targets import TargetInfo, target_info

# Classes of the datasets whose class count is fixed (data.name -> count); ``folder`` counts its train/ folders.
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet30": 30, "mvtec": 15}
GPU_ACCELERATORS = ("gpu", "cuda")


@dataclass
class Checkpoint:
    every_n_epochs: int = rule(min=0)
    keep: bool = MISSING
    save_model: bool = MISSING


@dataclass
class Paths:
    data_dir: str = MISSING
    cache_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class Search:
    """``conf/search.yaml`` (its values and what they mean)."""

    algorithm: str = rule(choices=tuple(ALGORITHMS))
    direction: str = rule(choices=("max", "min"))
    generation_size: int = rule(min=1)
    generations: int = rule(min=0)
    tournament: int = rule(min=1)
    mating: float = rule(min=0, max=1)
    mutation: float = rule(min=0, max=1)
    candidates: int = rule(min=1)
    nearest: int = rule(min=1)
    evaluations: int | None = rule(min=1)
    seeds: list[int] = rule(min=0, nonempty=True)
    fitness: Any = MISSING
    grid: int = rule(min=1)


@dataclass
class Job:
    """The top level of a job's config (``conf/config.yaml``, the data/method/experiment files that write there)."""

    name: str = MISSING
    normal_class: int = rule(min=0)
    seed: int = rule(min=0)
    oe_size: int | None = rule(min=1)
    benchmark: str = rule(choices=("ovr", "loo"))
    batch_size: int = rule(min=1)
    augment: bool = MISSING
    force: bool = MISSING
    threads: int | None = rule(min=1)
    epochs: int = rule(min=0)
    milestones: Any = None  # epochs or fractions of epochs: resolve_milestones
    lr: float = rule(gt=0)
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    paths: Paths = field(default_factory=Paths)
    batches: BatchOptions = field(default_factory=BatchOptions)
    augmentation: Augmentation | None = None
    search: Search | None = None
    data: Any = None
    oe: Any = None
    net: Any = None
    method: Any = None
    trainer: Any = None
    logger: Any = None
    filter: Any = None
    report: Any = None  # an experiment's table layout, read by the report only


# Nodes whose keys are keywords of their ``_target_``: keys the package passes itself (-> where they are set), and
# labels that are not passed. A node with a ``_target_`` inside one of them is checked too.
NODES: dict[str, tuple[dict[str, str], frozenset[str]]] = {
    "method": (
        {"net": "the net group (net=...)", "lr": "the top-level lr", "milestones": "the top-level milestones"},
        frozenset({"name"}),
    ),
    "method.optimizer": ({"params": "the method", "lr": "the top-level lr"}, frozenset()),
    "data": ({}, frozenset({"name", "fingerprint"})),  # data.fingerprint: the data's identity (data/fingerprint.py)
    "oe": ({}, frozenset({"name", "fingerprint"})),
    "trainer": (
        {"logger": "the logger group", "default_root_dir": "the job folder", "callbacks": "oe_ad"},
        frozenset(),
    ),
    "logger": ({"save_dir": "the job folder", "run": "the job"}, frozenset()),
}
# Integer keywords of the target nodes, by name, and their least value (None: null is allowed too).
NODE_INTS = {"image_size": (1, True), "workers": (0, False), "max_in_memory": (1, False), "out_dim": (1, False)}
# Boolean keywords of the target nodes (``yes``, ``on``, ``1``, ... written back as true or false).
NODE_BOOLS = ("download", "one_based")
BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


# -- messages --------------------------------------------------------------------------------------------------
def show(value: Any) -> str:
    if isinstance(value, (list, ListConfig)):
        return "[" + ",".join(show(v) for v in value) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def refuse(key: str, value: Any, why: str) -> None:
    raise OEADError(f"{key}={show(value)}: {why}")


def unknown_key(key: str, options: Any) -> OEADError:
    """``unknown key 'epoch' (did you mean 'epochs'?)``"""
    match = difflib.get_close_matches(key, sorted(options), n=1, cutoff=0.5)
    return OEADError(f"unknown key '{key}'" + (f" (did you mean '{match[0]}'?)" if match else ""))


TYPE_WORDS = {"Integer": "not an integer", "Float": "not a number", "bool": "not a boolean (use true/false, "
              "yes/no, on/off or 1/0)"}  # fmt: skip


def one_line(e: Exception, parent_keys: Any = ()) -> str:
    """The line of an OmegaConf type or key error (as the rules word theirs)."""
    key = re.sub(r"\[\d+\]$", "", str(e.full_key))  # search.seeds[0] -> search.seeds
    if isinstance(e, ConfigKeyError):
        prefix = key.rpartition(".")[0]
        return str(unknown_key(key, [f"{prefix}.{k}" if prefix else str(k) for k in parent_keys]))
    why = next((w for word, w in TYPE_WORDS.items() if word in str(e)), str(e).splitlines()[0])
    return f"{key}={show(e.value)}: {why}"


# -- the declarations, checked ------------------------------------------------------------------------------------
def _typed(cfg: DictConfig) -> DictConfig:
    """The config's values merged into the :class:`Job` declaration (types converted, unknown keys refused); the
    nodes it declares as ``Any`` (``data``, ``method``, ...) are checked against their targets instead."""
    declared = {f.name: f.type is not Any for f in fields(Job)}
    values = {}
    for key in cfg:
        node = cfg._get_node(key)
        values[key] = None if not declared.get(key, True) else node if node._is_missing() else OmegaConf.to_object(
            node) if isinstance(node, DictConfig) else node._dereference_node()._value()  # fmt: skip
    try:
        return OmegaConf.merge(_job_schema(), values)
    except (ValidationError, ConfigKeyError) as e:
        parent = e.parent_node
        raise OEADError(one_line(e, parent.keys() if isinstance(parent, DictConfig) else ())) from None


@lru_cache(maxsize=1)
def _job_schema() -> DictConfig:
    return OmegaConf.structured(Job)


def _check_rules(declared: type, typed: DictConfig, raw: Any, prefix: str = "") -> None:
    """Each declared field's ``rule`` (range, choices), and booleans written as 0/1 only; nested declarations too.
    Writes the typed value back into ``raw`` (the job's config), where it is set."""
    for f in fields(declared):
        key, value = f"{prefix}{f.name}", typed.get(f.name)
        if f.type is Any or not isinstance(raw, DictConfig) or f.name not in raw or OmegaConf.is_missing(raw, f.name):
            continue
        given = raw[f.name]
        kind = f.type if isinstance(f.type, type) else None
        if is_dataclass(kind) or (value is not None and isinstance(value, DictConfig) and is_dataclass(_inner(f))):
            _check_rules(_inner(f), value, given, f"{key}.")
            continue
        if f.type is bool and isinstance(given, int) and not isinstance(given, bool) and given not in (0, 1):
            refuse(key, given, TYPE_WORDS["bool"])
        spec = f.metadata.get("rule")
        if spec and value is not None:
            spec.check(key, value)
        if isinstance(value, ListConfig):
            value = list(value)
        if type(given) is not type(value) or given != value:  # normalised: ``no`` -> false, "3" -> 3
            raw[f.name] = value


def _inner(f: Any) -> type | None:
    """The dataclass of an optional nested declaration (``Augmentation | None``)."""
    return next((t for t in getattr(f.type, "__args__", (f.type,)) if is_dataclass(t)), None)


# -- nodes with a _target_ ----------------------------------------------------------------------------------------
def node_info(node: Any) -> TargetInfo | None:
    """What the ``_target_`` of a config node accepts and declares (None: the node has no target)."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    return target_info(str(target)) if target else None


def _check_node(node: DictConfig, path: str) -> None:
    """Every key of ``node`` is a keyword of its ``_target_`` (or a label, or Hydra's); integer options in range."""
    info = node_info(node)
    if info is None:
        return
    passed, labels = NODES.get(path, ({}, frozenset()))
    for key in node:
        if key in passed:
            refuse(f"{path}.{key}", node._get_node(key)._value(), f"not a key of {path}: it is set by {passed[key]}")
        if info.params is not None and key not in info.params | labels and not str(key).startswith("_"):
            raise unknown_key(f"{path}.{key}", {f"{path}.{a}" for a in info.params - passed.keys() | labels})
    for key, allowed in (info.attrs.get("choices") or {}).items():  # a target's ``choices = {key: (values)}``
        value = node[key] if key in node and not OmegaConf.is_missing(node, key) else allowed[0]
        if not any(type(value) is type(a) and value == a for a in allowed):  # true is not 1
            refuse(f"{path}.{key}", node[key], f"choose from {', '.join(map(show, allowed))}")
    for key in NODE_BOOLS:
        if key in node and not OmegaConf.is_missing(node, key) and not isinstance(node[key], bool):
            if str(node[key]).lower() not in BOOL_WORDS or isinstance(node[key], float):
                refuse(f"{path}.{key}", node[key], TYPE_WORDS["bool"])
            node[key] = BOOL_WORDS[str(node[key]).lower()]
    for key, (low, null) in NODE_INTS.items():
        if key in node and not OmegaConf.is_missing(node, key):
            value = node[key]
            if value is None and null:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                refuse(f"{path}.{key}", value, "not an integer")
            if value < low:
                refuse(f"{path}.{key}", value, f"must be >= {low}")
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing() and "_target_" in child:
            _check_node(child, f"{path}.{key}")


def method_traits(cfg: DictConfig) -> tuple[str, bool, bool, str]:
    """(oe_use, whether it trains with a configured OE pool, needs_training, name) of the configured method."""
    info = node_info(cfg.get("method"))
    if info is None:
        return "required", True, True, "?"
    oe_use, switch = info.attrs.get("oe_use", "required"), info.attrs.get("oe_switch")
    if oe_use not in OE_USES:
        raise OEADError(f"{cfg.method._target_}.oe_use={oe_use!r}: must be one of {', '.join(OE_USES)}")
    if switch and switch in cfg.method and not isinstance(cfg.method[switch], bool):
        refuse(f"method.{switch}", cfg.method[switch], TYPE_WORDS["bool"])
    name = str(cfg.method.get("name", cfg.method.get("_target_")))
    return oe_use, trains_with_oe(oe_use, switch, cfg.method), bool(info.attrs.get("needs_training", True)), name


# -- the project's rules ------------------------------------------------------------------------------------------
def num_classes(cfg: DictConfig) -> int | None:
    """How many classes the configured dataset has, where that is known without reading its images: its source
    class's literal ``classes`` list, else the table, else (``folder``) its ``train/`` folders."""
    name = (cfg.get("data") or {}).get("name")
    classes = (node_info(cfg.get("data")) or TargetInfo(None)).attrs.get("classes")
    if isinstance(classes, list) and classes:
        return len(classes)
    if name in NUM_CLASSES:
        return NUM_CLASSES[name]
    root = OmegaConf.select(cfg, "data.root", default=None, throw_on_missing=False)
    train = Path(str(root)) / "train" if name == "folder" and root and root != "???" else None
    return (sum(1 for p in train.iterdir() if p.is_dir()) or None) if train and train.is_dir() else None


def resolve_milestones(milestones: Any, epochs: int) -> list[int]:
    """The epochs after which the learning rate drops x0.1 (docs/protocol.md, Schedules).

    Integers >= 1 are epochs; fractions 0 < f < 1 are fractions of ``epochs``, each rounded half up to an epoch,
    at least 1 (``[0.5, 0.75]``: ``epochs=200`` -> [100, 150], ``epochs=12`` -> [6, 9], ``epochs=3`` -> [2]);
    fractions that round to the same epoch count once. The two kinds cannot be mixed in one list.
    """
    if milestones is None:
        return []
    if not isinstance(milestones, (list, ListConfig)):
        refuse("milestones", milestones, "must be a list of epochs, e.g. [100,150], or of fractions, e.g. [0.5,0.75]")
    fractions = [m for m in milestones if isinstance(m, float) and 0 < m < 1]
    given = [m for m in milestones if m not in fractions]
    for m in given:
        if isinstance(m, bool) or not isinstance(m, (int, float)) or m != int(m):
            refuse("milestones", m, "neither an epoch (an integer >= 1) nor a fraction of epochs (0 < f < 1)")
        if m < 1:
            refuse("milestones", m, "must be >= 1")
    if fractions and given:
        refuse("milestones", milestones, "mixes fractions of epochs with epochs: give all as one or the other")
    listed = fractions or [int(m) for m in given]
    if listed != sorted(set(listed)):
        refuse("milestones", listed if given else milestones, "must be increasing")
    resolved = sorted({max(1, math.floor(f * epochs + 0.5)) for f in fractions}) if fractions else listed
    for m in resolved:
        if m > epochs:
            refuse("milestones", milestones, f"epoch {m} is beyond epochs={epochs} (must be within 1..epochs)")
    return resolved


def _check_inputs(node: DictConfig, path: str) -> None:
    """The folder or file a data or OE node reads exists, unless the node downloads it there."""
    if node.get("download") or node.get("url"):
        return
    root, file = node.get("root"), node.get("path")
    if root is not None and not Path(str(root)).is_dir():
        refuse(f"{path}.root", root, "no such folder" if not Path(str(root)).exists() else "not a folder")
    if file is not None and not Path(str(file)).is_file():
        refuse(f"{path}.path", file, "no such file" if not Path(str(file)).exists() else "not a file")


def _check_oe_file(cfg: DictConfig) -> None:
    """An OE ``.npy`` read from its header: (N, H, W, 3) uint8, not empty, at least ``oe_size`` images."""
    oe = cfg.oe
    if not str(oe.get("_target_", "")).endswith("NpyPool") or (not Path(str(oe.path)).exists() and oe.get("url")):
        return
    path = Path(str(oe.path))
    shape, dtype = npy_header(path, "oe.path")
    if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
        raise OEADError(f"oe.path={path}: expected an (N, H, W, 3) uint8 array, got {shape} {dtype}")
    if shape[0] == 0:
        raise OEADError(f"oe.path={path}: the OE pool is empty (0 images)")
    size = shape[0]
    if oe.get("indices") is not None:
        if not isinstance(oe.indices, ListConfig):
            refuse("oe.indices", oe.indices, "must be a list of image indices, e.g. [2789]")
        size = len(checked_indices(list(oe.indices), shape[0], "oe.indices"))
    if cfg.oe_size is not None and cfg.oe_size > size:
        raise OEADError(f"oe_size={cfg.oe_size}: larger than the OE pool oe.path={path} ({size} images)")


_checked_dirs: set[str] = set()


def check_output_dir(cfg: DictConfig) -> None:
    """``paths.output_dir/name`` can be created: its nearest existing folder is a folder we may write in (tried
    with an empty folder made and removed at once: permission bits do not tell for root or a read-only mount)."""
    out = Path(str(cfg.paths.output_dir)) / str(cfg.name)
    if str(out.absolute()) in _checked_dirs:
        return
    folder = next((p for p in (out, *out.parents) if p.exists() or p.is_symlink()), Path("."))
    key, value = ("name", cfg.name) if folder == out else ("paths.output_dir", cfg.paths.output_dir)
    if not folder.is_dir():
        refuse(key, value, f"{folder} is a file, not a folder: choose another {key}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".oe_ad-write-check-", dir=folder))
    except OSError as e:
        refuse(key, value, f"cannot write in {folder} ({e.strerror or e}): choose a writable paths.output_dir")
    _checked_dirs.add(str(out.absolute()))


def _check_device(trainer: Any) -> None:
    """An explicit GPU request on a machine without one (the only check that imports torch, and only then)."""
    accelerator = str(trainer.get("accelerator", "auto")).lower() if isinstance(trainer, DictConfig) else ""
    if accelerator not in GPU_ACCELERATORS:
        return
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == 0:
        refuse("trainer.accelerator", accelerator, "no GPU is visible to torch: use trainer.accelerator=auto or cpu")
    devices = trainer.get("devices", "auto")
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > visible:
        refuse("trainer.devices", devices, f"only {visible} GPU(s) visible")


def check_searchable(cfg: DictConfig) -> None:
    """A search for single OE images (and its fitness) needs a method that trains with OE and an OE pool."""
    _, method_oe, _, name = method_traits(cfg)
    if not method_oe:
        raise OEADError(f"method={name} trains without OE: a search for single OE images needs an OE method")
    if not cfg.get("oe"):
        raise OEADError("oe=none: a search for OE images needs an OE pool (e.g. oe=npy oe.path=...)")


def validate_config(cfg: DictConfig) -> DictConfig:
    """Check one job's composed config and normalise its values in place; raise a one-line ``OEADError``.

    Idempotent. Imports neither torch nor Lightning (except to look for a GPU that ``trainer.accelerator`` asks for).
    """
    with open_dict(cfg):
        oe_use, method_oe, trains, name = method_traits(cfg)
        with_oe = bool(cfg.get("oe")) and method_oe
        for key in sorted(OmegaConf.missing_keys(cfg)):
            if not key.startswith("hydra.") and (with_oe or not key.startswith("oe.")):
                what = "PATH" if key.rpartition(".")[2] in ("root", "path", "file", "dir") else "VALUE"
                raise OEADError(f"{key} is not set: give it on the command line ({key}={what})")
        _check_rules(Job, _typed(cfg), cfg)
        for path in ("method", "net", "data", "oe", "filter", "trainer", "logger"):
            if isinstance(cfg.get(path), DictConfig) and (path != "oe" or with_oe):
                _check_node(cfg[path], path)
                if path in ("data", "oe"):
                    _check_inputs(cfg[path], path)
        n = num_classes(cfg)
        if n is not None and cfg.normal_class >= n:
            refuse("normal_class", cfg.normal_class, f"must be <= {n - 1}")
        if with_oe and "normal_class" in cfg.oe and cfg.oe.normal_class != cfg.normal_class:  # oe=anomalies
            refuse("oe.normal_class", cfg.oe.normal_class, "the OE is the job's own class's: leave it ${normal_class}")
        if oe_use == "required" and not cfg.get("oe"):
            raise OEADError(
                f"method={name} needs OE but oe=none (it would train on normal images alone): choose an OE source, "
                "e.g. oe=tiny300k or oe=npy oe.path=FILE, or a method without OE (deep_svdd, clip_zero_shot)"
            )
        if oe_use == "none" and method_oe and not cfg.get("oe"):
            raise OEADError(f"method={name} is set to train with OE but oe=none: choose an OE source or turn it off")
        if not method_oe and cfg.oe_size is not None:
            raise OEADError(f"method={name} trains without OE: oe_size={cfg.oe_size} must be null")
        if trains and cfg.epochs < 1:
            refuse("epochs", cfg.epochs, "must be >= 1")
        cfg.milestones = resolve_milestones(cfg.get("milestones"), cfg.epochs)
        if cfg.get("search") is not None:
            check_searchable(cfg)
        if with_oe:
            _check_oe_file(cfg)
        check_output_dir(cfg)
        _check_device(cfg.get("trainer"))
    return cfg

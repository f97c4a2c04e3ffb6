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
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin

import numpy as np
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import ValidationError
from omegaconf.nodes import BooleanNode, FloatNode, IntegerNode, StringNode

from ..data.npy import checked_indices, npy_header
from ..data.options import Augmentation, BatchOptions, rule
from ..errors import OEADError
from ..oe_use import OE_USES, trains_with_oe
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
# The least value of integer keywords of the target nodes, by name (their types come from the targets' annotations).
NODE_MINIMA = {"image_size": 1, "workers": 0, "max_in_memory": 1, "out_dim": 1, "input_size": 1}
# Annotations a keyword's value is checked against (a union of these, ``X | None``, ``Optional[X]``); others are not.
KINDS = {"int": int, "float": (int, float), "bool": bool, "str": str, "None": type(None), "list": (list, ListConfig)}
KINDS |= {"Sequence": (list, ListConfig), "tuple": (list, ListConfig)}


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


TYPE_WORDS = {int: "not an integer", float: "not a number", str: "not a string"}
TYPE_WORDS[bool] = "not a boolean (use true/false, yes/no, on/off or 1/0)"
VALUE_NODES = {int: IntegerNode, float: FloatNode, bool: BooleanNode, str: StringNode}


def nodes(cfg: DictConfig | ListConfig, prefix: str = "") -> Iterator[tuple[Any, Any, str, Any]]:
    """Every node below ``cfg`` as (its parent, its key, its dotted path, the node), parents first, without resolving
    an interpolation (much cheaper than reading values: OmegaConf resolves each one it is asked for). Neither an
    interpolation nor a ``???`` or null container is entered."""
    for key in cfg.keys() if isinstance(cfg, DictConfig) else range(len(cfg)):
        child, path = cfg._get_node(key), f"{prefix}{key}"
        yield cfg, key, path, child
        if isinstance(child, (DictConfig, ListConfig)) and not (
            child._is_interpolation() or child._is_none() or child._is_missing()
        ):
            yield from nodes(child, f"{path}.")


# -- the declarations, checked ------------------------------------------------------------------------------------
def _declared(declared: type, node: DictConfig, prefix: str = "") -> None:
    """``node`` against the dataclass ``declared``: unknown keys refused, each value converted by OmegaConf's typed
    value nodes (``no`` -> false, ``"3"`` -> 3), checked against its ``rule`` and written back normalised; nested
    declarations alike. Fields declared ``Any`` are left to their targets (:func:`_check_node`)."""
    known = {f.name: f for f in fields(declared)}
    for key in node:
        if key not in known:
            raise unknown_key(f"{prefix}{key}", [f"{prefix}{k}" for k in known])
    for name, f in known.items():
        if name not in list(node) or OmegaConf.is_missing(node, name) or f.type is Any:
            continue
        key, value = f"{prefix}{name}", node[name]
        args = [a for a in get_args(f.type) if a is not type(None)] if isinstance(f.type, UnionType) else [f.type]
        if value is None and len(args) < len(get_args(f.type)):  # X | None
            continue
        if is_dataclass(args[0]):
            if not isinstance(value, DictConfig):
                refuse(key, value, "must be a group of keys")
            _declared(args[0], value, f"{key}.")
            continue
        typed = _convert(key, value, args[0])
        if "rule" in f.metadata:
            f.metadata["rule"].check(key, typed)
        if type(value) is not type(typed) or value != typed:
            node[name] = typed


def _convert(key: str, value: Any, kind: Any) -> Any:
    """``value`` as the declared ``kind`` (``int``, ``float``, ``bool``, ``str`` or ``list[...]`` of them)."""
    if get_origin(kind) is list:
        if not isinstance(value, (list, ListConfig)):
            refuse(key, value, "must be a list")
        return [_convert(key, v, get_args(kind)[0]) for v in value]
    if kind is bool and isinstance(value, int) and not isinstance(value, bool) and value not in (0, 1):
        refuse(key, value, TYPE_WORDS[bool])
    try:
        return VALUE_NODES[kind](value=value, is_optional=False)._value()
    except ValidationError:
        refuse(key, value, TYPE_WORDS[kind])


# -- nodes with a _target_ ----------------------------------------------------------------------------------------
def node_info(node: Any) -> TargetInfo | None:
    """What the ``_target_`` of a config node accepts and declares (None: the node has no target)."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    return target_info(str(target)) if target else None


def _kinds(annotation: str) -> tuple | None:
    """The Python types an annotation such as ``int | None`` or ``bool | list[str]`` admits (None: not checked)."""
    text = annotation.replace(" ", "")
    if text.startswith("Optional[") and text.endswith("]"):
        text = f"{text[9:-1]}|None"
    kinds = [KINDS.get(part.split("[")[0]) for part in text.split("|")]
    return None if None in kinds else tuple(k for kind in kinds for k in (kind if isinstance(kind, tuple) else (kind,)))


def _check_node(node: DictConfig, path: str) -> None:
    """Every key of ``node`` is a keyword of its ``_target_`` (or a label, or Hydra's), of the type its annotation
    says; integers at least their ``NODE_MINIMA``; nested targets too."""
    info = node_info(node)
    if info is None:
        return
    passed, labels = NODES.get(path, ({}, frozenset({"fingerprint"})))
    for key, allowed in (info.attrs.get("choices") or {}).items():  # a target's ``choices = {key: (values)}``
        value = node[key] if key in node and not OmegaConf.is_missing(node, key) else allowed[0]
        if not any(type(value) is type(a) and value == a for a in allowed):  # true is not 1
            refuse(f"{path}.{key}", node[key], f"choose from {', '.join(map(show, allowed))}")
    for key in node:
        if key in passed:
            refuse(f"{path}.{key}", node._get_node(key)._value(), f"not a key of {path}: it is set by {passed[key]}")
        if info.params is not None and key not in info.params | labels and not str(key).startswith("_"):
            raise unknown_key(f"{path}.{key}", {f"{path}.{a}" for a in info.params - passed.keys() | labels})
        child = node._get_node(key)
        if child._is_missing() or (isinstance(child, DictConfig) and "_target_" in child):
            continue
        value, annotation = node[key], info.types.get(key, "object")
        if annotation.replace(" ", "") in ("bool", "bool|None") and value is not None and not isinstance(value, bool):
            node[key] = value = _convert(f"{path}.{key}", value, bool)  # yes/on/1 written back as true
        kinds = _kinds(annotation)
        if kinds is not None and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
            refuse(f"{path}.{key}", value, f"must be {annotation}")
        if key in NODE_MINIMA and isinstance(value, int) and value < NODE_MINIMA[key]:
            refuse(f"{path}.{key}", value, f"must be >= {NODE_MINIMA[key]}")
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
    if switch and switch in cfg.method:
        cfg.method[switch] = _convert(f"method.{switch}", cfg.method[switch], bool)  # yes/no/on/off/1/0
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
    root = node.get("root")
    if root is not None and not Path(str(root)).is_dir():
        refuse(f"{path}.root", root, "no such folder" if not Path(str(root)).exists() else "not a folder")
    for key in ("path", "snapshot"):
        file = node.get(key)
        if file is not None and not Path(str(file)).is_file():
            refuse(f"{path}.{key}", file, "no such file" if not Path(str(file)).exists() else "not a file")


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
        for key in sorted(parent._get_full_key(k) for parent, k, _, node in nodes(cfg) if node._is_missing()):
            if not key.startswith("hydra.") and (with_oe or not key.startswith("oe.")):
                what = "PATH" if key.rpartition(".")[2] in ("root", "path", "file", "dir") else "VALUE"
                raise OEADError(f"{key} is not set: give it on the command line ({key}={what})")
        _declared(Job, cfg)
        for path in ("method", "net", "data", "oe", "filter", "trainer", "logger"):
            if isinstance(cfg.get(path), DictConfig) and (path != "oe" or with_oe):
                _check_node(cfg[path], path)
                if path in ("data", "oe", "net"):
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

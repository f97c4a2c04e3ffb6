"""The config schema and its one validation step: every job's config passes ``validate_config`` before data is read.

Hydra composes the YAML groups as they are; this module then checks the composed config in one place (single
jobs, sweep jobs, vectorised members and searches all call it): types (ints where ints are meant, booleans
written ``true/false``, ``yes/no``, ``on/off`` or ``1/0``), ranges, and unknown keys. The top-level keys of a
job are checked strictly; a group node (``method``, ``net``, ``data``, ...) is checked by its own rules and
may carry keys this module does not know (its constructor receives them). Normalised values are written back
into the config, so records and config hashes hold ``augment: false``, never the string ``no``.
``check_command_line`` rejects misspelt and repeated keys before Hydra composes anything.
"""

import difflib
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .data.npy import checked_indices, npy_header
from .errors import OEADError

TRUE = {"yes", "on", "true", "1"}
FALSE = {"no", "off", "false", "0"}
# Classes of the datasets whose class count is fixed (data.name -> count); ``folder`` counts its train/ folders.
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet30": 30, "mvtec": 15}
BENCHMARKS = ("ovr", "loo")
# Top-level keys of a job (config.yaml, the data/method/experiment files that write at the top level). Keys that
# other parts of the package add at the top level belong here too, so a misspelt one never passes silently.
TOP_LEVEL = frozenset(
    {
        *("name", "normal_class", "seed", "oe_size", "benchmark", "batch_size", "augment", "force", "threads"),
        *("checkpoint", "paths", "data", "oe", "net", "method", "trainer", "logger", "filter", "augmentation"),
        *("epochs", "milestones", "lr", "search", "report", "batches"),
    }
)
CHECKPOINT = {"every_n_epochs": "int>=0", "keep": "bool", "save_model": "bool"}
# Overrides that would move records away from the experiment's skip-index (see README, "Reliability").
MOVING_OVERRIDES = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir")


def _fail(key: str, value: Any, why: str) -> None:
    raise OEADError(f"{key}={_show(value)}: {why}")


def _show(value: Any) -> str:
    if isinstance(value, (list, ListConfig)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def as_int(key: str, value: Any, low: int | None = None, high: int | None = None, null: bool = False) -> int | None:
    """An integer (a float with a fraction, a bool or text is an error) within [low, high]."""
    if value is None:
        if null:
            return None
        _fail(key, value, "must be an integer")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        _fail(key, value, "not an integer" + (" (or null)" if null else ""))
    value = int(value)
    if low is not None and value < low:
        _fail(key, value, f"must be >= {low}" + (" (or null)" if null else ""))
    if high is not None and value > high:
        _fail(key, value, f"must be <= {high}")
    return value


def as_float(key: str, value: Any, positive: bool = False, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        _fail(key, value, "not a number")
    if positive and value <= 0:
        _fail(key, value, "must be > 0")
    if low is not None and value < low:
        _fail(key, value, f"must be >= {low}")
    return float(value)


def as_bool(key: str, value: Any) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case); anything else is an error, not 'true'."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    _fail(key, value, "not a boolean (use true/false, yes/no, on/off or 1/0)")
    return False  # unreachable


def closest(key: str, options: Iterable[str]) -> str:
    """`` (did you mean 'epochs'?)`` for a misspelt key, or nothing."""
    match = difflib.get_close_matches(key, sorted(options), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown_key(key: str, options: Iterable[str]) -> OEADError:
    return OEADError(f"unknown key '{key}'{closest(key, options)}")


def _strict(node: DictConfig, where: str, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for key in node:
        if key not in allowed:
            raise unknown_key(f"{where}{key}", {f"{where}{a}" for a in allowed})


def num_classes(cfg: DictConfig) -> int | None:
    """How many classes the configured dataset has, where that is known without reading its images."""
    data = cfg.get("data") or {}
    name = data.get("name")
    if name in NUM_CLASSES:
        return NUM_CLASSES[name]
    root = OmegaConf.select(cfg, "data.root", default=None, throw_on_missing=False)
    if name == "folder" and root and not OmegaConf.is_missing(cfg.data, "root"):
        train = Path(str(root)) / "train"
        if train.is_dir():
            return sum(1 for p in train.iterdir() if p.is_dir()) or None
    return None


def _check_oe(cfg: DictConfig, trains_with_oe: bool) -> None:
    oe = cfg.get("oe")
    if not oe or not trains_with_oe:
        return
    target = str(oe.get("_target_", ""))
    if target.endswith("NpyPool") and not OmegaConf.is_missing(oe, "path"):
        path = Path(str(oe.path))
        if not path.exists() and oe.get("url"):
            return  # downloaded (and checked) when the pool is built
        shape, dtype = npy_header(path, "oe.path")
        if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
            raise OEADError(f"oe.path={path}: expected an (N, H, W, 3) uint8 array, got {shape} {dtype}")
        if shape[0] == 0:
            raise OEADError(f"oe.path={path}: the OE pool is empty (0 images)")
        size = shape[0]
        if oe.get("indices") is not None:
            if not isinstance(oe.indices, ListConfig):
                _fail("oe.indices", oe.indices, "must be a list of image indices, e.g. [2789]")
            size = len(checked_indices(list(oe.indices), shape[0], "oe.indices"))
        if cfg.oe_size is not None and cfg.oe_size > size:
            raise OEADError(f"oe_size={cfg.oe_size}: larger than the OE pool oe.path={path} ({size} images)")


def _method_class(cfg: DictConfig) -> type | None:
    from hydra.utils import get_class

    target = cfg.method.get("_target_") if isinstance(cfg.get("method"), DictConfig) else None
    return get_class(target) if target else None


def _check_augmentation(cfg: DictConfig) -> None:
    from .data.datamodule import OEDataModule  # the constructor that receives these keys

    aug = cfg.get("augmentation")
    if aug is None:
        return
    taken = {"normal", "oe", "normal_class", "oe_size", "seed", "batch_size", "augment", "benchmark", "batches"}
    params = set(inspect.signature(OEDataModule.__init__).parameters) - taken - {"self"}
    _strict(aug, "augmentation.", params)
    rules: dict[str, Callable[[str, Any], Any]] = {
        "crop": lambda k, v: as_int(k, v, low=1, null=True),
        "padding": lambda k, v: as_int(k, v, low=0),
        "jitter": lambda k, v: as_float(k, v, low=0.0),
        "noise": lambda k, v: as_float(k, v, low=0.0),
    }
    for key, rule in rules.items():
        if key in aug:
            aug[key] = rule(f"augmentation.{key}", aug[key])


def _check_batches(cfg: DictConfig) -> None:
    """The ``batches`` node (data/oe.py, ``BatchOptions``): its keys and their choices."""
    from .data.oe import BatchOptions

    node = cfg.get("batches")
    if node is None:
        return
    _strict(node, "batches.", [f.name for f in fields(BatchOptions)])
    BatchOptions(**node)  # an unknown choice is a one-line error naming the key


def _check_search(s: DictConfig) -> None:
    for key in ("generation_size", "tournament", "candidates", "nearest", "grid"):
        if key in s:
            s[key] = as_int(f"search.{key}", s[key], low=1)
    if "generations" in s:
        s.generations = as_int("search.generations", s.generations, low=0)
    if "evaluations" in s:
        s.evaluations = as_int("search.evaluations", s.evaluations, low=1, null=True)
    for key in ("mating", "mutation"):
        if key in s and not 0 <= as_float(f"search.{key}", s[key]) <= 1:
            _fail(f"search.{key}", s[key], "must be within 0..1")
    if "seeds" in s:
        if not isinstance(s.seeds, ListConfig) or not s.seeds:
            _fail("search.seeds", s.seeds, "must be a non-empty list of seeds")
        s.seeds = [as_int("search.seeds", v, low=0) for v in s.seeds]


def validate_config(cfg: DictConfig) -> DictConfig:
    """Check one job's composed config and normalise its values in place; raise a one-line ``OEADError``.

    Idempotent: every entry point calls it first, and calling it again changes nothing.
    """
    with open_dict(cfg):
        _validate(cfg)
    return cfg


def _validate(cfg: DictConfig) -> None:
    _strict(cfg, "", TOP_LEVEL)
    method_cls = _method_class(cfg)
    trains = getattr(method_cls, "needs_training", True)
    if isinstance(cfg.get("method"), DictConfig) and "with_oe" in cfg.method:
        cfg.method.with_oe = as_bool("method.with_oe", cfg.method.with_oe)
    method_oe = method_cls.trains_with_oe(cfg.method) if hasattr(method_cls, "trains_with_oe") else True
    with_oe = bool(cfg.get("oe")) and method_oe
    cfg.seed = as_int("seed", cfg.get("seed"), low=0)
    n = num_classes(cfg)
    cfg.normal_class = as_int("normal_class", cfg.get("normal_class"), low=0, high=None if n is None else n - 1)
    cfg.oe_size = as_int("oe_size", cfg.get("oe_size"), low=1, null=True)
    if not method_oe and cfg.oe_size is not None:
        raise OEADError(f"method={cfg.method.name} trains without OE: oe_size={cfg.oe_size} must be null")
    cfg.batch_size = as_int("batch_size", cfg.get("batch_size"), low=1)
    for key in ("augment", "force"):
        if key in cfg:
            cfg[key] = as_bool(key, cfg[key])
    if cfg.get("threads") is not None:
        cfg.threads = as_int("threads", cfg.threads, low=1)
    if cfg.get("benchmark", "ovr") not in BENCHMARKS:
        _fail("benchmark", cfg.benchmark, f"choose from {', '.join(BENCHMARKS)}")
    cfg.epochs = as_int("epochs", cfg.get("epochs"), low=1 if trains else 0)
    cfg.lr = as_float("lr", cfg.get("lr", 1e-3), positive=True)
    milestones = cfg.get("milestones") or []
    if not isinstance(milestones, (list, ListConfig)):
        _fail("milestones", milestones, "must be a list of epochs, e.g. [100,150]")
    cfg.milestones = [as_int("milestones", m, low=1) for m in milestones]
    for m in cfg.milestones:
        if m > cfg.epochs:
            _fail("milestones", cfg.milestones, f"epoch {m} is beyond epochs={cfg.epochs} (must be within 1..epochs)")
    if list(cfg.milestones) != sorted(set(cfg.milestones)):
        _fail("milestones", cfg.milestones, "must be increasing")
    if cfg.get("checkpoint") is not None:
        _strict(cfg.checkpoint, "checkpoint.", CHECKPOINT)
        for key, rule in CHECKPOINT.items():
            if key in cfg.checkpoint:
                value = cfg.checkpoint[key]
                cfg.checkpoint[key] = (
                    as_bool(f"checkpoint.{key}", value) if rule == "bool" else as_int(f"checkpoint.{key}", value, low=0)
                )
    _check_augmentation(cfg)
    _check_batches(cfg)
    if cfg.get("search") is not None:
        _check_search(cfg.search)
    _check_oe(cfg, with_oe)


# -- the command line, before Hydra composes anything ------------------------------------------------------


def _override_key(line: str) -> tuple[str, str, str]:
    """(prefix, key, value) of ``+key=value`` / ``~key`` / ``key=value``."""
    prefix = line[: len(line) - len(line.lstrip("+~"))]
    key, _, value = line[len(prefix) :].partition("=")
    return prefix, key.strip(), value


def _paths(node: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(node, DictConfig):
        for key in node:
            path = f"{prefix}{key}"
            yield path
            try:
                child = node._get_node(key)
            except Exception:
                continue
            if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
                yield from _paths(child, path + ".")


def check_command_line(argv: list[str], config_dir: Path, config_name: str, groups: Iterable[str]) -> None:
    """One-line errors for a key given twice, an unknown key (with the closest valid one) and overrides
    that would move records away from their skip-index. Group choices (``method=nope``) are checked by the caller."""
    groups = set(groups)
    overrides = [a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    seen: dict[str, str] = {}
    for line in overrides:
        _, key, _ = _override_key(line)
        if key in seen:
            raise OEADError(f"{key} given twice on the command line ('{seen[key]}' and '{line}')")
        seen[key] = line
        # Lightning relaunches DDP ranks > 0 with hydra.run.dir set to rank 0's folder: allowed there only
        if key in MOVING_OVERRIDES and os.environ.get("LOCAL_RANK", "0") == "0":
            raise OEADError(
                f"{key}= is not supported: outputs go to paths.output_dir=DIR and name=NAME "
                "(where their skip-index lives)"
            )
    choices = [
        line for line in overrides if _override_key(line)[1] in groups or _override_key(line)[1].startswith("hydra/")
    ]
    values = [line for line in overrides if line not in choices and not _override_key(line)[1].startswith("hydra.")]
    if not values:
        return
    from hydra import compose, initialize_config_dir

    first = []  # one composition with the first option of every group choice: which keys exist
    for line in choices:
        prefix, key, value = _override_key(line)
        first.append(f"{prefix}{key}={value.split(',')[0]}")
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        try:
            cfg = compose(config_name, overrides=first)
        except Exception:
            return  # Hydra reports a broken group choice itself
    known = set(_paths(cfg))
    for line in values:
        prefix, key, _ = _override_key(line)
        if prefix in ("", "~") and key not in known:
            raise unknown_key(key, known)
        if "+" in prefix and "." not in key and key not in TOP_LEVEL:
            raise unknown_key(key, known)

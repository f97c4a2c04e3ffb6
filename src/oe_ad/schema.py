"""The config schema and its one validation step: every job's config passes ``validate_config`` before data is read.

Hydra composes the YAML groups as they are; this module then checks the composed config in one place (single
jobs, sweep jobs, vectorised members and searches all call it): types (ints where ints are meant, booleans
written ``true/false``, ``yes/no``, ``on/off`` or ``1/0``), ranges, values still missing (``???``), what the
method needs (an OE pool, or none), and unknown keys. The top-level keys of a job are checked strictly; every
key of a node with a ``_target_`` (``method``, ``net``, ``data``, ``oe``, ``filter``, ``trainer``, ``logger``,
``method.optimizer``) must be a keyword of that target (read from its source by ``classinfo``, without importing
torch or Lightning). Normalised values are written back into the config, so records and config hashes hold
``augment: false`` and the milestones as epochs, never the string ``no`` or a fraction.
``check_command_line`` rejects misspelt and repeated keys and unparsable values before Hydra composes anything.
"""

import difflib
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .classinfo import TargetInfo, target_info
from .data.batch_options import BatchOptions
from .data.npy import checked_indices, npy_header
from .errors import OEADError
from .oe_use import OE_USES, trains_with_oe

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
SEARCH_ALGORITHMS = ("evolution", "random")  # search/job.py: ALGORITHMS
SEARCH_KEYS = (  # conf/search.yaml
    *("algorithm", "direction", "generation_size", "generations", "tournament", "mating", "mutation"),
    *("candidates", "nearest", "evaluations", "seeds", "fitness", "grid"),
)
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})
# Nodes whose keys are keywords of their ``_target_``: (keys the package passes itself -> where they are set,
# keys that are labels and not passed). Another node with a ``_target_`` inside one of them is checked too.
NODES: dict[str, tuple[dict[str, str], frozenset[str]]] = {
    "method": (
        {"net": "the net group (net=...)", "lr": "the top-level lr", "milestones": "the top-level milestones"},
        frozenset({"name"}),
    ),
    "method.optimizer": ({"params": "the method", "lr": "the top-level lr"}, frozenset()),
    "net": ({}, frozenset()),
    "data": ({}, frozenset({"name", "fingerprint"})),  # data.fingerprint: data/fingerprint.py (the data's identity)
    "oe": ({}, frozenset({"name", "fingerprint"})),
    "filter": ({}, frozenset()),
    "trainer": (
        {"logger": "the logger group", "default_root_dir": "the job folder", "callbacks": "oe_ad"},
        frozenset(),
    ),
    "logger": ({"save_dir": "the job folder", "run": "the job"}, frozenset()),
}
# Values inside those nodes that must be integers in a range (key -> (low, null allowed)).
NODE_INTS = {"image_size": (1, True), "workers": (0, False), "max_in_memory": (1, False), "out_dim": (1, False)}
GPU_ACCELERATORS = ("gpu", "cuda")
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


def _check_oe_file(cfg: DictConfig, trains_with_oe: bool) -> None:
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


# -- nodes with a _target_ -----------------------------------------------------------------------------------
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
            _fail(f"{path}.{key}", node._get_node(key)._value(), f"not a key of {path}: it is set by {passed[key]}")
    if info.params is not None:
        allowed = (info.params - passed.keys()) | labels | HYDRA_KEYS
        _strict(node, f"{path}.", allowed)
    for key, (low, null) in NODE_INTS.items():
        if key in node and not OmegaConf.is_missing(node, key):
            node[key] = as_int(f"{path}.{key}", node[key], low=low, null=null)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing() and "_target_" in child:
            _check_node(child, f"{path}.{key}")


def _check_inputs(node: DictConfig, path: str) -> None:
    """The folder or file a data or OE node reads exists, unless the node downloads it there."""
    if node.get("download") or node.get("url"):
        return
    root = node.get("root")
    if root is not None and not Path(str(root)).is_dir():
        _fail(f"{path}.root", root, "no such folder" if not Path(str(root)).exists() else "not a folder")
    file = node.get("path")
    if file is not None and not Path(str(file)).is_file():
        _fail(f"{path}.path", file, "no such file" if not Path(str(file)).exists() else "not a file")


def _method_traits(cfg: DictConfig) -> tuple[str, bool, bool, str]:
    """(oe_use, whether it trains with a configured OE pool as configured, needs_training, name) of the method;
    its OE switch option (Deep SVDD's ``with_oe``) normalised to a bool."""
    info = node_info(cfg.get("method"))
    if info is None:
        return "required", True, True, "?"
    attrs = info.attrs
    oe_use, switch = attrs.get("oe_use", "required"), attrs.get("oe_switch")
    name = str(cfg.method.get("name", cfg.method.get("_target_")))
    if oe_use not in OE_USES:
        raise OEADError(f"{cfg.method._target_}.oe_use={oe_use!r}: must be one of {', '.join(OE_USES)}")
    if switch and switch in cfg.method:
        cfg.method[switch] = as_bool(f"method.{switch}", cfg.method[switch])
    return oe_use, trains_with_oe(oe_use, switch, cfg.method), bool(attrs.get("needs_training", True)), name


def check_searchable(cfg: DictConfig) -> None:
    """A search for single OE images (and its fitness) needs a method that trains with OE and an OE pool."""
    _, method_oe, _, name = _method_traits(cfg)
    if not method_oe:
        raise OEADError(f"method={name} trains without OE: a search for single OE images needs an OE method")
    if not cfg.get("oe"):
        raise OEADError("oe=none: a search for OE images needs an OE pool (e.g. oe=npy oe.path=...)")


def _check_missing(cfg: DictConfig, with_oe: bool) -> None:
    """A value left ``???`` names its full key (and what to give)."""
    for key in sorted(OmegaConf.missing_keys(cfg)):
        if key.startswith("oe.") and not with_oe:
            continue  # the method ignores the pool
        what = "PATH" if key.rpartition(".")[2] in ("root", "path", "file", "dir") else "VALUE"
        raise OEADError(f"{key} is not set: give it on the command line ({key}={what})")


# -- the schedule --------------------------------------------------------------------------------------------
def resolve_milestones(milestones: Any, epochs: int) -> list[int]:
    """The epochs after which the learning rate drops x0.1 (docs/protocol.md, Schedules).

    Integers >= 1 are epochs; fractions 0 < f < 1 are fractions of ``epochs``, each rounded half up to an epoch,
    at least 1 (``[0.5, 0.75]``: ``epochs=200`` -> [100, 150], ``epochs=12`` -> [6, 9], ``epochs=3`` -> [2]);
    fractions that round to the same epoch count once. The two kinds cannot be mixed in one list.
    """
    if milestones is None:
        return []
    if not isinstance(milestones, (list, ListConfig)):
        _fail(
            "milestones",
            milestones,
            "must be a list of epochs, e.g. [100,150], or of fractions of epochs, e.g. [0.5,0.75]",
        )
    epochs_given, fractions = [], []
    for m in milestones:
        if isinstance(m, float) and 0 < m < 1:
            fractions.append(m)
        elif isinstance(m, float) and m > 1 and float(m) != int(m):
            _fail("milestones", m, "neither an epoch (an integer >= 1) nor a fraction of epochs (0 < f < 1)")
        else:
            epochs_given.append(as_int("milestones", m, low=1))
    if fractions and epochs_given:
        _fail("milestones", milestones, "mixes fractions of epochs with epochs: give all as one or the other")
    if fractions:
        if fractions != sorted(set(fractions)):
            _fail("milestones", milestones, "must be increasing")
        resolved = sorted({max(1, math.floor(f * epochs + 0.5)) for f in fractions})
    else:
        resolved = epochs_given
        if resolved != sorted(set(resolved)):
            _fail("milestones", resolved, "must be increasing")
    for m in resolved:
        if m > epochs:
            _fail("milestones", milestones, f"epoch {m} is beyond epochs={epochs} (must be within 1..epochs)")
    return resolved


# -- where the job runs --------------------------------------------------------------------------------------
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
        _fail(key, value, f"{folder} is a file, not a folder: choose another {key}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".oe_ad-write-check-", dir=folder))
    except OSError as e:
        _fail(key, value, f"cannot write in {folder} ({e.strerror or e}): choose a writable paths.output_dir")
    _checked_dirs.add(str(out.absolute()))


def _check_device(trainer: Any) -> None:
    """An explicit GPU request on a machine without one (the only check that imports torch, and only then)."""
    if not isinstance(trainer, DictConfig):
        return
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    if accelerator not in GPU_ACCELERATORS:
        return
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == 0:
        _fail("trainer.accelerator", accelerator, "no GPU is visible to torch: use trainer.accelerator=auto or cpu")
    devices = trainer.get("devices", "auto")
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > visible:
        _fail("trainer.devices", devices, f"only {visible} GPU(s) visible")


def _check_augmentation(cfg: DictConfig) -> None:
    aug = cfg.get("augmentation")
    if aug is None:
        return
    # the datamodule's constructor receives these keys (factory.build_datamodule passes the others)
    taken = {"normal", "oe", "normal_class", "oe_size", "seed", "batch_size", "augment", "benchmark", "batches"}
    taken |= {"normalise", "filter", "clock"}
    params = target_info("oe_ad.data.datamodule.OEDataModule").params or frozenset()
    _strict(aug, "augmentation.", params - taken)
    rules: dict[str, Callable[[str, Any], Any]] = {
        "crop": lambda k, v: as_int(k, v, low=1, null=True),
        "padding": lambda k, v: as_int(k, v, low=0),
        "jitter": lambda k, v: as_float(k, v, low=0.0),
        "noise": lambda k, v: as_float(k, v, low=0.0),
        "flip": as_bool,
    }
    for key, rule in rules.items():
        if key in aug:
            aug[key] = rule(f"augmentation.{key}", aug[key])


def _check_batches(cfg: DictConfig) -> None:
    """The ``batches`` node (data/batch_options.py): its keys and their choices."""
    node = cfg.get("batches")
    if node is None:
        return
    _strict(node, "batches.", [f.name for f in fields(BatchOptions)])
    BatchOptions(**node)  # an unknown choice is a one-line error naming the key


def _check_search(cfg: DictConfig) -> None:
    s = cfg.search
    _strict(s, "search.", SEARCH_KEYS)
    if s.get("algorithm", "evolution") not in SEARCH_ALGORITHMS:
        _fail("search.algorithm", s.algorithm, f"choose from {', '.join(SEARCH_ALGORITHMS)}")
    if s.get("direction", "max") not in ("max", "min"):
        _fail("search.direction", s.direction, "must be 'max' or 'min'")
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
    check_searchable(cfg)


def validate_config(cfg: DictConfig) -> DictConfig:
    """Check one job's composed config and normalise its values in place; raise a one-line ``OEADError``.

    Idempotent: every entry point calls it first, and calling it again changes nothing. Imports neither torch
    nor Lightning (except to look for a GPU that ``trainer.accelerator`` asks for).
    """
    with open_dict(cfg):
        _validate(cfg)
    return cfg


def _validate(cfg: DictConfig) -> None:
    _strict(cfg, "", TOP_LEVEL)
    oe_use, method_oe, trains, name = _method_traits(cfg)
    with_oe = bool(cfg.get("oe")) and method_oe
    _check_missing(cfg, with_oe)
    for path in ("method", "net", "data", "oe", "filter", "trainer", "logger"):
        if isinstance(cfg.get(path), DictConfig) and (path != "oe" or with_oe):
            _check_node(cfg[path], path)
            if path in ("data", "oe"):
                _check_inputs(cfg[path], path)
    cfg.seed = as_int("seed", cfg.get("seed"), low=0)
    n = num_classes(cfg)
    cfg.normal_class = as_int("normal_class", cfg.get("normal_class"), low=0, high=None if n is None else n - 1)
    cfg.oe_size = as_int("oe_size", cfg.get("oe_size"), low=1, null=True)
    if oe_use == "required" and not cfg.get("oe"):
        raise OEADError(
            f"method={name} needs OE but oe=none (it would train on normal images alone): choose an OE source, "
            "e.g. oe=tiny300k or oe=npy oe.path=FILE, or a method without OE (deep_svdd, clip_zero_shot)"
        )
    if oe_use == "none" and method_oe and not cfg.get("oe"):
        raise OEADError(f"method={name} is set to train with OE but oe=none: choose an OE source or turn it off")
    if not method_oe and cfg.oe_size is not None:
        raise OEADError(f"method={name} trains without OE: oe_size={cfg.oe_size} must be null")
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
    cfg.milestones = resolve_milestones(cfg.get("milestones"), cfg.epochs)
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
        _check_search(cfg)
    _check_oe_file(cfg, with_oe)
    if isinstance(cfg.get("paths"), DictConfig) and "output_dir" in cfg.paths and "name" in cfg:
        check_output_dir(cfg)
    _check_device(cfg.get("trainer"))


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


def _check_syntax(line: str) -> None:
    """A value Hydra's override grammar cannot read, in one line that says how to quote it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        OverridesParser.create().parse_overrides([line])
    except OverrideParseException as e:
        prefix, key, value = _override_key(line)
        quoted = f"{prefix}{key}='{value}'"
        if not value.isascii():
            raise OEADError(
                f"{line}: a value with non-ASCII characters must be quoted for Hydra: {quoted} "
                f'(in a shell, quote it once more: "{quoted}")'
            ) from None
        why = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise OEADError(f'{line}: Hydra cannot read this override ({why}); quote the value: "{quoted}"') from None


def check_command_line(
    argv: list[str], config_dir: Path, config_name: str, groups: Iterable[str], user_dirs: Sequence[Path] = ()
) -> None:
    """One-line errors for a value Hydra cannot parse (e.g. non-ASCII, unquoted), a key given twice, an unknown
    key (with the closest valid one, in the package's configs and those of ``user_dirs``, the ``--config-dir``
    folders) and overrides that would move records away from their skip-index. Group choices (``method=nope``)
    are checked by the caller; keys added with ``+`` inside a node are checked by the schema."""
    groups = set(groups)
    overrides = [a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    seen: dict[str, str] = {}
    for line in overrides:
        _check_syntax(line)
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
    if user_dirs:
        first.append(f"hydra.searchpath=[{','.join(f'file://{Path(d).resolve()}' for d in user_dirs)}]")
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

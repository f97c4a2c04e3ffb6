"""What an experiment asks for: its seeds, its classes and the paper's setting, from its composed config.

The reference is the experiment's config as ``make <experiment>`` composes it without ``ARGS``
(``conf/config.yaml``, or ``conf/search.yaml`` for a search, with ``experiment=<stem> method=<method>``):
its sweep (``hydra.sweeper.params``) says how many seeds and normal classes a cell needs to be complete, and its
data, OE set and schedule (:data:`SETTING_KEYS`) are the setting of the paper's numbers in the experiment's
``report.paper``. A record whose config differs in one of these keys was run on something else than the paper's
numbers were, so the report shows no difference to them. Keys the experiment itself sweeps (``augment`` in
Table 6) are its rows or columns, not part of the setting.
"""

import json
import logging
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from omegaconf import OmegaConf

from ..experiments import EXPERIMENT_DIR, experiments
from .records import config_value

log = logging.getLogger(__name__)
# data, OE set and schedule: what must equal the paper's for our numbers to be compared with the paper's
SETTING_KEYS = ("data.name", "oe.name", "benchmark", "epochs", "milestones", "lr", "augment")


@dataclass(frozen=True)
class Expected:
    """One method's part of an experiment: the YAML that sweeps it and what that sweep asks for."""

    stem: str
    method: str
    seeds: int  # seeds the sweep runs per (class, cell)
    classes: int  # normal classes the sweep runs
    setting: dict[str, Any]  # SETTING_KEYS it does not sweep -> the value the paper's numbers were made with


def _compose(config_name: str, overrides: list[str]) -> Any:
    """The composed config (with its ``hydra`` node), also when Hydra is initialised already (inside a job or a
    notebook's own ``initialize``): that state is set aside and restored."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup() if GlobalHydra.instance().is_initialized() else None
    if backup is not None:
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(EXPERIMENT_DIR.parent), version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    finally:
        if backup is not None:
            restore_gh_from_backup(backup)


def _select(cfg: Any, key: str) -> Any:
    """``key`` of a composed config, resolved, as plain data; None where it is absent or does not resolve."""
    try:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    except Exception:  # an interpolation that needs a running job
        return None
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def sweep_values(value: Any) -> list[str]:
    """The values a sweep parameter runs, as text: ``range(0,3)`` -> 0, 1, 2; ``hsc,bce`` -> both; ``0`` -> 0."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    override = OverridesParser.create().parse_override(f"key={value}")
    return list(override.sweep_string_iterator()) if override.is_sweep_override() else [str(override.value())]


def resolve_milestones(milestones: Any, epochs: Any) -> list[int] | None:
    """Milestones as epochs: a fraction of the schedule (a float strictly between 0 and 1) becomes
    ``round(fraction * epochs)``; whole numbers stay. None when missing."""
    if not isinstance(milestones, (list, tuple)):
        return None
    if not all(isinstance(m, (int, float)) and not isinstance(m, bool) for m in milestones):
        return list(milestones)  # not numbers: compared as they are
    out = []
    for m in milestones:
        if isinstance(m, float) and 0 < m < 1 and isinstance(epochs, (int, float)):
            out.append(int(round(m * epochs)))
        else:
            out.append(int(m))
    return out


def setting_of(config: dict[str, Any], keys: tuple[str, ...] = SETTING_KEYS) -> dict[str, Any]:
    """The setting keys of a (record's or composed) config; milestones resolved to epochs; None where absent."""
    out = {k: config_value(config, k) for k in keys}
    if "milestones" in out:
        out["milestones"] = resolve_milestones(out["milestones"], config_value(config, "epochs"))
    return out


@cache
def _experiment(stem: str, method: str | None) -> tuple[Expected, list[str]] | None:
    """(what ``experiment=stem [method=method]`` asks for, the methods it sweeps); None if it does not compose."""
    exp = experiments()[stem]
    overrides = [f"experiment={stem}", *([f"method={method}"] if method else [])]
    try:
        cfg = _compose("search" if exp.kind == "search" else "config", overrides)
    except Exception as e:  # e.g. a method from a user's own config folder: nothing to compare with
        log.warning("warning: %s does not compose (%s): its completeness and setting are not checked", overrides, e)
        return None
    params = OmegaConf.to_container(cfg.hydra.sweeper.params) or {}
    swept = {str(k) for k in params}
    keys = tuple(k for k in SETTING_KEYS if k not in swept)
    config: dict[str, Any] = {}
    for key in (*keys, "epochs", "method.name"):  # resolved one by one: other keys may need a run (${hydra:...})
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _select(cfg, key)
    setting = setting_of(config, keys)
    seeds = len(sweep_values(params["seed"])) if "seed" in params else 1
    classes = len(sweep_values(params["normal_class"])) if "normal_class" in params else 1
    methods = sweep_values(params["method"]) if "method" in params else [config["method"]["name"]]
    return Expected(stem, method or config["method"]["name"], seeds, classes, setting), methods


def expected(name: str, method: str) -> Expected | None:
    """What experiment folder ``name`` asks of ``method``: from the experiment YAML (of those writing into
    ``runs/<name>/``, the main one first) whose sweep runs the method; None when none composes."""
    stems = sorted((e.stem for e in experiments().values() if e.name == name), key=lambda s: s != name)
    for stem in stems:
        found = _experiment(stem, None)
        if found is not None and method in found[1]:
            with_method = _experiment(stem, method)
            return None if with_method is None else with_method[0]
    found = _experiment(stems[0], method) if stems else None
    return None if found is None else found[0]


def label(value: Any) -> str:
    """A setting value as the report prints it: ``[100, 150]``, ``true``, ``0.001``, ``missing``."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _same(ours: Any, paper: Any) -> bool:
    if isinstance(ours, (int, float)) and isinstance(paper, (int, float)) and not isinstance(ours, bool):
        return math.isclose(float(ours), float(paper), rel_tol=1e-9, abs_tol=0.0)
    return ours == paper


def differences(config: dict[str, Any], exp: Expected) -> list[tuple[str, str, str]]:
    """The setting keys in which a record's config differs from the paper's: (key, ours, paper)."""
    ours = setting_of(config, tuple(exp.setting))
    return [(k, label(ours[k]), label(v)) for k, v in exp.setting.items() if ours[k] is None or not _same(ours[k], v)]

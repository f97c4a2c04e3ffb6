"""What an experiment asks for: its seeds, its classes and the paper's setting, from its composed config.

The reference is the experiment's config as ``make <experiment>`` composes it without ``ARGS``
(``conf/config.yaml``, or ``conf/search.yaml`` for a search, with ``experiment=<stem> method=<method>``):
its sweep (``hydra.sweeper.params``) says how many seeds and normal classes a cell needs to be complete, and its
data, OE set and schedule (:data:`SETTING_KEYS`) are its setting. The setting of the paper's numbers is that one
except where the experiment's ``report.deviations`` says the config differs from the paper (the 300K random
images standing in for 80 Million Tiny Images, say): there the paper's value counts. A record whose config
differs from the paper's setting in one of these keys was run on something else than the paper's numbers were,
so the report shows no difference to them. Keys the experiment itself sweeps (``augment`` in Table 6) are its
rows or columns, not part of the setting. OE keys are not compared for a method that trains without OE.
"""

import json
import logging
import math
from dataclasses import dataclass, field
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
    setting: dict[str, Any]  # SETTING_KEYS it does not sweep -> the value the experiment's config runs
    paper: dict[str, Any] = field(default_factory=dict)  # key -> the paper's value where it differs (deviations)
    why: dict[str, str] = field(default_factory=dict)  # key -> why the config keeps its own value
    uses_oe: bool = True  # the method trains with the OE set (OE keys are compared)
    trains: bool = True  # the method trains at all (its schedule keys are compared; not zero-shot CLIP)

    @property
    def paper_setting(self) -> dict[str, Any]:
        """The setting of the paper's numbers: the config's, with the paper's value for each deviation."""
        return {**self.setting, **self.paper}


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
    uses_oe, trains = _traits(cfg)
    found = Expected(stem, method or config["method"]["name"], seeds, classes, setting, uses_oe=uses_oe, trains=trains)
    return found, methods


def _traits(cfg: Any) -> tuple[bool, bool]:
    """(trains with OE, trains at all) of the composed config's method, read from its class without importing it
    (``oe_ad.config.targets``); (True, True) when that cannot be told."""
    from ..config.targets import target_info
    from ..oe_use import trains_with_oe

    try:
        method = OmegaConf.to_container(cfg.method, resolve=False)
        attrs = target_info(str(method["_target_"])).attrs
    except Exception:
        return True, True
    uses = trains_with_oe(attrs.get("oe_use", "required"), attrs.get("oe_switch"), method)
    return bool(uses and cfg.get("oe")), bool(attrs.get("needs_training", True))


def expected(name: str, method: str) -> Expected | None:
    """What experiment folder ``name`` asks of ``method``: from the experiment YAML (of those writing into
    ``runs/<name>/``, the main one first) whose sweep runs the method; None when none composes. The paper's
    setting adds the folder's ``report.deviations`` (keys the experiment sweeps excepted)."""
    stems = sorted((e.stem for e in experiments().values() if e.name == name), key=lambda s: s != name)
    found = None
    for stem in stems:
        runs = _experiment(stem, None)
        if runs is not None and method in runs[1]:
            found = _experiment(stem, method)
            break
    else:
        found = _experiment(stems[0], method) if stems else None
    if found is None:
        return None
    exp, _ = found
    return _with_deviations(exp, name)


def _with_deviations(exp: Expected, name: str) -> Expected:
    from .layout import paper_layouts

    layout = paper_layouts().get(name)
    if layout is None or not layout.deviations:
        return exp
    swept = _swept(exp.stem)
    setting, paper, why = dict(exp.setting), {}, {}
    for d in layout.deviations:
        if d.key in swept:
            continue
        paper[d.key], why[d.key] = d.paper, d.why
        if d.key not in setting:  # a key beyond SETTING_KEYS: compared with the config's own value
            setting[d.key] = _config_value(exp.stem, exp.method, d.key)
    if "milestones" in paper:
        paper["milestones"] = resolve_milestones(paper["milestones"], {**setting, **paper}.get("epochs"))
    return Expected(exp.stem, exp.method, exp.seeds, exp.classes, setting, paper, why, exp.uses_oe, exp.trains)


@cache
def _swept(stem: str) -> frozenset[str]:
    exp = experiments()[stem]
    try:
        cfg = _compose("search" if exp.kind == "search" else "config", [f"experiment={stem}"])
    except Exception:
        return frozenset()
    return frozenset(str(k) for k in (OmegaConf.to_container(cfg.hydra.sweeper.params) or {}))


@cache
def _config_value(stem: str, method: str, key: str) -> Any:
    exp = experiments()[stem]
    cfg = _compose("search" if exp.kind == "search" else "config", [f"experiment={stem}", f"method={method}"])
    return _select(cfg, key)


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


SCHEDULE_KEYS = ("epochs", "milestones", "lr", "augment")


def differences(config: dict[str, Any], exp: Expected, uses_oe: bool = True) -> list[tuple[str, str, str]]:
    """The setting keys in which a record's config differs from the setting of the paper's numbers: (key, ours,
    paper). The OE keys are not compared for a record trained without OE (``uses_oe=False``) or a method that
    uses none, the schedule keys not for a method that does not train (zero-shot CLIP)."""
    target = exp.paper_setting
    ours = setting_of(config, tuple(target))
    keys = [k for k in target if (uses_oe and exp.uses_oe) or not k.startswith("oe.")]
    keys = [k for k in keys if exp.trains or k not in SCHEDULE_KEYS]
    return [(k, label(ours[k]), label(target[k])) for k in keys if ours[k] is None or not _same(ours[k], target[k])]

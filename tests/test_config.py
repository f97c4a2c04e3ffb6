from dataclasses import fields
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from oe_ad.config import CONF_DIR
from oe_ad.config.schema import validate_config
from oe_ad.sweep import expand


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("method", options("method"))
def test_every_method_composes(method):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"method={method}"])
    assert cfg.method.name == method and cfg.method._target_.startswith("oe_ad.methods.")


@pytest.mark.parametrize("group", ["data", "oe", "logger", "net", "trainer"])
def test_every_option_of_every_group_composes(group):
    for option in options(group):
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            compose("config", overrides=[f"{group}={option}"])


def test_defaults_are_the_paper_cifar10_protocol():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = validate_config(compose("config"))  # the milestones, fractions of epochs, resolved to epochs
    assert (cfg.data.name, cfg.method.name, cfg.net._target_) == ("cifar10", "bce", "oe_ad.nets.cnn32.CNN32")
    assert (cfg.epochs, list(cfg.milestones), cfg.lr, cfg.batch_size) == (200, [100, 150], 1e-3, 128)
    assert (cfg.normal_class, cfg.seed, cfg.logger._target_) == (0, 0, "oe_ad.loggers.wandb_logger")


def test_default_sweep_is_10_classes_by_10_seeds_and_the_command_line_narrows_it():
    jobs = expand(["method=bce", "oe_size=256"])
    assert len(jobs) == 100
    assert {j for job in jobs for j in job if j.startswith("normal_class=")} == {f"normal_class={i}" for i in range(10)}
    narrowed = expand(["method=bce", "normal_class=3", "seed=0,1"])
    assert sorted(" ".join(sorted(j)) for j in narrowed) == [
        "method=bce normal_class=3 seed=0",
        "method=bce normal_class=3 seed=1",
    ]


# -- every shipped config passes the schema ---------------------------------------------------------------------
OE_USE = {"bce": "required", "focal": "required", "hsc": "required", "deep_sad": "required", "clip_bce": "required"}
OE_USE |= {"deep_svdd": "none", "clip_zero_shot": "none"}


@pytest.mark.parametrize("method", options("method"))
def test_every_method_passes_the_schema_and_declares_whether_it_needs_oe(method):
    from oe_ad.config.schema import node_info
    from oe_ad.errors import OEADError

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = validate_config(compose("config", overrides=[f"method={method}"]))  # with the default OE pool
        no_oe = compose("config", overrides=[f"method={method}", "oe=none"])
    assert node_info(cfg.method).attrs["oe_use"] == OE_USE[method]
    if OE_USE[method] == "required":
        with pytest.raises(OEADError, match=f"method={method} needs OE but oe=none"):
            validate_config(no_oe)
    else:  # one-class: trains without OE, and a configured pool is ignored
        validate_config(no_oe)


def _fill_missing(cfg, folder: Path) -> None:
    """An existing folder for every value still ``???`` (data.root, oe.root of the ImageNet configs)."""
    from omegaconf import OmegaConf, open_dict

    with open_dict(cfg):
        for key in OmegaConf.missing_keys(cfg):
            OmegaConf.update(cfg, key, str(folder))


@pytest.mark.parametrize("name", options("experiment"))
def test_every_experiment_job_passes_the_schema(name, tmp_path):
    """One job per distinct set of group choices of each experiment's sweep (the swept values vary only seeds,
    classes and sizes within those)."""
    config_name = "search" if "search:" in (CONF_DIR / "experiment" / f"{name}.yaml").read_text() else "config"
    jobs = expand([f"experiment={name}"], config_name)
    groups = ("method", "data", "oe", "net", "filter")
    distinct = {tuple(o for o in job if o.partition("=")[0] in groups): job for job in jobs}
    for job in distinct.values():
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name, overrides=[f"experiment={name}", *job])
        _fill_missing(cfg, tmp_path)
        validate_config(cfg)
        assert all(type(m) is int and 1 <= m <= cfg.epochs for m in cfg.milestones)


def _targets(node, path=""):
    from omegaconf import DictConfig, OmegaConf

    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, str(node._target_)
        for key in node:
            child = node._get_node(key)
            if isinstance(child, DictConfig) and not OmegaConf.is_missing(node, key) and not child._is_none():
                yield from _targets(child, f"{path}.{key}" if path else str(key))


def _live(target: str) -> tuple[frozenset[str] | None, dict]:
    """The keywords and class attributes Python sees: the signatures along the MRO while **kwargs go to a base."""
    import inspect

    from hydra.utils import get_object

    obj = get_object(target)
    if not inspect.isclass(obj):
        params = inspect.signature(obj).parameters.values()
        return (None if any(p.kind is p.VAR_KEYWORD for p in params) else frozenset(p.name for p in params)), {}
    attrs = {k: getattr(obj, k, None) for k in ("oe_use", "needs_training", "normalises_input")}
    names: set[str] = set()
    for i, klass in enumerate(obj.__mro__):
        if i and (klass is object or klass.__module__.startswith(("torch", "pytorch_lightning", "lightning"))):
            break
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return frozenset(names), attrs


def test_the_schema_reads_each_targets_keywords_from_its_source_as_python_sees_them():
    """The static reading of oe_ad.config.targets (no torch import) against the imported class's signatures."""
    from oe_ad.config.targets import target_info

    targets = {"oe_ad.data.datamodule.OEDataModule"}
    for group in ("method", "net", "data", "oe", "filter", "trainer", "logger"):
        for option in options(group):
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                cfg = compose("config", overrides=[f"{group}={option}"])
            targets |= {t for _, t in _targets(cfg)}
    assert len(targets) >= 20
    for target in sorted(targets):
        static, (params, attrs) = target_info(target), _live(target)
        assert static.params is None or static.params == params, target
        for key, value in attrs.items():
            assert static.attrs.get(key, value) == value, (target, key)
    # the static reading gives up (any key) only where Python's signatures take any key too (**kwargs)
    assert [t for t in sorted(targets) if target_info(t).params is None and _live(t)[0] is not None] == []


def test_the_schemas_search_algorithms_are_the_ones_the_search_runs():
    from hydra.utils import get_method

    from oe_ad.config.schema import Search
    from oe_ad.search import ALGORITHMS

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = validate_config(compose("search", overrides=["paths.output_dir=/tmp"]))
    assert set(cfg.search) == {f.name for f in fields(Search)}
    assert all(callable(get_method(path)) for path in ALGORITHMS.values())


def test_the_walk_over_a_config_resolves_nothing_and_the_missing_values_are_named_as_omegaconf_names_them():
    """validate_config looks for ``???`` values with oe_ad.config.schema.nodes, not OmegaConf.missing_keys, which
    resolves every interpolation it passes (about 40 % of a job's validation, benchmarks/check_speed.py)."""
    from omegaconf import OmegaConf

    from oe_ad.config.schema import nodes

    def never(*_):
        raise AssertionError("an interpolation was resolved")

    OmegaConf.register_new_resolver("test_never", never, replace=True)
    cfg = OmegaConf.create(
        {"a": {"b": "???", "c": "${test_never:}", "d": {"e": 1}}, "l": [1, "???", {"f": "???"}], "n": None, "m": "???"}
    )
    walked = {path: child for _, _, path, child in nodes(cfg)}
    assert list(walked) == ["a", "a.b", "a.c", "a.d", "a.d.e", "l", "l.0", "l.1", "l.2", "l.2.f", "n", "m"]
    missing = {parent._get_full_key(key) for parent, key, _, child in nodes(cfg) if child._is_missing()}
    cfg.a.c = 0  # OmegaConf.missing_keys would resolve a.c
    assert missing == OmegaConf.missing_keys(cfg) == {"a.b", "l[1]", "l[2].f", "m"}

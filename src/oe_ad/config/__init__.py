"""Where the package's Hydra configs live, which of their folders are config groups, and the resolvers the
configs use (the config layer: the commands, the schema and the experiment list read it; nothing heavy)."""

import hashlib
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..errors import OEADError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# Config groups a command line chooses from (``method=hsc``, ``search/fitness=vectorised``).
GROUPS = ("method", "data", "oe", "net", "trainer", "logger", "experiment", "launcher", "filter", "search/fitness")


def job_dirname(overrides: str | list, exclude: list | None = None) -> str:
    """A job folder name from its overrides (Hydra's ``override_dirname`` format: sorted ``k=v`` joined by commas),
    without the keys the config hash leaves out (``checkpoint.*``, ``paths.*``, ``threads``, ...) nor those in
    ``exclude`` (Hydra's exclude_keys); one path level, not too long for a file system."""
    from ..job.records import NON_EFFECTIVE_KEYS

    if not isinstance(overrides, str):
        dropped = (*NON_EFFECTIVE_KEYS, *(str(k) for k in exclude or []))
        keys = [(str(o), str(o).lstrip("+~").partition("=")[0]) for o in overrides]
        overrides = ",".join(sorted(o for o, k in keys if not any(k == d or k.startswith(f"{d}.") for d in dropped)))
    name = overrides.replace("/", "_") or "defaults"
    return f"{name[:160]}-{hashlib.sha1(name.encode()).hexdigest()[:12]}" if len(name) > 180 else name


def cpu_share(n_jobs: int) -> int:
    """Torch threads per job when ``n_jobs`` run at once (joblib's n_jobs: -1 = one per core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
    return max(1, cores // parallel)


OmegaConf.register_new_resolver("oe_ad.job_dirname", job_dirname, replace=True)
OmegaConf.register_new_resolver("oe_ad.cpu_share", cpu_share, replace=True)


def composition_error(e: BaseException) -> str:
    """Hydra's multi-line composition errors as one line: ``unknown method 'nope' (choose from: ...)``,
    ``unknown key 'epoch' (did you mean 'epochs'?)``."""
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    from .schema import unknown_key

    if isinstance(e, MissingConfigException) and e.options is not None and e.missing_cfg_file:
        group, _, choice = e.missing_cfg_file.rpartition("/")
        return f"unknown {group} '{choice}' (choose from: {', '.join(e.options)})"
    cause = e.__cause__
    if isinstance(cause, OEADError):  # ours, raised where Hydra instantiates (e.g. a launcher's options)
        return str(cause)
    if isinstance(e, ConfigCompositionException) and isinstance(cause, OmegaConfBaseException) and cause.full_key:
        keys = cause.parent_node.keys() if cause.parent_node is not None else []
        prefix = str(cause.full_key).rpartition(".")[0]
        return str(unknown_key(str(cause.full_key), [f"{prefix}.{k}" if prefix else str(k) for k in keys]))
    return " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or e.__class__.__name__


def compose(overrides: list[str], config_name: str = "config", config_dirs: list | tuple = ()) -> DictConfig:
    """The config Hydra composes from ``overrides`` and the ``config_dirs`` folders (as ``--config-dir``), with its
    ``hydra`` node and ``${hydra:...}`` values resolvable, as a command's job gets it; a composition error is one
    line (:func:`composition_error`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    paths = [f"file://{Path(d).resolve()}" for d in config_dirs]
    extra = [f"hydra.searchpath=[{','.join(paths)}]"] if paths else []
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=[*overrides, *extra], return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise OEADError(composition_error(e)) from None
    HydraConfig.instance().set_config(cfg)
    return cfg


def job_config(full: DictConfig, resolve: bool = False) -> DictConfig:
    """A job's own config from Hydra's full one: a copy without the ``hydra`` node (``resolve``: its values resolved);
    ``${hydra:...}`` values resolve against ``full``."""
    import copy

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    HydraConfig.instance().set_config(full)
    cfg = copy.deepcopy(full)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    if resolve:
        OmegaConf.resolve(cfg)
    return cfg

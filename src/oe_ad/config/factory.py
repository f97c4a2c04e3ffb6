"""Builders: a composed config -> the method, its data sources and the datamodule, the same for every path
(single jobs, vectorised stacks, search fitness, ``predict``)."""

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from ..data.datamodule import Clock, OEDataModule
from ..data.fingerprint import Cache, identify
from ..data.options import Augmentation, BatchOptions
from ..data.pools import OEPool
from ..data.sources import LabelledSource, LoadedSource, NormalSource
from ..errors import OEADError
from .schema import validate_config


def build(spec: dict | DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, but our one-line OEADError is passed through instead of wrapped."""
    try:
        return instantiate(spec, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, OEADError):
            raise e.__cause__ from None
        raise


def _instance_spec(node: DictConfig) -> dict:
    """The resolved node minus ``name`` (a label for records and logs) and ``fingerprint`` (the data's identity,
    data/fingerprint.py): neither is a constructor argument."""
    spec = OmegaConf.to_container(node, resolve=True)
    spec.pop("name", None)
    spec.pop("fingerprint", None)
    return spec


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def uses_oe(cfg: DictConfig) -> bool:
    """Whether this job trains with OE: the method, as configured, wants it and a pool is configured."""
    return bool(cfg.oe) and get_class(cfg.method._target_).trains_with_oe(cfg.method)


def validate(cfg: DictConfig, identify_data: bool = True, schema: bool = True, memory: dict | None = None) -> None:
    """Reject bad or contradictory options before any data is read (the one schema, ``oe_ad.config.schema``;
    ``schema`` False: the config has passed it already), fetch data the config downloads, then identify the data by
    their content (``data.fingerprint``, ``oe.fingerprint``) so that every config hash taken after this names the
    data by what they are (``identify_data=False``: jobs that write nothing, e.g. a search's fitness, whose search
    was identified; ``memory``: fingerprints shared by the jobs of one process)."""
    if schema:
        validate_config(cfg)
    if identify_data:
        reads = [cfg.data, *([cfg.oe] if uses_oe(cfg) else [])]
        for node in reads:  # the source's own download, when its data are missing and it downloads them
            fetch = getattr(get_class(node._target_), "fetch", None)
            if fetch is not None:
                fetch(_instance_spec(node))
        identify(cfg, uses_oe(cfg), Cache(OmegaConf.select(cfg, "paths.cache_dir", default=None), memory))


class SourceCache:
    """Every distinct data / OE config of a process built once (and a labelled dataset decoded once, onto
    ``device`` if given): the search's fitness and the vectorised trainer share their sources through it."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self._cache: dict[str, Any] = {}

    def _get(self, node: DictConfig, wrap) -> Any:
        key = OmegaConf.to_yaml(node, resolve=True)
        if key not in self._cache:
            self._cache[key] = wrap(build(_instance_spec(node)))
        return self._cache[key]

    def normal(self, cfg: DictConfig) -> NormalSource:
        return self._get(cfg.data, lambda s: LoadedSource(s, self.device) if isinstance(s, LabelledSource) else s)

    def oe(self, cfg: DictConfig) -> OEPool:
        return self._get(cfg.oe, lambda p: p)


def build_method(cfg: DictConfig) -> pl.LightningModule:
    """The configured method around its network, at the weights the current RNG state draws."""
    net = build(_instance_spec(cfg.net))
    return build(_instance_spec(cfg.method), net=net, lr=cfg.lr, milestones=list(cfg.milestones), _recursive_=True)


def build_filter(cfg: DictConfig) -> Any:
    """The frequency filter of the ``filter`` node (None: no filter)."""
    return build(cfg.filter) if cfg.get("filter") else None


def build_datamodule(
    cfg: DictConfig, sources: SourceCache | None = None, oe_pool: OEPool | None = None, clock: Clock | None = None
) -> OEDataModule:
    """The job's datamodule, its sources from ``sources`` (a fresh cache: built for this job alone).

    ``oe_pool`` replaces the configured pool (the single-OE search trains on one chosen image).
    """
    sources = sources if sources is not None else SourceCache()
    oe = (oe_pool if oe_pool is not None else sources.oe(cfg)) if uses_oe(cfg) else None
    return OEDataModule(
        sources.normal(cfg),
        oe,
        normal_class=cfg.normal_class,
        oe_size=cfg.oe_size,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        augment=cfg.augment,
        benchmark=cfg.benchmark,
        normalise=not get_class(cfg.method._target_).normalises_input,
        filter=build_filter(cfg),
        clock=clock,
        batches=BatchOptions(**cfg.batches) if cfg.get("batches") else None,
        augmentation=Augmentation(**cfg.augmentation) if cfg.get("augmentation") else None,
    )

"""Which jobs can share one fused step: configs equal except for the per-model keys."""

import json
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

# What may differ between the models of one step: each has its own data stream, OE subset and weights.
PER_MODEL_KEYS = ("seed", "normal_class", "oe_size")


def group_key(cfg: DictConfig) -> str:
    """The job's resolved config without the per-model keys: equal keys train together."""
    spec = OmegaConf.to_container(cfg, resolve=True)
    for key in PER_MODEL_KEYS:
        spec.pop(key, None)
    return json.dumps(spec, sort_keys=True, default=str)


def group(cfgs: Sequence[DictConfig]) -> list[list[int]]:
    """Indices of ``cfgs`` grouped by :func:`group_key`, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(group_key(cfg), []).append(i)
    return list(groups.values())

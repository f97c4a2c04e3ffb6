"""The methods' losses and scores over a leading model axis, from the pure functions in ``losses.py``.

``torch.func.vmap`` maps each single-model function over axis 0, so model m's loss is exactly the function
a single run evaluates on its own output; the per-model Deep SVDD centre is mapped alongside.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn
from torch.func import vmap

from .. import losses
from ..errors import OEADError
from ..methods.bce import BCE
from ..methods.deep_sad import DeepSAD
from ..methods.deep_svdd import DeepSVDD
from ..methods.focal import Focal
from ..methods.hsc import HSC


@dataclass
class Objective:
    """``loss(out (M, N, ...), is_normal (N,)) -> (M,)`` and ``score(out) -> (M, N)``."""

    loss: Callable[[Tensor, Tensor], Tensor]
    score: Callable[[Tensor], Tensor]
    head: bool  # whether the network ends in a one-logit head (BCE, Focal)


def _svdd(methods: Sequence[DeepSVDD]) -> Objective:
    centers = torch.stack([m.center for m in methods])

    def loss(out: Tensor, is_normal: Tensor) -> Tensor:
        # Deep SVDD trains on normal-only batches, so out[is_normal] in the single method is all of out.
        return vmap(losses.deep_svdd_loss)(out, centers.to(out.device))

    return Objective(loss, lambda out: vmap(losses.squared_distance)(out, centers.to(out.device)), head=False)


def objective(methods: Sequence[nn.Module]) -> Objective:
    """The batched objective of M instances of one method (Deep SVDD instances carry their centres)."""
    first = methods[0]
    kind = type(first)
    if any(type(m) is not kind for m in methods):
        raise OEADError("launcher=vectorised: a group of models must all use the same method")
    ident = lambda out: out  # the anomaly logit is the score (see methods/bce.py)
    if kind is Focal:
        return Objective(vmap(partial(losses.focal_loss, gamma=first.gamma), in_dims=(0, None)), ident, head=True)
    if kind is BCE:
        return Objective(vmap(losses.bce_loss, in_dims=(0, None)), ident, head=True)
    if kind is HSC:
        radial = first.radial
        return Objective(
            vmap(partial(losses.hsc_loss, radial=radial), in_dims=(0, None)),
            vmap(partial(losses.hsc_distance, radial=radial)),
            head=False,
        )
    if kind is DeepSAD:
        return Objective(vmap(losses.deep_sad_loss, in_dims=(0, None)), vmap(losses.squared_distance), head=False)
    if kind is DeepSVDD:
        return _svdd(methods)
    raise OEADError(
        f"launcher=vectorised does not support method {kind.__name__} (bce, focal, hsc, deep_sad, deep_svdd)"
    )

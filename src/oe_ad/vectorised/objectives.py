"""The methods' losses and scores over a leading model axis, from the pure functions in ``losses.py``.

Each single-model function is applied to model m's slice of axis 0 in turn: the very call a single run makes
on its own output, so the rounding is identical too (``torch.func.vmap`` rounds differently, and training
amplified that to 1e-3 loss differences after ~100 steps). The loop is over M <= a few hundred models, cheap
next to the step; the per-model Deep SVDD centre goes alongside.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from .. import losses
from ..errors import OEADError
from ..methods.bce import BCE
from ..methods.deep_sad import DeepSAD
from ..methods.deep_svdd import DeepSVDD
from ..methods.focal import Focal
from ..methods.hsc import HSC


def per_model(fn: Callable[..., Tensor], shared: int = 0) -> Callable[..., Tensor]:
    """``fn`` over axis 0 of its leading arguments; the last ``shared`` arguments are the same for every model."""

    def mapped(*args: Tensor) -> Tensor:
        split, common = args[: len(args) - shared], args[len(args) - shared :]
        return torch.stack([fn(*parts, *common) for parts in zip(*split, strict=True)])

    return mapped


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
        return per_model(losses.deep_svdd_loss)(out, centers.to(out.device))

    return Objective(loss, lambda out: per_model(losses.squared_distance)(out, centers.to(out.device)), head=False)


def objective(methods: Sequence[nn.Module]) -> Objective:
    """The batched objective of M instances of one method (Deep SVDD instances carry their centres)."""
    first = methods[0]
    kind = type(first)
    if any(type(m) is not kind for m in methods):
        raise OEADError("launcher=vectorised: a group of models must all use the same method")
    ident = lambda out: out  # the anomaly logit is the score (see methods/bce.py)
    if kind is Focal:
        return Objective(per_model(partial(losses.focal_loss, gamma=first.gamma), shared=1), ident, head=True)
    if kind is BCE:
        return Objective(per_model(losses.bce_loss, shared=1), ident, head=True)
    if kind is HSC:
        radial = first.radial
        return Objective(
            per_model(partial(losses.hsc_loss, radial=radial), shared=1),
            per_model(partial(losses.hsc_distance, radial=radial)),
            head=False,
        )
    if kind is DeepSAD:
        return Objective(per_model(losses.deep_sad_loss, shared=1), per_model(losses.squared_distance), head=False)
    if kind is DeepSVDD:
        return _svdd(methods)
    raise OEADError(
        f"launcher=vectorised does not support method {kind.__name__} (bce, focal, hsc, deep_sad, deep_svdd)"
    )

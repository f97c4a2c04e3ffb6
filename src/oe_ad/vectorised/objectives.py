"""The objective of a stack: each member method's own ``loss`` and ``score``, applied to its slice of the
leading model axis.

The very call a single run makes on its own output, so the rounding is identical too (``torch.func.vmap``
rounds differently, and training amplified that to 1e-3 loss differences after ~100 steps). The loop is over
M <= a few hundred models, cheap next to the step. A method's state (e.g. the Deep SVDD centre) stays on the
method, which must sit on the stack's device.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import OEADError
from ..methods.base import AnomalyDetector


@dataclass
class Objective:
    """``loss(out (M, N, ...), is_normal (N,)) -> (M,)`` and ``score(out) -> (M, N)`` of M member methods."""

    methods: Sequence[AnomalyDetector]

    def __post_init__(self) -> None:
        kind = type(self.methods[0])
        if any(type(m) is not kind for m in self.methods):
            raise OEADError("launcher=vectorised: a group of models must all use the same method")

    @property
    def head(self) -> bool:
        """Whether the network ends in a one-logit linear head (BCE, Focal): the stack then has one too."""
        return "head.weight" in self.methods[0].state_dict()

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        return torch.stack([m.loss(o, is_normal) for m, o in zip(self.methods, out, strict=True)])

    def score(self, out: Tensor) -> Tensor:
        return torch.stack([m.score(o) for m, o in zip(self.methods, out, strict=True)])


def objective(methods: Sequence[AnomalyDetector]) -> Objective:
    """The batched objective of M instances of one method."""
    return Objective(list(methods))

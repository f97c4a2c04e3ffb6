"""Hypersphere classifier (unsupervised OE) with a choice of radial function."""

from torch import Tensor, nn

from ..errors import OEADError
from .base import AnomalyDetector
from .losses import RADIAL, hsc_distance, hsc_loss


class HSC(AnomalyDetector):
    def __init__(self, net: nn.Module, radial: str = "pseudo_huber", **kwargs) -> None:
        if radial not in RADIAL:
            raise OEADError(f"method.radial={radial}: must be one of {sorted(RADIAL)}")
        super().__init__(net, **kwargs)
        self.radial = radial

    @property
    def score_scale(self) -> str:
        return f"h(phi(x)), the hypersphere classifier's distance with radial function {self.radial} (>= 0)"

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        return hsc_loss(out, is_normal, self.radial)

    def score(self, out: Tensor) -> Tensor:
        return hsc_distance(out, self.radial)

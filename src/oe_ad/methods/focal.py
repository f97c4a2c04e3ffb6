"""Focal loss (supervised OE); gamma = 0 is BCE."""

from torch import Tensor, nn

from .bce import BCE
from .losses import focal_loss


class Focal(BCE):
    def __init__(self, net: nn.Module, gamma: float = 2.0, **kwargs) -> None:
        super().__init__(net, **kwargs)
        self.gamma = gamma

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        return focal_loss(out, is_normal, self.gamma)

"""A method defined outside the package (tests/toy_conf/method/toy.yaml): a margin loss on the squared norm."""

import torch
from torch import Tensor

from oe_ad.methods.base import AnomalyDetector


class MarginNorm(AnomalyDetector):
    """Normal features pulled to 0, OE features pushed beyond ``margin`` (score: the squared norm)."""

    def __init__(self, net, margin: float = 4.0, **kwargs) -> None:
        super().__init__(net, **kwargs)
        self.margin = margin

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        d = self.score(out)
        return torch.where(is_normal, d, torch.relu(self.margin - d)).mean()

    def score(self, out: Tensor) -> Tensor:
        return (out**2).sum(1)

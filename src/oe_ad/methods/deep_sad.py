"""Deep SAD (unsupervised OE) with centre c = 0 and no autoencoder pretraining, as in the paper's code."""

from torch import Tensor

from .base import AnomalyDetector
from .losses import deep_sad_loss, squared_distance


class DeepSAD(AnomalyDetector):
    score_scale = "the squared distance ||phi(x)||^2 of the feature to the centre 0 (>= 0)"

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        return deep_sad_loss(out, is_normal)

    def score(self, out: Tensor) -> Tensor:
        return squared_distance(out)

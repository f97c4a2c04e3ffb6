"""BCE (supervised OE): a linear head on phi(x) gives the anomaly logit."""

from torch import Tensor, nn

from .base import AnomalyDetector
from .losses import bce_loss


class BCE(AnomalyDetector):
    score_scale = "the anomaly logit: log-odds that the image is anomalous (0 = even odds)"

    def __init__(self, net: nn.Module, **kwargs) -> None:
        super().__init__(net, **kwargs)
        self.head = nn.Linear(net.out_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.net(x)).squeeze(1)

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        return bce_loss(out, is_normal)

    def score(self, out: Tensor) -> Tensor:
        # The logit itself: the same ranking as sigmoid(logit), without float saturation ties.
        return out

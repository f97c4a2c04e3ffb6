"""Deep SVDD (one-class, no OE): centre = mean initial feature of the normal training data."""

from typing import Any

import torch
from torch import Tensor, nn

from ..losses import deep_svdd_loss, squared_distance, svdd_center
from .base import AnomalyDetector


class DeepSVDD(AnomalyDetector):
    oe_use = "none"  # normal images only; a configured OE pool is ignored

    def __init__(self, net: nn.Module, net_bias: bool = False, **kwargs) -> None:
        """``net_bias``: read by the net config (net/cnn32.yaml), not here: False asks for the bias-free CNN32."""
        super().__init__(net, **kwargs)
        # Buffers, so a checkpoint carries the centre and a resumed run does not recompute it.
        self.register_buffer("center", torch.zeros(net.out_dim))
        self.register_buffer("center_ready", torch.tensor(False))

    @torch.no_grad()
    def prepare_fit(self, datamodule: Any) -> None:
        """The centre from the initial network on the normal training data (kept when resuming)."""
        if bool(self.center_ready):
            return
        was_training = self.training
        self.eval()
        feats = torch.cat([self(x) for x, _ in datamodule.normal_batches()])
        self.center.copy_(svdd_center(feats))
        self.center_ready.fill_(True)
        self.train(was_training)

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        return deep_svdd_loss(out[is_normal], self.center)  # OE, if any, is ignored

    def score(self, out: Tensor) -> Tensor:
        return squared_distance(out, self.center)

"""Deep SVDD (one-class): centre = mean initial feature of the normal training data; loss = mean ||z - c||^2."""

import torch
from torch import Tensor, nn

from .base import AnomalyDetector, Facts
from .losses import deep_svdd_loss, squared_distance, svdd_center


class DeepSVDD(AnomalyDetector):
    oe_use = "none"  # normal images only; a configured OE pool is ignored unless with_oe
    oe_switch = "with_oe"
    score_scale = "the squared distance ||phi(x) - c||^2 of the feature to the centre c (>= 0)"

    def __init__(self, net: nn.Module, net_bias: bool = False, with_oe: bool = False, **kwargs) -> None:
        """``net_bias``: read by the net config (net/cnn32.yaml), not here: False asks for the bias-free CNN32.
        ``with_oe``: train as the paper's code does when given OE (training/dsvdd.py): OE images in every batch
        (BatchNorm sees them) and pulled to the centre with the normal ones, the loss a mean over the whole
        batch. Off (default): one-class, batches of normal images only (docs/fidelity.md, Deep SVDD)."""
        super().__init__(net, **kwargs)
        self.with_oe = bool(with_oe)
        # Buffers, so a checkpoint or model.pt carries the centre and a resumed run does not recompute it.
        self.register_buffer("center", torch.zeros(net.out_dim))
        self.register_buffer("center_ready", torch.tensor(False))

    @torch.no_grad()
    def prepare(self, facts: Facts) -> None:
        """The centre: the mean feature of the initial network over the normal training data, with BatchNorm on
        each batch's own statistics as in training (the paper's code computes it in train mode too; in eval mode
        the untouched running statistics, mean 0 and variance 1, would shrink every feature below the 0.1 floor
        and make the centre 0.1 * sign). The pass leaves the running statistics as they were."""
        if bool(self.center_ready) or facts.normal_batches is None:  # resumed, or loaded with its weights
            return
        running = {k: v.clone() for k, v in self.state_dict().items() if ".running_" in k or "num_batches" in k}
        was_training = self.training
        self.train()
        feats = torch.cat([self(x) for x, _ in facts.normal_batches()])
        self.load_state_dict(running, strict=False)
        self.train(was_training)
        self.center.copy_(svdd_center(feats))
        self.center_ready.fill_(True)

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        if self.with_oe:  # the paper's code with OE: every image of the batch, normal or OE, towards the centre
            return deep_svdd_loss(out, self.center)
        return deep_svdd_loss(out[is_normal], self.center)  # OE, if any, is ignored

    def score(self, out: Tensor) -> Tensor:
        return squared_distance(out, self.center)

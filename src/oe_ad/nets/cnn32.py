"""CNN32: the 32x32 network of Deep SAD and of the paper's CIFAR-10 experiments (docs/methods.md, Networks).

The default is the network the official runs train: conv/linear layers with biases, affine BatchNorm
(eps 1e-4) and PyTorch's default initialisation. The official constructor writes a Xavier-normal init,
but its trainer resets every layer's parameters before training, so that init never reaches a run
(see docs/fidelity.md). ``bias=False`` gives the bias-free, non-affine variant that Deep SVDD needs:
a bias lets it map everything onto the centre (Ruff et al., 2018).
"""

import math

import torch.nn.functional as F
from torch import Tensor, nn

INITS = ("default", "xavier")


class CNN32(nn.Module):
    def __init__(self, out_dim: int = 256, bias: bool = True, init: str = "default") -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"net.init={init}: must be one of {list(INITS)}")
        self.out_dim = out_dim
        self.bias = bias
        chans = [3, 32, 64, 128]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 5, padding=2, bias=bias) for a, b in zip(chans, chans[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b, eps=1e-4, affine=bias) for b in chans[1:])
        self.fc1 = nn.Linear(128 * 4 * 4, 512, bias=bias)
        self.bn1 = nn.BatchNorm1d(512, eps=1e-4, affine=bias)
        self.fc2 = nn.Linear(512, out_dim, bias=bias)
        if init == "xavier":  # what the official constructor writes (diagnostics only: it is reset there)
            gain = nn.init.calculate_gain("leaky_relu")
            for layer in [*self.convs, self.fc1]:
                nn.init.xavier_normal_(layer.weight, gain=gain)
            nn.init.xavier_normal_(self.fc2.weight)

    def forward(self, x: Tensor) -> Tensor:
        for conv, bn in zip(self.convs, self.bns):
            x = F.max_pool2d(F.leaky_relu(bn(conv(x))), 2)
        x = F.leaky_relu(self.bn1(self.fc1(x.flatten(1))))
        return self.fc2(x)


def default_weight_std(layer: nn.Conv2d | nn.Linear) -> float:
    """Std of PyTorch's default weight init, kaiming-uniform with a=sqrt(5): U(+-1/sqrt(fan_in)) -> 1/sqrt(3 fan_in)."""
    fan_in = layer.weight[0].numel()
    return 1.0 / math.sqrt(3 * fan_in)

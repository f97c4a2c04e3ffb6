"""CNN32: the 32x32 network of Deep SAD / the paper (docs/methods.md, Networks).

Bias-free layers and BatchNorm without affine parameters, as in the reference implementation, so
that Deep SVDD cannot collapse to a constant output.
"""

import torch.nn.functional as F
from torch import Tensor, nn


class CNN32(nn.Module):
    def __init__(self, out_dim: int = 256) -> None:
        super().__init__()
        self.out_dim = out_dim
        chans = [3, 32, 64, 128]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 5, padding=2, bias=False) for a, b in zip(chans, chans[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b, eps=1e-4, affine=False) for b in chans[1:])
        self.fc1 = nn.Linear(128 * 4 * 4, 512, bias=False)
        self.bn1 = nn.BatchNorm1d(512, eps=1e-4, affine=False)
        self.fc2 = nn.Linear(512, out_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        for conv, bn in zip(self.convs, self.bns):
            x = F.max_pool2d(F.leaky_relu(bn(conv(x))), 2)
        x = F.leaky_relu(self.bn1(self.fc1(x.flatten(1))))
        return self.fc2(x)

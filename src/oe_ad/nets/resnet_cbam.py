"""ResNet-18 with CBAM attention, the 224x224 net of the ImageNet-30 / MVTec-AD runs (docs/methods.md, Networks).

As in Hendrycks et al.'s ss-ood ImageNet experiments: BasicBlocks in layers [2, 2, 2, 2], each block's
residual branch refined by CBAM (channel attention, then spatial attention) before the skip connection;
a 7x7 stride-2 stem with max-pooling; global average pooling; trained from scratch from PyTorch's
default initialisation (what the paper's runs effectively use). A final linear layer
maps the 512 pooled features to ``out_dim`` (256), the feature space every end-to-end method works in.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChannelAttention(nn.Module):
    """Per-channel gate: a shared MLP on the average- and max-pooled descriptors, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: Tensor) -> Tensor:
        gate = self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3)))
        return x * torch.sigmoid(gate)[:, :, None, None]


class SpatialAttention(nn.Module):
    """Per-pixel gate: a 7x7 conv over the channel-wise max and mean maps, batch-normalised, sigmoid."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, momentum=0.01)  # the paper's code (after ss-ood) uses momentum 0.01 here

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm, CBAM on the residual branch, projection shortcut when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.cbam = nn.Sequential(ChannelAttention(out_ch), SpatialAttention())
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.cbam(self.bn2(self.conv2(out)))
        return F.relu(out + self.shortcut(x), inplace=True)


class ResNet18CBAM(nn.Module):
    """(N, 3, H, W) -> (N, out_dim); any H, W >= 32 (224 in the paper)."""

    def __init__(self, out_dim: int = 256, blocks: tuple[int, ...] = (2, 2, 2, 2)) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
        )
        layers, in_ch = [], 64
        for i, n in enumerate(blocks):
            out_ch = 64 * 2**i
            for j in range(n):
                layers.append(BasicBlock(in_ch, out_ch, stride=2 if i > 0 and j == 0 else 1))
                in_ch = out_ch
        self.layers = nn.Sequential(*layers)
        # PyTorch's default init everywhere: the paper's trainer resets every layer before training, which
        # replaces the Kaiming-normal init its constructor writes (docs/fidelity.md)
        self.fc = nn.Linear(in_ch, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.layers(self.stem(x)).mean((2, 3)))

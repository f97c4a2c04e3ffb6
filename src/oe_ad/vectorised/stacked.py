"""M CNN32 networks as one: grouped convolutions, per-model BatchNorm channels, batched linear layers.

Model m owns conv output channels ``[m * C, (m + 1) * C)`` of every layer, its own BatchNorm channels (the
statistics are per channel, so per model) and slice ``m`` of every linear weight. Input and output carry a
leading model axis: ``(M, N, 3, H, W) -> (M, N, D)``. A grouped convolution, unlike ``vmap`` over
``functional_call``, keeps BatchNorm running statistics as ordinary buffers updated in place.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import OEADError
from ..nets.cnn32 import CNN32
from . import CONV_MODES

CHANNELS = (3, 32, 64, 128)
KERNEL = 5
EPS = 1e-4  # CNN32's BatchNorm eps
MOMENTUM = 0.1  # BatchNorm's default


class StackedCNN32(nn.Module):
    """``models`` CNN32 networks (optionally each with a BCE head: a linear layer with bias to one logit).

    ``bias``: as CNN32's, layer biases and affine BatchNorm (False: the bias-free Deep SVDD network).
    """

    def __init__(
        self, models: int, out_dim: int = 256, head: bool = False, conv: str = "auto", bias: bool = True
    ) -> None:
        super().__init__()
        if conv not in CONV_MODES:
            raise OEADError(f"conv={conv}: must be one of {CONV_MODES}")
        self.models, self.out_dim, self.has_head, self.conv, self.bias = models, out_dim, head, conv, bias
        self.convs = nn.ParameterList(
            nn.Parameter(torch.empty(models * b, a, KERNEL, KERNEL)) for a, b in zip(CHANNELS, CHANNELS[1:])
        )
        for i, c in enumerate((*CHANNELS[1:], 512)):
            self.register_buffer(f"bn{i}_mean", torch.zeros(models * c))
            self.register_buffer(f"bn{i}_var", torch.ones(models * c))
        self.fc1 = nn.Parameter(torch.empty(models, 512, CHANNELS[-1] * 4 * 4))
        self.fc2 = nn.Parameter(torch.empty(models, out_dim, 512))

        # biases (conv, fc1, fc2) and BatchNorm scale/shift per model; None without them
        def per_channel(widths: tuple[int, ...]) -> nn.ParameterList | None:
            return nn.ParameterList(nn.Parameter(torch.empty(models * c)) for c in widths) if bias else None

        self.conv_biases = per_channel(CHANNELS[1:])
        self.bn_weights = per_channel((*CHANNELS[1:], 512))
        self.bn_biases = per_channel((*CHANNELS[1:], 512))
        self.fc1_bias = nn.Parameter(torch.empty(models, 512)) if bias else None
        self.fc2_bias = nn.Parameter(torch.empty(models, out_dim)) if bias else None
        if head:
            self.head_weight = nn.Parameter(torch.empty(models, 1, out_dim))
            self.head_bias = nn.Parameter(torch.empty(models, 1))

    def _bn(self, x: Tensor, i: int) -> Tensor:
        mean, var = getattr(self, f"bn{i}_mean"), getattr(self, f"bn{i}_var")
        w, b = (self.bn_weights[i], self.bn_biases[i]) if self.bias else (None, None)
        return F.batch_norm(x, mean, var, w, b, training=self.training, momentum=MOMENTUM, eps=EPS)

    def _conv_bias(self, i: int, m: int | None = None, c: int = 0) -> Tensor | None:
        """Conv layer i's bias: all models' (m None) or model m's channels."""
        if not self.bias:
            return None
        return self.conv_biases[i] if m is None else self.conv_biases[i][m * c : (m + 1) * c]

    def forward(self, x: Tensor) -> Tensor:
        """(M, N, 3, H, W) -> features (M, N, out_dim), or logits (M, N) with a head."""
        mode = self.conv if self.conv != "auto" else ("split" if x.device.type == "cpu" else "grouped")
        if mode == "split":
            return torch.stack([self._forward_one(m, x[m]) for m in range(self.models)])
        m, n = x.shape[:2]
        x = x.transpose(0, 1).reshape(n, m * x.shape[2], *x.shape[3:])  # model m's images in channels m*3..m*3+2
        for i, w in enumerate(self.convs):
            conv = F.conv2d(x, w, self._conv_bias(i), padding=KERNEL // 2, groups=m)
            x = F.max_pool2d(F.leaky_relu(self._bn(conv, i)), 2)
        x = x.reshape(n, m, -1)  # per model the (C, H, W) flattening of CNN32
        x = torch.einsum("nmi,moi->nmo", x, self.fc1)
        if self.bias:
            x = x + self.fc1_bias
        x = F.leaky_relu(self._bn(x.reshape(n, -1), 3)).reshape(n, m, -1)
        x = torch.einsum("nmi,moi->mno", x, self.fc2)
        if self.bias:
            x = x + self.fc2_bias[:, None, :]
        if self.has_head:
            return torch.einsum("mni,moi->mno", x, self.head_weight).squeeze(2) + self.head_bias
        return x

    def _forward_one(self, m: int, x: Tensor) -> Tensor:
        """Model m alone, on slices of the stacked tensors (the running statistics update in place)."""

        def bn(x: Tensor, i: int, c: int) -> Tensor:
            mean, var = (getattr(self, f"bn{i}_{s}")[m * c : (m + 1) * c] for s in ("mean", "var"))
            w, b = (
                (self.bn_weights[i][m * c : (m + 1) * c], self.bn_biases[i][m * c : (m + 1) * c])
                if self.bias
                else (None, None)
            )
            return F.batch_norm(x, mean, var, w, b, training=self.training, momentum=MOMENTUM, eps=EPS)

        for i, (w, c) in enumerate(zip(self.convs, CHANNELS[1:])):
            conv = F.conv2d(x, w[m * c : (m + 1) * c], self._conv_bias(i, m, c), padding=KERNEL // 2)
            x = F.max_pool2d(F.leaky_relu(bn(conv, i, c)), 2)
        fc1_b, fc2_b = (self.fc1_bias[m], self.fc2_bias[m]) if self.bias else (None, None)
        x = F.leaky_relu(bn(F.linear(x.flatten(1), self.fc1[m], fc1_b), 3, 512))
        x = F.linear(x, self.fc2[m], fc2_b)
        if self.has_head:
            return F.linear(x, self.head_weight[m], self.head_bias[m]).squeeze(1)
        return x

    # -- moving single models in and out -------------------------------------------------------------
    def slots(self, m: int) -> list[tuple[Tensor, tuple, str]]:
        """(stacked tensor, the index of model m's part of it, the matching name in a single method's state
        dict), for every parameter and buffer of model m."""
        per_channel = tuple(zip((*CHANNELS[1:], 512), ("bns.0", "bns.1", "bns.2", "bn1")))

        def rows(c: int) -> tuple:
            return (slice(m * c, (m + 1) * c),)

        out = [(w, rows(c), f"net.convs.{i}.weight") for i, (w, c) in enumerate(zip(self.convs, CHANNELS[1:]))]
        out += [
            (getattr(self, f"bn{i}_{s}"), rows(c), f"net.{bn}.running_{s}")
            for i, (c, bn) in enumerate(per_channel)
            for s in ("mean", "var")
        ]
        out += [(self.fc1, (m,), "net.fc1.weight"), (self.fc2, (m,), "net.fc2.weight")]
        if self.bias:
            out += [(b, rows(c), f"net.convs.{i}.bias") for i, (b, c) in enumerate(zip(self.conv_biases, CHANNELS[1:]))]
            out += [
                (p[i], rows(c), f"net.{bn}.{name}")
                for i, (c, bn) in enumerate(per_channel)
                for p, name in ((self.bn_weights, "weight"), (self.bn_biases, "bias"))
            ]
            out += [(self.fc1_bias, (m,), "net.fc1.bias"), (self.fc2_bias, (m,), "net.fc2.bias")]
        if self.has_head:
            out += [(self.head_weight, (m,), "head.weight"), (self.head_bias, (m,), "head.bias")]
        return out

    @torch.no_grad()
    def load_model(self, m: int, method: nn.Module) -> None:
        """Copy a single method's CNN32 (and head) into slot ``m``."""
        state = method.state_dict()
        for tensor, index, key in self.slots(m):
            tensor[index].copy_(state[key])

    @torch.no_grad()
    def export_model(self, m: int, method: nn.Module) -> None:
        """Copy slot ``m`` back into a single method (e.g. to save or inspect one model)."""
        state = method.state_dict()
        for tensor, index, key in self.slots(m):
            state[key].copy_(tensor[index])


def check_net(method: nn.Module) -> int:
    """The out_dim of a method's CNN32; a one-line error for any other network."""
    net = getattr(method, "net", None)
    if type(net) is not CNN32:
        raise OEADError(f"launcher=vectorised trains net=cnn32 only, not {type(net).__name__}")
    return net.out_dim


def stack_for(methods: list[nn.Module], head: bool) -> StackedCNN32:
    """An empty stack shaped like the methods' CNN32 (out_dim, biases); load_model fills each slot."""
    out_dim, bias = check_net(methods[0]), methods[0].net.bias
    if any(check_net(m) != out_dim or m.net.bias != bias for m in methods):
        raise OEADError("launcher=vectorised: the stacked jobs must share net.out_dim and net.bias")
    return StackedCNN32(len(methods), out_dim, head=head, bias=bias)

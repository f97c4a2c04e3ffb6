"""Per-method losses and anomaly scores as pure functions (equations in docs/methods.md).

Convention: ``is_normal`` is a bool tensor (True = normal training image, False = OE image);
a larger score means more anomalous.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-9


def bce_loss(logits: Tensor, is_normal: Tensor) -> Tensor:
    """Binary cross-entropy of the anomaly logit (target 1 = OE/anomalous)."""
    return F.binary_cross_entropy_with_logits(logits, (~is_normal).float())


def focal_loss(logits: Tensor, is_normal: Tensor, gamma: float = 2.0) -> Tensor:
    """Focal loss as in the paper's code: p_t = exp(-BCE) clamped, loss = (1 - p_t)^gamma * BCE.

    gamma = 0 is BCE; alpha = 0.5 on balanced batches only scales the loss, so it is left out.
    """
    bce = F.binary_cross_entropy_with_logits(logits, (~is_normal).float(), reduction="none")
    p_t = torch.exp(-bce).clamp(1e-7, 1 - 1e-7)
    return ((1 - p_t) ** gamma * bce).mean()


def _pseudo_huber(z: Tensor) -> Tensor:
    return torch.sqrt((z**2).sum(1) + 1) - 1


RADIAL = {
    "l1": lambda z: z.abs().sum(1),
    "l2": lambda z: z.norm(dim=1),
    "l2_squared": lambda z: (z**2).sum(1),
    "pseudo_huber": _pseudo_huber,
}


def hsc_distance(features: Tensor, radial: str = "pseudo_huber") -> Tensor:
    """h(phi(x)) of the hypersphere classifier; also its anomaly score."""
    return RADIAL[radial](features)


def hsc_loss(features: Tensor, is_normal: Tensor, radial: str = "pseudo_huber") -> Tensor:
    """HSC: normal h(z); OE -log(1 - exp(-h(z)) + eps)  (radial function l(z) = exp(-h(z)))."""
    h = hsc_distance(features, radial)
    return torch.where(is_normal, h, -torch.log(1 - torch.exp(-h) + EPS)).mean()


def squared_distance(features: Tensor, center: Tensor | float = 0.0) -> Tensor:
    """||phi(x) - c||^2: the Deep SAD / Deep SVDD anomaly score."""
    return ((features - center) ** 2).sum(1)


def deep_sad_loss(features: Tensor, is_normal: Tensor, center: Tensor | float = 0.0) -> Tensor:
    """Deep SAD: normal ||z - c||^2; OE 1 / (||z - c||^2 + eps)."""
    d = squared_distance(features, center)
    return torch.where(is_normal, d, 1 / (d + EPS)).mean()


def deep_svdd_loss(features: Tensor, center: Tensor) -> Tensor:
    """Deep SVDD (one-class): mean ||z - c||^2 over normal samples."""
    return squared_distance(features, center).mean()


def svdd_center(features: Tensor, min_abs: float = 0.1) -> Tensor:
    """Mean feature, with entries |c_i| < min_abs pushed to +-min_abs (avoids trivial zero weights)."""
    c = features.mean(0)
    small = c.abs() < min_abs
    sign = torch.where(c < 0, -1.0, 1.0).to(c)
    return torch.where(small, sign * min_abs, c)

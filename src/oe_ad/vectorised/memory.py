"""How many stacked models fit: bytes one model needs for a training step vs free device memory."""

import math

import psutil
import torch

from ..errors import OEADError
from .stacked import StackedCNN32

GIB = 2**30


def step_bytes(batch: int, image_size: int = 32, out_dim: int = 256, head: bool = True) -> int:
    """Bytes one model adds to a training step: weights, gradients and Adam's two moments, the tensors
    autograd keeps for the backward pass (measured on the meta device, so nothing is computed), and the
    float input batch with its augmentation temporaries."""
    net = StackedCNN32(1, out_dim, head).to("meta")
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    x = torch.empty(1, batch, 3, image_size, image_size, device="meta", requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    images = 4 * x.numel() * 4  # float batch + ~3 augmentation temporaries
    return 4 * weights + saved + images


def free_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's free memory, or the host's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def models_per_step(per_model: int, device: torch.device, fraction: float = 0.8, free: int | None = None) -> int:
    """The largest M whose step fits in ``fraction`` of the free memory (the bound of the stack sizes that
    ``probe.choose`` tries; a size the user fixes is cut to it there)."""
    budget = fraction * (free_bytes(device) if free is None else free)
    fit = math.floor(budget / per_model)
    if fit < 1:
        raise OEADError(
            f"one model needs {per_model / GIB:.2f} GiB for a training step but only {budget / GIB:.2f} GiB of "
            f"{device} memory is available (hydra.launcher.memory_fraction={fraction}); lower batch_size"
        )
    return fit


def chunks(n: int, size: int) -> list[range]:
    """Split ``n`` models into near-equal consecutive chunks of at most ``size``."""
    parts = -(-n // size)
    base, extra = divmod(n, parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + base + (i < extra))
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]

"""Batched augmentation on uint8 image tensors, per-sample random, on whatever device the batch is on.

The paper's training pipeline (docs/protocol.md): colour jitter, random crop (with padding), horizontal flip,
to [0, 1], additive Gaussian noise, normalisation. Every function draws from an explicit generator so a
seed fixes the augmentation too.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# RGB <-> YIQ: a hue shift is a rotation of the (I, Q) chroma plane.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)
_GRAY = torch.tensor([0.299, 0.587, 0.114])


def _uniform(n: int, amount: float, gen: torch.Generator, device: torch.device) -> Tensor:
    return (torch.rand(n, generator=gen, device=device) * 2 - 1) * amount


def random_crop(x: Tensor, size: int, padding: int, gen: torch.Generator) -> Tensor:
    """Per-sample random ``size``x``size`` crop after zero padding (torchvision RandomCrop semantics)."""
    if padding:
        x = F.pad(x, [padding] * 4)
    n, c, h, w = x.shape
    oy = torch.randint(0, h - size + 1, (n,), generator=gen, device=x.device)
    ox = torch.randint(0, w - size + 1, (n,), generator=gen, device=x.device)
    ar = torch.arange(size, device=x.device)
    rows = (oy[:, None] + ar)[:, None, :, None].expand(n, c, size, w)
    x = x.gather(2, rows)
    cols = (ox[:, None] + ar)[:, None, None, :].expand(n, c, size, size)
    return x.gather(3, cols)


def center_crop(x: Tensor, size: int) -> Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def random_hflip(x: Tensor, gen: torch.Generator) -> Tensor:
    flip = torch.rand(x.shape[0], generator=gen, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def color_jitter(x: Tensor, amount: float, gen: torch.Generator) -> Tensor:
    """Brightness, contrast, saturation and hue jitter, each factor drawn per sample from 1 +- amount.

    All four are affine in RGB, so they are fused into one per-sample 3x3 matrix plus an offset and a
    single clamp (torchvision clamps after each one; for factors this close to 1 that rarely differs).
    Hue rotates the YIQ chroma plane, a cheap stand-in for an HSV hue shift.
    """
    n, dev = x.shape[0], x.device
    b, c, s = (1 + _uniform(n, amount, gen, dev) for _ in range(3))
    theta = _uniform(n, amount, gen, dev) * 2 * torch.pi
    rot = torch.zeros(n, 3, 3, device=dev)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = theta.cos(), -theta.sin(), theta.sin(), theta.cos()
    hue = _YIQ2RGB.to(dev) @ rot @ _RGB2YIQ.to(dev)
    gray_w = _GRAY.to(dev)
    eye = torch.eye(3, device=dev)
    sat = s[:, None, None] * eye + (1 - s)[:, None, None] * gray_w[None, None, :]  # blend with per-pixel gray
    m = (b * c)[:, None, None] * hue @ sat
    # contrast blends with the mean gray of the brightness-adjusted image; gray is invariant under S and H
    mean_gray = torch.einsum("c,nchw->n", gray_w, x) / (x.shape[2] * x.shape[3])
    offset = (1 - c) * b * mean_gray
    return (torch.einsum("nij,njhw->nihw", m, x) + offset[:, None, None, None]).clamp_(0, 1)


@dataclass
class Augmenter:
    """uint8 NCHW batch -> normalised float batch; ``train=True`` adds the paper's random augmentation."""

    mean: Tensor  # (3,) in [0, 1] units
    std: Tensor
    crop: int  # output side length
    padding: int = 4
    jitter: float = 0.01
    noise: float = 0.001
    flip: bool = True  # random horizontal flip (the paper's reduced ImageNet runs crop only: augmentation.flip=false)
    enabled: bool = True
    per_sample: bool = False  # the paper's torchvision pipeline, image by image (batches.augment=per_sample)

    def to(self, device: torch.device) -> "Augmenter":
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def normalise(self, x: Tensor) -> Tensor:
        return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]

    def train(self, x: Tensor, gen: torch.Generator) -> Tensor:
        if self.enabled and self.per_sample:
            return self.normalise(self.paper_pipeline(x, gen))
        x = x.float() / 255
        if not self.enabled:
            return self.normalise(center_crop(x, self.crop))
        if self.jitter:
            x = color_jitter(x, self.jitter, gen)
        x = random_crop(x, self.crop, self.padding, gen)
        if self.flip:
            x = random_hflip(x, gen)
        if self.noise:
            x = x + self.noise * torch.randn(x.shape, generator=gen, device=x.device)
        return self.normalise(x)

    def paper_pipeline(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """uint8 batch -> the paper's training transforms applied per image, before normalisation: torchvision's
        ColorJitter(j, j, j, j), RandomHorizontalFlip, RandomCrop(crop, padding) on the PIL image, ToTensor, then
        + noise * N(0, 1) (liznerski/eoe, main/train_cifar.py). Slow (Python per image): for diagnostics.

        torchvision draws from the global torch generator; it runs in a fork of it seeded from ``gen``, so the
        result is a function of ``gen`` alone and the global stream is left as it was.
        """
        from PIL import Image
        from torchvision import transforms as T

        steps = [T.ColorJitter(self.jitter, self.jitter, self.jitter, self.jitter)] if self.jitter else []
        flip = [T.RandomHorizontalFlip()] if self.flip else []
        pipeline = T.Compose([*steps, *flip, T.RandomCrop(self.crop, self.padding), T.ToTensor()])
        images = x.permute(0, 2, 3, 1).cpu().numpy()
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = torch.stack([pipeline(Image.fromarray(img)) for img in images])
            if self.noise:
                out = out + self.noise * torch.randn_like(out)
        return out.to(x.device)

    def test(self, x: Tensor) -> Tensor:
        return self.normalise(center_crop(x.float() / 255, self.crop))


def channel_stats(images: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std (in [0, 1] units) of a uint8 NCHW tensor, computed in chunks."""
    total = torch.zeros(3, dtype=torch.float64, device=images.device)
    total_sq = torch.zeros_like(total)
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk].double() / 255
        total += x.sum((0, 2, 3))
        total_sq += (x**2).sum((0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return mean.float(), std.float()

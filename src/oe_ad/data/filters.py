"""Low- and high-pass Fourier filters on batched image tensors (paper Table 4, Appendices B–C; docs/protocol.md).

Each channel's 2-D spectrum is centred (fftshift, DC in the middle); LPF with magnitude m zeroes the first and
last m rows and columns (keeping the central (N-2m)x(N-2m) low frequencies); HPF zeroes a central block of side
``hpf_scale * m``. The paper's text says an m x m block, its public code a 2m x 2m block; the default here is
the code's (``hpf_scale=2``), which makes both filters span the same magnitude range (CIFAR 0..15, ImageNet
0..111). After the inverse FFT (real part) each image is min-max rescaled to [0, 1]. As in the public code the
mask is not conjugate-symmetric on even sizes (the centred spectrum has one unpaired row and column), so the
real part keeps half of the one frequency whose conjugate is masked.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import OEADError

PARTS = ("train_normal", "train_oe", "test")


def frequency_mask(h: int, w: int, kind: str, magnitude: int, hpf_scale: int = 2, device=None) -> Tensor:
    """Boolean (h, w) mask of the centred-spectrum entries that are kept."""
    keep = torch.ones(h, w, dtype=torch.bool, device=device)
    m = int(magnitude)
    if m <= 0:
        return keep
    if kind == "lpf":
        keep[:m], keep[h - m :], keep[:, :m], keep[:, w - m :] = False, False, False, False
    elif kind == "hpf":
        side = hpf_scale * m
        top, left = h // 2 - side // 2, w // 2 - side // 2
        keep[max(top, 0) : top + side, max(left, 0) : left + side] = False
    else:
        raise OEADError(f"filter.kind={kind}: must be 'lpf' or 'hpf'")
    return keep


def minmax(x: Tensor) -> Tensor:
    """Rescale each image (over channels and pixels) to [0, 1]; constant images become 0."""
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(1e-12)


def fourier_filter(x: Tensor, kind: str, magnitude: int, hpf_scale: int = 2) -> Tensor:
    """Filter a float (N, C, H, W) batch in the centred Fourier domain; returns min-max rescaled images."""
    spec = torch.fft.fftshift(torch.fft.fft2(x.float()), dim=(-2, -1))
    spec = spec * frequency_mask(*x.shape[-2:], kind, magnitude, hpf_scale, device=x.device)
    out = torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1))).real
    return minmax(out)


@dataclass
class FrequencyFilter:
    """A configured filter: ``filter=lpf filter.magnitude=14 filter.parts=[train_normal,train_oe,test]``."""

    kind: str
    magnitude: int
    parts: tuple[str, ...] = PARTS
    hpf_scale: int = 2
    chunk: int = 2048

    def __post_init__(self) -> None:
        if self.kind not in ("lpf", "hpf"):
            raise OEADError(f"filter.kind={self.kind}: must be 'lpf' or 'hpf'")
        if self.magnitude < 0:
            raise OEADError(f"filter.magnitude={self.magnitude}: must be >= 0")
        unknown = set(self.parts) - set(PARTS)
        if unknown:
            raise OEADError(f"filter.parts: unknown {sorted(unknown)} (choose from {', '.join(PARTS)})")
        self.parts = tuple(self.parts)

    def __call__(self, images: Tensor, device: torch.device | None = None) -> Tensor:
        """uint8 NCHW -> filtered uint8 NCHW on ``device``, in chunks (the pipeline stays uint8 end to end;
        re-quantising the [0, 1] output costs at most 1/510 per pixel)."""
        device = device or images.device
        out = torch.empty(images.shape, dtype=torch.uint8, device=device)
        for i in range(0, len(images), self.chunk):
            x = images[i : i + self.chunk].to(device).float() / 255
            out[i : i + self.chunk] = (fourier_filter(x, self.kind, self.magnitude, self.hpf_scale) * 255).round()
        return out

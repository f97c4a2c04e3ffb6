"""ResNet-18-CBAM training throughput at 224x224: forward + backward + Adam step, images per second.

The ImageNet-30 / MVTec-AD runs train this net on 128 normal + 128 OE images per step; on a CPU use a
small batch and a few steps.

    python benchmarks/resnet_throughput.py [--batch 8] [--steps 3] [--device cpu] [--size 224]
"""

import argparse
import statistics
import time

import torch

from oe_ad.methods.bce import BCE
from oe_ad.methods.losses import bce_loss
from oe_ad.nets.resnet_cbam import ResNet18CBAM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8, help="images per step (half normal, half OE)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = BCE(ResNet18CBAM(), optimizer=torch.optim.Adam).to(args.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
    is_normal = torch.arange(args.batch, device=args.device) < args.batch // 2
    times = []
    for i in range(args.steps + 1):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        bce_loss(model(x), is_normal).backward()
        opt.step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # the first step (allocation, kernel selection) is not timed
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    print(
        f"ResNet-18-CBAM {args.size}x{args.size}, batch {args.batch}, {args.device} "
        f"({torch.get_num_threads()} threads): {step:.2f} s/step, {args.batch / step:.1f} img/s train "
        f"(a 128+128 step would take ~{256 / args.batch * step:.0f} s)"
    )


if __name__ == "__main__":
    main()

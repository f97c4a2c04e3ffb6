"""CLIP throughput per image, random weights (no download): zero-shot scoring and BCE-CL fine-tuning steps.

Both run the methods' real code on 32x32 images in [0, 1], so CLIP's bicubic upsampling to the model's
input size is included: (a) zero-shot: forward + score under inference mode; (b) fine-tuning: forward,
BCE-CL loss, backward and an SGD (Nesterov) step of the image encoder, half normal / half OE.

    python benchmarks/clip_throughput.py [--model ViT-B-32] [--batch 32] [--steps 3] [--device cpu]
"""

import argparse
import logging
import time

import torch

from oe_ad.methods.clip_bce import CLIPBCE
from oe_ad.nets.clip import CLIPNet


def timed(fn, steps: int, device: str) -> tuple[float, float]:
    """Mean (wall, process CPU) seconds per call of ``fn`` after one warm-up call.

    On a shared machine the CPU time (all threads) is the steadier figure: wall time grows with the load.
    """
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def clip_steps(method, opt, x: torch.Tensor, is_normal: torch.Tensor, losses: list | None = None):
    """The two timed steps of a CLIP method on one batch: zero-shot scoring, and one BCE-CL training step
    (its loss appended to ``losses`` when given)."""

    def zero_shot() -> None:
        with torch.inference_mode():
            method.eval()
            method.score(method(x))

    def train_step() -> None:
        method.train()
        opt.zero_grad(set_to_none=True)
        loss = method.loss(method(x), is_normal)
        loss.backward()
        opt.step()
        if losses is not None:
            losses.append(loss.detach())

    return zero_shot, train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--autocast", default="bfloat16", help="GPU autocast dtype (bfloat16, float16, none)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # open_clip warns that the weights are random

    torch.manual_seed(0)
    net = CLIPNet(args.model, pretrained=None, autocast=None if args.autocast == "none" else args.autocast)
    method = CLIPBCE(net, optimizer=lambda params, lr: torch.optim.SGD(params, lr, momentum=0.9, nesterov=True))
    method.set_normal_classes(["airplane"])
    method.to(args.device)
    x = torch.rand(args.batch, 3, 32, 32, device=args.device)
    is_normal = torch.arange(args.batch, device=args.device) < args.batch // 2
    opt = method.configure_optimizers()["optimizer"]

    zero_shot, train_step = clip_steps(method, opt, x, is_normal)

    threads = torch.get_num_threads()
    print(f"{args.model}, random weights, {args.device} ({threads} threads), batch {args.batch}, {args.steps} steps")
    cases = (("zero-shot (forward + score)", zero_shot), ("fine-tuning (forward + backward + SGD)", train_step))
    for name, fn in cases:
        wall, cpu = timed(fn, args.steps, args.device)
        print(
            f"  {name:40s} {args.batch / wall:8.1f} images/s  ({wall / args.batch * 1e3:.0f} ms/image wall, "
            f"{cpu / args.batch * 1e3:.0f} CPU-ms/image)"
        )


if __name__ == "__main__":
    main()

"""Training throughput: raw model step vs the full pipeline, measured in one run.

(a) raw: forward + backward + Adam step of CNN32 + BCE on one ready 256-image batch, repeated;
(b) pipeline: the real Lightning fit loop on 5,000 normal + OE images held as uint8 tensors — batch
    indexing, the paper's augmentation on the batch, the step, logging.
Prints images/s for both and the ratio pipeline time / raw time (target <= 1.05).

    python benchmarks/throughput.py [--steps 40] [--device cpu]
"""

import argparse
import logging
import statistics
import time
import warnings

import pytorch_lightning as pl
import torch

from oe_ad.data.datamodule import OEDataModule
from oe_ad.data.pools import OEPool
from oe_ad.data.sources import LabelledSource, Split
from oe_ad.job.lightning import hide_srun_hint_outside_slurm
from oe_ad.methods.bce import BCE
from oe_ad.nets.cnn32 import CNN32


class RandomImages(LabelledSource):
    classes = [f"class{i}" for i in range(2)]

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.train = Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.zeros(n).long())
        self.test = Split(self.train.images[:256], torch.arange(256) % 2)

    def load(self) -> tuple[Split, Split]:
        return self.train, self.test


class RandomPool(OEPool):
    def __init__(self, n: int) -> None:
        self.images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def load(self, indices):
        return self.images[torch.as_tensor(indices)]


def make_model() -> BCE:
    torch.manual_seed(0)
    return BCE(CNN32(), optimizer=torch.optim.Adam, lr=1e-3)


def raw_step_time(steps: int, device: str, batch: int = 256) -> float:
    model = make_model().to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, 32, 32, device=device)
    is_normal = torch.arange(batch, device=device) < batch // 2
    for i in range(steps + 3):
        if i == 3:  # warm-up excluded
            _sync(device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        model.loss(model(x), is_normal).backward()
        opt.step()
    _sync(device)
    return (time.perf_counter() - t0) / steps


class StepTimer(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 3:
            _sync(pl_module.device)
            self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        _sync(pl_module.device)
        self.elapsed = time.perf_counter() - self.t0


def pipeline_step_time(steps: int, device: str) -> float:
    dm = OEDataModule(RandomImages(128 * (steps + 3)), RandomPool(5000), normal_class=0, oe_size=None, seed=0)
    timer = StepTimer()
    hide_srun_hint_outside_slurm()
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator=device,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(make_model(), datamodule=dm)
    return timer.elapsed / steps


def data_only_time(steps: int, device: str) -> float:
    """Batch indexing + augmentation alone (no model): the pipeline's own cost per step."""
    dm = OEDataModule(RandomImages(128 * (steps + 3)), RandomPool(5000), normal_class=0, oe_size=None, seed=0)
    dm.setup()
    dm.to_device(torch.device(device))
    it = iter(dm.train_dataloader())
    for _ in range(3):
        next(it)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        next(it)
    _sync(device)
    return (time.perf_counter() - t0) / steps


def _sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    accel = "gpu" if args.device.startswith("cuda") else "cpu"
    # Alternate the two measurements and keep each one's best round: a shared 2-core machine drifts by
    # +-10% between rounds, more than the overhead being measured; the minimum is the least disturbed.
    raws, pipes = [], []
    for _ in range(args.rounds):
        raws.append(raw_step_time(args.steps, args.device))
        pipes.append(pipeline_step_time(args.steps, accel))
    raw, pipe = min(raws), min(pipes)
    print(
        f"medians: raw {statistics.median(raws) * 1e3:.1f} ms, pipeline {statistics.median(pipes) * 1e3:.1f} ms, "
        f"ratio {statistics.median(pipes) / statistics.median(raws):.3f}"
    )
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, {args.rounds} rounds x {args.steps} steps "
        "of 128 normal + 128 OE, best round"
    )
    print(f"(a) raw model step      : {raw * 1e3:7.1f} ms/step  {256 / raw:8.0f} img/s")
    print(f"(b) full training loop  : {pipe * 1e3:7.1f} ms/step  {256 / pipe:8.0f} img/s")
    print(f"ratio pipeline / raw    : {pipe / raw:.3f}  (target <= 1.05)")
    data = data_only_time(args.steps, args.device)
    print(f"(c) data alone          : {data * 1e3:7.1f} ms/step  = {100 * data / raw:.1f}% of the raw step")


if __name__ == "__main__":
    main()

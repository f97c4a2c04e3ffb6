"""LightningDataModule: normal training images + an OE subset -> balanced batches, all as device tensors.

Every dataset is decoded once into a uint8 tensor that lives on the training device; a batch is built by
indexing and augmented as a whole (data/augment.py), so no per-sample Python runs in the training loop.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from ..errors import OEADError
from .augment import Augmenter, channel_stats
from .benchmarks import Benchmark, normal_class_names
from .filters import FrequencyFilter
from .oe import cycle_indices, draw_subset, oe_indices, oe_order, repeats
from .options import Augmentation, BatchOptions
from .pools import GreyPool, OEPool
from .sources import NormalSource
from .stream import OEStream, fit_size


class Clock(Protocol):
    """Where and when the datamodule's batches are drawn: the device, the epoch (which seeds the order and
    the augmentation) and this process's rank among ``world_size`` data-parallel ones."""

    @property
    def device(self) -> torch.device: ...

    @property
    def epoch(self) -> int: ...

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...


@dataclass
class FixedClock:
    """A clock its owner advances (the vectorised trainer; epoch 0 on the CPU for anything else)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    epoch: int = 0
    rank: int = 0
    world_size: int = 1


class TrainerClock:
    """The clock of a Lightning trainer (its root device, current epoch and DDP rank)."""

    def __init__(self, trainer: pl.Trainer) -> None:
        self.trainer = trainer

    @property
    def device(self) -> torch.device:
        return self.trainer.strategy.root_device

    @property
    def epoch(self) -> int:
        return self.trainer.current_epoch

    @property
    def rank(self) -> int:
        return self.trainer.global_rank

    @property
    def world_size(self) -> int:
        return self.trainer.world_size


class BalancedBatches:
    """One epoch of (images, is_normal) batches: ``batch_size`` normal + ``batch_size`` OE, one tensor.

    An epoch is one pass over the normal data; the OE subset fills every batch, drawn as ``options.oe`` says
    (data/oe.py, :func:`~oe_ad.data.oe.oe_indices`). The last batch is completed from the next permutation of the
    normal data, or (``options.last="remainder"``, the paper's) holds the normal images left and as many OE. The
    order and the augmentation come from a generator seeded with (seed, epoch), so a resumed run replays exactly
    the same batches.

    Data-parallel (``world_size`` > 1): every rank draws the same epoch order and takes every
    ``world_size``-th batch from ``rank`` on, each still ``batch_size`` normal + ``batch_size`` OE; all ranks
    take the same number of steps (DDP synchronises each one) and augment with their own stream.
    """

    def __init__(
        self,
        normal: Tensor,
        oe: Tensor | OEStream | None,
        batch_size: int,
        seed: int,
        augment: Callable[[Tensor, torch.Generator], Tensor],
        epoch: Callable[[], int],
        rank: int = 0,
        world_size: int = 1,
        options: BatchOptions | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        options = options if options is not None else BatchOptions()
        if options.last == "remainder" and world_size > 1:
            raise OEADError("batches.last=remainder: ranks would take unequal steps; use batches.last=complete")
        self.normal, self.oe, self.batch_size, self.seed = normal, oe, batch_size, seed
        self.augment, self.epoch = augment, epoch
        self.rank, self.world_size, self.options = rank, world_size, options

    def __len__(self) -> int:
        """Steps per epoch on this rank."""
        return math.ceil(len(self.normal) / (self.batch_size * self.world_size))

    def sizes(self) -> list[int]:
        """Normal images in each batch of the whole epoch (all ranks): ``batch_size``, but for a short last one
        under ``last="remainder"``."""
        b, steps = self.batch_size, len(self) * self.world_size
        if self.options.last == "remainder":
            return [b] * (steps - 1) + [len(self.normal) - (steps - 1) * b]
        return [b] * steps

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch_seed = self.seed * 1_000_003 + self.epoch()
        gen = torch.Generator(device=self.normal.device).manual_seed(epoch_seed)
        b, steps, n = self.batch_size, len(self) * self.world_size, len(self.normal)  # batches of all ranks
        normal_idx = cycle_indices(n, steps * b, gen)
        oe_idx = None
        if isinstance(self.oe, Tensor):
            oe_idx = oe_indices(len(self.oe), n, steps * b, self.options.oe, gen)
        if isinstance(self.oe, OEStream):  # a pool too big to hold: its half of each batch is read on the fly
            draw, reps = oe_order(len(self.oe), self.options.oe), repeats(len(self.oe), n)
            oe_stream = self.oe.batches(steps, b, epoch_seed, self.normal.device, draw, reps)
        if self.world_size > 1:  # each rank augments its own batches: its own stream
            gen.manual_seed(epoch_seed * 1_009 + self.rank + 1)
        for s, k in enumerate(self.sizes()):
            streamed = next(oe_stream) if isinstance(self.oe, OEStream) else None  # the stream is shared by all ranks
            if s % self.world_size != self.rank:
                continue
            x = self.normal[normal_idx[s * b : s * b + k]]
            if oe_idx is not None:
                x = torch.cat([x, self.oe[oe_idx[s * b : s * b + k]]])
            elif streamed is not None:
                x = torch.cat([x, streamed[:k]])
            is_normal = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            is_normal[:k] = True
            yield self.augment(x, gen), is_normal


class OEDataModule(pl.LightningDataModule):
    """Normal data of one benchmark split + a seeded OE subset, as balanced 128/128 batches."""

    def __init__(
        self,
        normal: NormalSource,
        oe: OEPool | None,
        normal_class: int,
        oe_size: int | None,
        seed: int,
        batch_size: int = 128,
        augment: bool = True,
        benchmark: Benchmark = "ovr",
        augmentation: Augmentation | None = None,
        test_batch_size: int = 1024,
        normalise: bool = True,
        filter: FrequencyFilter | None = None,
        clock: Clock | None = None,
        batches: BatchOptions | None = None,
    ) -> None:
        super().__init__()
        if batch_size <= 0:
            raise OEADError(f"batch_size={batch_size}: must be positive")
        self.normal_source, self.oe_pool = normal, oe
        self.normal_class, self.oe_size, self.seed = normal_class, oe_size, seed
        self.batch_size, self.benchmark, self.test_batch_size = batch_size, benchmark, test_batch_size
        self.batches = batches if batches is not None else BatchOptions()
        self.aug_options = dict(
            **vars(augmentation if augmentation is not None else Augmentation()),
            enabled=augment,
            per_sample=self.batches.augment == "per_sample",
        )
        self.normalise = normalise
        self.oe_indices: np.ndarray | None = None
        self.filter = filter
        self.clock: Clock = clock if clock is not None else FixedClock()
        self._ready = False

    # -- setup -------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        self.train_normal, self.test_images, self.test_labels = self.normal_source.benchmark_split(
            self.normal_class, self.benchmark
        )
        self.classes = list(self.normal_source.classes)
        self.normal_names = normal_class_names(self.classes, self.normal_class, self.benchmark)
        self.train_normal = self._filtered("train_normal", self.train_normal)
        self.test_images = self._filtered("test", self.test_images)
        size = self.train_normal.shape[-1]
        # normalise=False: batches stay in [0, 1] for a net with its own normalisation (CLIP's mean/std).
        mean, std = channel_stats(self.train_normal) if self.normalise else (torch.zeros(3), torch.ones(3))
        opts = dict(self.aug_options)
        opts["crop"] = opts["crop"] or size
        self.augmenter = Augmenter(mean=mean, std=std, **opts)
        self.train_oe = None
        if self.oe_pool is not None:
            self._check_class_pool()
            pool = GreyPool(self.oe_pool) if getattr(self.normal_source, "grey", False) else self.oe_pool
            self.oe_indices = draw_subset(len(pool), self.oe_size, self.seed)
            limit = pool.max_in_memory
            if limit is not None and len(self.oe_indices) > limit:  # too big to hold: stream it
                if self.filter is not None and "train_oe" in self.filter.parts:
                    raise OEADError(
                        f"filter.parts includes train_oe, but oe_size={self.oe_size} is streamed "
                        f"(more than {limit} images): use a smaller oe_size"
                    )
                self.train_oe = OEStream(pool, self.oe_indices, self.train_normal.shape[-2:], pool.workers)
            else:  # e.g. 32x32 OE for 224x224 data is resized once
                oe = fit_size(pool.load(self.oe_indices), self.train_normal.shape[-2:])
                self.train_oe = self._filtered("train_oe", oe)
        elif self.oe_size is not None:
            raise OEADError(f"oe_size={self.oe_size} but oe=none: choose an OE pool or set oe_size=null")
        self.to_device(self.clock.device)
        self._ready = True

    def _check_class_pool(self) -> None:
        """A pool of one class's own anomalies (data/anomalies.py) must be the normal class's, by name: the data and
        the pool's folder may sort their classes differently."""
        owner = getattr(self.oe_pool, "class_name", None)
        if owner is None:
            return
        if self.benchmark != "ovr":
            raise OEADError(f"benchmark={self.benchmark}: a class's own anomalies as OE need benchmark=ovr")
        name = self.classes[self.normal_class]
        if owner != name:
            raise OEADError(
                f"oe=anomalies: the OE pool holds the anomalies of class '{owner}' but normal_class="
                f"{self.normal_class} is '{name}' in the data: point oe.root at a folder whose classes are the data's"
            )

    def _filtered(self, part: str, images: torch.Tensor) -> torch.Tensor:
        """The images through the frequency filter if it applies to ``part`` (on the training device)."""
        if self.filter is None or part not in self.filter.parts:
            return images
        return self.filter(images, self.clock.device)

    def to_device(self, device: torch.device) -> None:
        self.train_normal = self.train_normal.to(device)
        self.test_images = self.test_images.to(device)
        self.test_labels = self.test_labels.to(device)
        if isinstance(self.train_oe, Tensor):
            self.train_oe = self.train_oe.to(device)
        self.augmenter.to(device)

    @property
    def normalisation(self) -> dict:
        return {
            "mean": self.augmenter.mean.tolist(),
            "std": self.augmenter.std.tolist(),
            "image_size": self.augmenter.crop,
        }

    # -- loaders -----------------------------------------------------------------------------------------
    def train_dataloader(self) -> BalancedBatches:
        clock = self.clock
        return BalancedBatches(
            self.train_normal,
            self.train_oe,
            self.batch_size,
            self.seed,
            self.augmenter.train,
            lambda: clock.epoch,
            clock.rank,
            clock.world_size,
            self.batches,
        )

    def test_dataloader(self) -> "EvalBatches":
        return EvalBatches(self.test_images, self.test_labels, self.test_batch_size, self.augmenter.test)

    def normal_batches(self, max_images: int | None = None) -> "EvalBatches":
        """The normal training images, normalised without augmentation, in near-equal chunks of about
        ``batch_size`` (none of one image: BatchNorm in train mode needs two), e.g. for the Deep SVDD centre;
        ``max_images``: at most that many, evenly spaced over the set (all when it holds no more)."""
        images = self.train_normal
        if max_images is not None and len(images) > max_images:
            keep = torch.linspace(0, len(images) - 1, max_images, device=images.device).round().long()
            images = images[keep]
        n = len(images)
        chunk = math.ceil(n / max(1, math.ceil(n / self.batch_size)))
        labels = torch.zeros(n, dtype=torch.long, device=images.device)
        return EvalBatches(images, labels, chunk, self.augmenter.test)


class EvalBatches:
    """(normalised images, labels) in chunks, converted lazily so large test sets never sit in float."""

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, transform: Callable[[Tensor], Tensor]) -> None:
        self.images, self.labels, self.batch_size, self.transform = images, labels, batch_size, transform

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(0, len(self.images), self.batch_size):
            yield self.transform(self.images[i : i + self.batch_size]), self.labels[i : i + self.batch_size]

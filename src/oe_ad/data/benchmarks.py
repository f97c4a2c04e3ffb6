"""Anomaly-detection benchmarks built from a labelled classification dataset (docs/protocol.md, Benchmarks)."""

from typing import Literal

import torch
from torch import Tensor

from ..errors import OEADError

Benchmark = Literal["ovr", "loo"]


def split(
    train_labels: Tensor, test_labels: Tensor, normal_class: int, num_classes: int, benchmark: Benchmark = "ovr"
) -> tuple[Tensor, Tensor]:
    """Return (indices of the normal training images, test anomaly labels with 1 = anomalous).

    ovr: ``normal_class`` is normal, every other class anomalous.
    loo: every class except ``normal_class`` is normal; ``normal_class`` is the anomaly.
    """
    if not 0 <= normal_class < num_classes:
        raise OEADError(f"normal_class={normal_class} is out of range: this dataset has classes 0..{num_classes - 1}")
    if benchmark == "ovr":
        normal_train = train_labels == normal_class
        test_anomalous = test_labels != normal_class
    elif benchmark == "loo":
        normal_train = train_labels != normal_class
        test_anomalous = test_labels == normal_class
    else:
        raise OEADError(f"benchmark={benchmark}: must be 'ovr' or 'loo'")
    return torch.nonzero(normal_train).flatten(), test_anomalous.long()


def normal_class_names(classes: list[str], normal_class: int, benchmark: Benchmark = "ovr") -> list[str]:
    """Names of the classes that are normal in this benchmark (for CLIP prompts and reports)."""
    if benchmark == "ovr":
        return [classes[normal_class]]
    return [c for i, c in enumerate(classes) if i != normal_class]

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


def own_anomalies_split(
    train_labels: Tensor,
    test_labels: Tensor,
    test_anomalous: Tensor,
    normal_class: int,
    num_classes: int,
    benchmark: Benchmark = "ovr",
) -> tuple[Tensor, Tensor, Tensor]:
    """A dataset whose classes have their own anomalies (data/layout.py, ``normal_anomalous``): (indices of the
    normal training images, indices of the test images, their labels with 1 = anomalous). Class ``normal_class``
    trains on its normal images and is tested on its own test images, normal against anomalous, as the paper's
    code's custom datasets do; other classes play no part, so there is no leave-one-class-out."""
    if not 0 <= normal_class < num_classes:
        raise OEADError(f"normal_class={normal_class} is out of range: this dataset has classes 0..{num_classes - 1}")
    if benchmark != "ovr":
        raise OEADError(
            f"benchmark={benchmark}: each class of this dataset is tested against its own anomalies; use benchmark=ovr"
        )
    test_idx = torch.nonzero(test_labels == normal_class).flatten()
    labels = test_anomalous[test_idx].long()
    if len(labels) == 0 or bool(labels.all()) or not bool(labels.any()):
        kind = "normal" if len(labels) == 0 or bool(labels.all()) else "anomalous"
        raise OEADError(f"normal_class={normal_class}: its test folder holds no {kind} images (an AUROC needs both)")
    normal_idx = torch.nonzero(train_labels == normal_class).flatten()
    if len(normal_idx) == 0:
        raise OEADError(f"normal_class={normal_class}: its normal/ training folder holds no images")
    return normal_idx, test_idx, labels


def normal_class_names(classes: list[str], normal_class: int, benchmark: Benchmark = "ovr") -> list[str]:
    """Names of the classes that are normal in this benchmark (for CLIP prompts and reports)."""
    if benchmark == "ovr":
        return [classes[normal_class]]
    return [c for i, c in enumerate(classes) if i != normal_class]

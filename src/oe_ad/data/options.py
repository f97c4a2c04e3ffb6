"""The data pipeline's options as declarations: how an epoch's batches are drawn (``batches``) and the training
augmentation (``augmentation``). Torch-free: the config schema (``oe_ad.config.schema``) declares these nodes with
these very classes, and the datamodule receives them as they are.

:func:`rule` adds a range or a set of choices to a declared field; the schema checks it, and so does each class
when built from Python.
"""

from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import OEADError


@dataclass(frozen=True)
class Rule:
    """What a declared value must satisfy besides its type: ``min``/``max`` (inclusive), ``gt`` (exclusive),
    ``choices``; a list's every element (``nonempty``: at least one)."""

    min: float | None = None
    max: float | None = None
    gt: float | None = None
    choices: tuple[str, ...] | None = None
    nonempty: bool = False

    def check(self, key: str, value: Any) -> None:
        if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
            if self.nonempty and not len(value):
                raise OEADError(f"{key}=[]: must be a non-empty list")
            for v in value:
                self.check(key, v)
            return
        why = None
        if self.choices is not None and value not in self.choices:
            why = f"choose from {', '.join(self.choices)}"
        elif isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
            why = "not a number"
        elif self.gt is not None and value <= self.gt:
            why = f"must be > {self.gt:g}"
        elif self.min is not None and value < self.min:
            why = f"must be >= {self.min:g}"
        elif self.max is not None and value > self.max:
            why = f"must be <= {self.max:g}"
        if why:
            shown = str(value).lower() if isinstance(value, bool) else "null" if value is None else value
            raise OEADError(f"{key}={shown}: {why}")


def rule(default: Any = "???", **kwargs: Any) -> Any:
    """A dataclass field with a :class:`Rule` (``min=0``, ``choices=(...)``, ...); no default: ``???``, OmegaConf's
    mark of a value that the config must give."""
    return field(default=default, metadata={"rule": Rule(**kwargs)})


def check_rules(options: Any, prefix: str) -> None:
    """Every field's rule, for an instance built from Python (``batches.oe=...`` names the key)."""
    for f in fields(options):
        if "rule" in f.metadata and getattr(options, f.name) is not None:
            f.metadata["rule"].check(f"{prefix}.{f.name}", getattr(options, f.name))


@dataclass
class BatchOptions:
    """How an epoch's batches are drawn (the ``batches`` config node; docs/fidelity.md, "OE sampling", "epoch
    length / last batch", "augmentation").

    ``oe``: ``auto`` (default) draws an OE subset under 10,000 images (``data.oe.REPLACEMENT_FROM``) as the paper's
    code does (the subset repeated ceil(N / n) times, one shuffled pass of that multiset per epoch) and a larger one in
    consecutive random permutations; ``paper`` also draws a larger one as the paper's code does, uniformly with
    replacement; ``permutations`` draws every subset in consecutive random permutations.
    ``last``: ``complete`` (default) fills the last batch to batch_size normal + batch_size OE from the next
    pass over the normal data; ``remainder`` keeps the paper's last batch (the normal images left, as many OE).
    ``augment``: ``batched`` (default) augments each batch in one fused pass on its device; ``per_sample`` runs the
    paper's torchvision pipeline image by image on PIL images (slow: for diagnostics).
    """

    oe: str = rule("auto", choices=("auto", "paper", "permutations"))
    last: str = rule("complete", choices=("complete", "remainder"))
    augment: str = rule("batched", choices=("batched", "per_sample"))

    def __post_init__(self) -> None:
        check_rules(self, "batches")


@dataclass
class Augmentation:
    """The training augmentation (the ``augmentation`` config node; docs/protocol.md, Augmentation): a random crop
    of ``crop`` pixels after zero padding by ``padding`` (``crop`` None: the image size, no crop), horizontal flip
    (``flip``),
    colour jitter of strength ``jitter`` and additive Gaussian pixel noise of std ``noise``; test images are only
    resized / centre-cropped to ``crop``. ``augment=false`` turns the random part off."""

    crop: int | None = rule(None, min=1)
    padding: int = rule(4, min=0)
    jitter: float = rule(0.01, min=0)
    noise: float = rule(0.001, min=0)
    flip: bool = True  # the random horizontal flip (the paper's reduced ImageNet runs crop only: false)

    def __post_init__(self) -> None:
        check_rules(self, "augmentation")

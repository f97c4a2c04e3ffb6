"""How an epoch's batches are drawn: the ``batches`` config node (docs/fidelity.md, "OE sampling", "epoch length /
last batch", "augmentation"). Torch-free, so the schema checks the node without importing the data pipeline."""

from dataclasses import dataclass

from ..errors import OEADError

OE_ORDERS = ("auto", "paper", "permutations")
LAST_BATCHES = ("complete", "remainder")
PIPELINES = ("batched", "per_sample")


@dataclass(frozen=True)
class BatchOptions:
    """How an epoch's batches are drawn (the ``batches`` config node).

    ``oe``: ``auto`` (default) draws an OE subset under 10,000 images (``data.oe.REPLACEMENT_FROM``) as the paper's
    code does (the subset repeated ceil(N / n) times, one shuffled pass of that multiset per epoch) and a larger one in
    consecutive random permutations; ``paper`` also draws a larger one as the paper's code does, uniformly with
    replacement; ``permutations`` draws every subset in consecutive random permutations.
    ``last``: ``complete`` (default) fills the last batch to batch_size normal + batch_size OE from the next
    pass over the normal data; ``remainder`` keeps the paper's last batch (the normal images left, as many OE).
    ``augment``: ``batched`` (default) augments each batch in one fused pass on its device; ``per_sample`` runs the
    paper's torchvision pipeline image by image on PIL images (slow: for diagnostics).
    """

    oe: str = "auto"
    last: str = "complete"
    augment: str = "batched"

    def __post_init__(self) -> None:
        for key, value, allowed in (("oe", self.oe, OE_ORDERS), ("last", self.last, LAST_BATCHES)):
            if value not in allowed:
                raise OEADError(f"batches.{key}={value}: choose from {', '.join(allowed)}")
        if self.augment not in PIPELINES:
            raise OEADError(f"batches.augment={self.augment}: choose from {', '.join(PIPELINES)}")

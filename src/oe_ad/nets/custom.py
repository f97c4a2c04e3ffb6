"""Your own network (docs/research.md): any ``nn.Module`` as the feature model, initialised from a snapshot,
partly or wholly frozen, with a fresh prediction head, as the paper's code trains custom models
(``train_only_custom.py``: ``--custom-model-name``, ``--custom-model-snapshot``, ``--custom-model-freeze``,
``--custom-model-add-prediction-head``). ``conf/net/resnet18.yaml``, ``resnet50.yaml`` and ``wide_resnet50.yaml``
are torchvision backbones built this way.

The methods see φ(x), the ``out_dim`` features of :class:`FeatureNet` (BCE and focal put their one-logit head on
them, as on CNN32). A frozen parameter keeps its value bit for bit (it gets no gradient and no optimiser state);
BatchNorm running statistics still follow the data, as in the paper's code.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import OEADError


def load_snapshot(model: nn.Module, path: str, dropped: Sequence[str] = ()) -> None:
    """A state_dict file (``torch.save(model.state_dict(), path)``) into ``model``, loaded weights-only; keys of
    ``dropped`` submodules may be in it; any other mismatch is one line naming the keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise OEADError(f"net.snapshot={path}: no such file") from None
    except Exception as e:
        why = e.__class__.__name__
        raise OEADError(f"net.snapshot={path}: not a state_dict file torch.load can read safely ({why})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise OEADError(f"net.snapshot={path}: not a state_dict (a dict of tensors, as model.state_dict() gives)")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shapes that differ: torch lists them on the lines after its first
        mismatch = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e)[:200])
        raise OEADError(f"net.snapshot={path}: its tensors do not fit net.model ({mismatch})") from None
    unexpected = [k for k in unexpected if not any(k.startswith(f"{d}.") for d in dropped)]
    if missing or unexpected:
        raise OEADError(
            f"net.snapshot={path}: its keys do not match net.model (missing {sorted(missing)[:4]}, "
            f"unexpected {sorted(unexpected)[:4]}{', ...' if len(missing) + len(unexpected) > 8 else ''})"
        )


class FeatureNet(nn.Module):
    """``model`` (any ``nn.Module``, built from its ``_target_``) -> φ(x) ∈ R^``out_dim``.

    ``drop``: submodules of ``model`` replaced by the identity (the classifier of a torchvision backbone, ``fc``);
    ``snapshot``: a state_dict file loaded into ``model`` (after ``drop``; the dropped modules' keys may be in it);
    ``freeze``: ``true`` freezes every parameter of ``model``, a list freezes those whose names start with one of
    its prefixes (``[conv1, layer1]``); ``head``: a fresh linear layer from the model's output to ``out_dim``
    (without it the model's flattened output must have ``out_dim`` features); ``input_size``: the side of the
    images the model sees (to size the head by one forward pass at construction).
    """

    def __init__(
        self,
        model: nn.Module,
        snapshot: str | None = None,
        freeze: bool | list[str] = False,
        head: bool = True,
        out_dim: int = 256,
        drop: list[str] | None = None,
        input_size: int = 224,
    ) -> None:
        super().__init__()
        for name in drop or []:
            if not isinstance(getattr(model, name, None), nn.Module):
                raise OEADError(f"net.drop: {type(model).__name__} has no submodule {name!r} to drop")
            setattr(model, name, nn.Identity())
        if snapshot is not None:
            load_snapshot(model, snapshot, drop or [])
        self.model, self.out_dim = model, out_dim
        prefixes = [""] if freeze is True else list(freeze or [])
        names = [n for n, _ in model.named_parameters()]
        for prefix in (p for p in prefixes if p and not any(n == p or n.startswith(f"{p}.") for n in names)):
            raise OEADError(f"net.freeze: no parameter of net.model is named {prefix!r} or starts with {prefix}.")
        for name, p in model.named_parameters():
            if any(p_ == "" or name == p_ or name.startswith(f"{p_}.") for p_ in prefixes):
                p.requires_grad_(False)
        features = self._features(input_size)
        if not head and features != out_dim:
            raise OEADError(f"net.head=false: net.model gives {features} features, not net.out_dim={out_dim}")
        self.head = nn.Linear(features, out_dim) if head else nn.Identity()

    @torch.no_grad()
    def _features(self, size: int) -> int:
        """The model's flattened output size, from one forward pass of two blank images (training mode kept)."""
        mode = self.model.training
        try:
            return int(self.model.eval()(torch.zeros(2, 3, size, size)).flatten(1).shape[1])
        except RuntimeError as e:
            raise OEADError(f"net.model does not take {size}x{size} images (net.input_size): {str(e)[:200]}") from None
        finally:
            self.model.train(mode)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.model(x).flatten(1))

    def frozen(self) -> list[str]:
        """The names of the frozen parameters (``model.`` prefixed)."""
        return [f"model.{n}" for n, p in self.model.named_parameters() if not p.requires_grad]

"""CLIP through open_clip (docs/methods.md, CLIP): weights from a tag or a local file, prompts, CLIP's preprocessing.

The CLIP methods ask the datamodule for images in [0, 1] (``AnomalyDetector.normalises_input``), augmented as
for every method; :meth:`CLIPNet.forward` then applies CLIP's own preprocessing to the batch on its device
(bicubic resize of the shortest side to the model's input size, centre crop, CLIP's mean/std) and runs the
image encoder, under autocast on a GPU. The text encoder is frozen: prompts are encoded once, without gradients.
"""

import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import huggingface_hub
import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from torch import Tensor, nn

from ..errors import OEADError

ANOMALY_PROMPT = "a photo of something"
LOGIT_SCALE = 100.0  # docs/methods.md, CLIP zero-shot: fixed, not the model's learnt logit_scale


def prompts(normal_names: Sequence[str]) -> list[str]:
    """One prompt per normal class (human-readable: underscores become spaces), the anomaly prompt last."""
    return [f"a photo of a {name.replace('_', ' ')}" for name in normal_names] + [ANOMALY_PROMPT]


def prompt_logits(image_features: Tensor, text_features: Tensor) -> Tensor:
    """100 x the cosine similarity of every image to every prompt: (images, prompts), in fp32."""
    img = F.normalize(image_features.float(), dim=-1)
    txt = F.normalize(text_features.float(), dim=-1)
    return LOGIT_SCALE * img @ txt.T


def anomaly_log_odds(logits: Tensor) -> Tensor:
    """log(p / (1 - p)) for p = softmax(logits)[:, -1], the anomaly prompt's probability (docs/methods.md).

    A strictly increasing function of p, so the same AUC, but it does not saturate to 1.0 in float.
    """
    return logits[:, -1] - torch.logsumexp(logits[:, :-1], dim=1)


# -- weights -----------------------------------------------------------------------------------------------
def _hf_candidates(hf_hub: str) -> tuple[str, list[str]]:
    """(repo id, file names open_clip tries, in its order) for a tag's ``hf_hub`` entry ('org/repo/[file]')."""
    repo, filename = os.path.split(hf_hub)
    filename = filename or HF_WEIGHTS_NAME
    if filename == HF_WEIGHTS_NAME:
        return repo, [HF_SAFE_WEIGHTS_NAME, filename]
    if filename.endswith((".bin", ".pth")):
        return repo, [filename[:-4] + ".safetensors", filename]
    return repo, [filename]


def cached_weights(tag_cfg: dict, cache_dir: str | None = None) -> str | None:
    """The local file open_clip would load for this tag, if it is already in the cache (no network)."""
    if tag_cfg.get("hf_hub"):  # open_clip prefers the Hugging Face hub whenever a tag has an entry there
        repo, names = _hf_candidates(tag_cfg["hf_hub"])
        for name in names:
            path = huggingface_hub.try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(path, str):
                return path
        return None
    url = tag_cfg.get("url", "")
    path = os.path.join(cache_dir or os.path.expanduser("~/.cache/clip"), os.path.basename(url))
    return path if url and os.path.isfile(path) else None


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host``:443 accepts a TCP connection within ``timeout`` s, name lookup included.

    The probe runs in a thread because name lookup has no timeout of its own. Behind a proxy a direct
    connection proves nothing, so a configured proxy counts as reachable.
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


def resolve_weights(model: str, pretrained: str | None, cache_dir: str | None = None) -> tuple[str | None, dict]:
    """(weights file or None for random init, the tag's open_clip settings or {}) for ``net.pretrained``.

    A tag missing from the local cache is downloaded by open_clip only when its host can be reached; offline
    (HF_HUB_OFFLINE=1, or no connection within 3 s) it fails at once, instead of after open_clip's ~50 s of
    retries, with a message that says how to pass a local file.
    """
    if not pretrained:
        return None, {}
    tag_cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not tag_cfg:
        path = Path(pretrained).expanduser()
        if path.is_file():
            return str(path), {}
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
        raise OEADError(f"net.pretrained={pretrained}: no such file, nor an open_clip tag of {model} (tags: {tags})")
    path = cached_weights(tag_cfg, cache_dir)
    if path is not None:
        return path, tag_cfg
    host = urlparse(huggingface_hub.constants.ENDPOINT if tag_cfg.get("hf_hub") else tag_cfg["url"]).hostname
    offline = "HF_HUB_OFFLINE is set" if huggingface_hub.constants.HF_HUB_OFFLINE else None
    if offline or not _reachable(host):
        raise OEADError(
            f"net.pretrained={pretrained}: the {model} weights are not in the local cache and "
            f"{host} cannot be reached ({offline or 'offline'}); download them where there is internet and pass "
            f"the file: net.pretrained=/path/to/weights.pt (OpenAI's weights also need net.quick_gelu=true)"
        )
    return open_clip.download_pretrained(tag_cfg, cache_dir=cache_dir), tag_cfg


# -- the net -----------------------------------------------------------------------------------------------
class CLIPNet(nn.Module):
    """An open_clip model: ``forward`` maps [0, 1] images to unit image features; ``encode_text`` maps prompts."""

    frozen_from_config = True  # model.pt leaves the frozen pretrained weights out: the tag or file rebuilds them

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = "openai",
        quick_gelu: bool | None = None,
        cache_dir: str | None = None,
        autocast: str | None = "bfloat16",
    ) -> None:
        super().__init__()
        if model not in open_clip.list_models():
            raise OEADError(f"net.model={model}: not an open_clip architecture (e.g. ViT-B-32, ViT-B-16, ViT-L-14)")
        if autocast not in (None, "bfloat16", "float16"):
            raise OEADError(f"net.autocast={autocast}: must be bfloat16, float16 or null")
        weights, tag_cfg = resolve_weights(model, pretrained, cache_dir)
        # OpenAI's weights were trained with QuickGELU; open_clip's plain ViT-B-32 config uses GELU.
        quick_gelu = tag_cfg.get("quick_gelu", False) if quick_gelu is None else quick_gelu
        try:
            self.clip = open_clip.create_model(
                model, pretrained=weights, force_quick_gelu=quick_gelu, force_preprocess_cfg=tag_cfg
            )
        except Exception as e:
            if weights is None:
                raise
            reason = str(e).strip().splitlines()[0][:200]
            raise OEADError(f"net.pretrained={pretrained}: cannot load it into {model} ({reason})") from None
        self.tokenizer = open_clip.get_tokenizer(model)
        for name, p in self.clip.named_parameters():  # only the image encoder ever trains
            p.requires_grad_(name.startswith("visual."))
        pp = self.clip.visual.preprocess_cfg
        size = pp["size"]
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        self.interpolation = pp["interpolation"] if pp["interpolation"] in ("bicubic", "bilinear") else "bicubic"
        self.register_buffer("mean", torch.tensor(pp["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(pp["std"]).view(1, 3, 1, 1), persistent=False)
        self.autocast_dtype = getattr(torch, autocast) if autocast else None

    def preprocess(self, x: Tensor) -> Tensor:
        """CLIP's test transform on a float batch in [0, 1]: resize the shortest side, centre crop, mean/std."""
        th, tw = self.image_size
        h, w = (int(d) for d in x.shape[-2:])  # ints: a trace (oe-ad-export) fixes the input size anyway
        if (h, w) != (th, tw):
            scale = max(th / h, tw / w)
            size = (max(th, round(h * scale)), max(tw, round(w * scale)))
            # Clamped as PIL's uint8 resize is: bicubic overshoots at edges, CLIP never saw values outside [0, 1].
            x = F.interpolate(x, size=size, mode=self.interpolation, align_corners=False, antialias=True).clamp(0, 1)
            top, left = (size[0] - th) // 2, (size[1] - tw) // 2
            x = x[..., top : top + th, left : left + tw]
        return (x - self.mean) / self.std

    def forward(self, x: Tensor) -> Tensor:
        """Unit-norm image features (fp32); autocast on a GPU, fp32 on the CPU (CPU bf16 is far slower)."""
        x = self.preprocess(x)
        use_autocast = x.is_cuda and self.autocast_dtype is not None
        with torch.autocast("cuda", dtype=self.autocast_dtype or torch.float16, enabled=use_autocast):
            features = self.clip.encode_image(x)
        return F.normalize(features.float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Unit-norm text features (fp32, no gradients) of the given prompts."""
        device = self.mean.device
        return F.normalize(self.clip.encode_text(self.tokenizer(list(texts)).to(device)).float(), dim=-1)

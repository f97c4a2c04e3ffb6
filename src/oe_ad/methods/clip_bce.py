"""BCE-CL (Table 2, docs/methods.md): CLIP's image encoder fine-tuned with OE on the prompt softmax's cross-entropy."""

import torch
import torch.nn.functional as F
from torch import Tensor

from .clip_zero_shot import CLIPZeroShot


class CLIPBCE(CLIPZeroShot):
    """Zero-shot CLIP's logits and score; the image encoder trains, the text features stay frozen."""

    oe_use = "required"
    needs_training = True

    def loss(self, out: Tensor, is_normal: Tensor) -> Tensor:
        """Normal -> its best-matching normal prompt (one vs. rest: the only one), OE -> the anomaly prompt."""
        anomaly = torch.full_like(is_normal, out.shape[1] - 1, dtype=torch.long)
        target = torch.where(is_normal, out[:, :-1].argmax(1), anomaly)
        return F.cross_entropy(out, target)

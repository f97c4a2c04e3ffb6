"""Zero-shot CLIP (Table 2, docs/methods.md): no training; score = the probability of "a photo of something"."""

import torch
from torch import Tensor

from ..nets.clip import CLIPNet, anomaly_log_odds, prompt_logits, prompts
from .base import AnomalyDetector, Facts


class CLIPZeroShot(AnomalyDetector):
    """Prompts: one per normal class (one vs. rest: one; LOO: K), then the anomaly prompt; text features frozen."""

    oe_use = "none"
    needs_training = False
    normalises_input = True  # CLIPNet applies CLIP's own resize and mean/std
    score_scale = "the log-odds of the anomaly prompt's softmax probability (0 = probability 1/2)"

    def __init__(self, net: CLIPNet, **kwargs) -> None:
        kwargs.setdefault("optimizer", None)  # nothing to optimise
        super().__init__(net, **kwargs)
        self.register_buffer("text_features", torch.empty(0))
        self.prompts: list[str] = []

    def set_normal_classes(self, names: list[str]) -> None:
        """Encode the prompts for these normal classes; computed once, then a frozen buffer."""
        texts = prompts(names)
        if texts != self.prompts:
            self.text_features = self.net.encode_text(texts)
            self.prompts = texts

    def prepare(self, facts: Facts) -> None:
        self.set_normal_classes(facts.normal_names)

    def forward(self, x: Tensor) -> Tensor:
        """Logits over the prompts: 100 x cosine similarity, the anomaly prompt last."""
        return prompt_logits(self.net(x), self.text_features)

    def score(self, out: Tensor) -> Tensor:
        return anomaly_log_odds(out)

"""benchmarks/official/step_compare.py + replay.py: oe_ad's recorded batches replayed through a training step
written the paper's way. The paper's code is not here, so a stand-in ``eoe`` package (written for this test, with
the paper's module names) plays its part: the same computation must agree from the first step on, a changed
loss must not."""

import sys
from pathlib import Path

import pytest
import torch

from conftest import merged, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "official"))
import replay  # noqa: E402
import step_compare  # noqa: E402

CNN = '''
import torch.nn as nn
import torch.nn.functional as F


class CNN32(nn.Module):
    """The paper's attribute names; the layers of oe_ad's CNN32 with biases and affine BatchNorm."""

    def __init__(self, rep_dim=256, bias=False, clf=False):
        super().__init__()
        self.clf = clf
        self.conv1, self.bn2d1 = nn.Conv2d(3, 32, 5, padding=2, bias=bias), nn.BatchNorm2d(32, eps=1e-4, affine=bias)
        self.conv2, self.bn2d2 = nn.Conv2d(32, 64, 5, padding=2, bias=bias), nn.BatchNorm2d(64, eps=1e-4, affine=bias)
        self.conv3, self.bn2d3 = nn.Conv2d(64, 128, 5, padding=2, bias=bias), nn.BatchNorm2d(128, eps=1e-4, affine=bias)
        self.fc1, self.bn1d1 = nn.Linear(2048, 512, bias=bias), nn.BatchNorm1d(512, eps=1e-4, affine=bias)
        self.fc2 = nn.Linear(512, rep_dim, bias=bias)
        if clf:
            self.linear = nn.Linear(rep_dim, 1)

    def forward(self, x):
        for conv, bn in ((self.conv1, self.bn2d1), (self.conv2, self.bn2d2), (self.conv3, self.bn2d3)):
            x = F.max_pool2d(F.leaky_relu(bn(conv(x))), 2)
        x = self.fc2(F.leaky_relu(self.bn1d1(self.fc1(x.flatten(1)))))
        return self.linear(x) if self.clf else x
'''
TRAINER = """
def weight_reset(m):
    if callable(getattr(m, "reset_parameters", None)):
        m.reset_parameters()
"""
HSC = """
import torch


class HSCTrainer:
    def compute_anomaly_score(self, features, center, train=False, **kwargs):
        return 1 - torch.exp(-(torch.sqrt((features ** 2).sum(1) + {one}) - {one}))

    def loss(self, features, labels, center, **kwargs):
        d = torch.sqrt((features ** 2).sum(1) + {one}) - {one}
        return torch.where(labels == kwargs.get("nominal_label", 0), d, -torch.log(1 - torch.exp(-d) + 1e-9)).mean()
"""


@pytest.fixture
def stand_in_eoe(tmp_path, monkeypatch):
    """Write the stand-in package (HSC's radial function with ``one`` in place of the 1 of sqrt(|z|^2 + 1) - 1)."""

    def make(one: str = "1"):
        pkg = tmp_path / f"eoe-{len(list(tmp_path.iterdir()))}" / "eoe"
        for sub, files in {"": {}, "models": {"cnn.py": CNN}, "training": {"ad_trainer.py": TRAINER}}.items():
            (pkg / sub).mkdir(parents=True, exist_ok=True)
            (pkg / sub / "__init__.py").write_text("")
            for name, text in files.items():
                (pkg / sub / name).write_text(text)
        (pkg / "training" / "hsc.py").write_text(HSC.format(one=one))
        for name in [m for m in sys.modules if m == "eoe" or m.startswith("eoe.")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.syspath_prepend(str(pkg.parent))

    return make


@pytest.fixture(scope="module")
def recorded(folder_root, oe_npy, tmp_path_factory):
    out = tmp_path_factory.mktemp("step")
    overrides = [*tiny_overrides(folder_root, oe_npy, out), "method=hsc", "epochs=2", "milestones=[1]", "logger=none"]
    return step_compare.record(merged(overrides), 2)


def test_every_weight_of_oe_ads_cnn32_and_head_has_the_papers_name():
    from oe_ad.nets.cnn32 import CNN32

    net = CNN32(bias=True)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    state |= {"head.weight": torch.zeros(1, 256), "head.bias": torch.zeros(1)}
    names = step_compare.eoe_state(state)
    assert {"conv1.weight", "bn2d3.running_var", "bn1d1.num_batches_tracked", "fc2.bias", "linear.weight"} <= set(names)
    assert len(names) == len(state)
    with pytest.raises(KeyError, match="centre"):
        step_compare.eoe_state({"centre.c": torch.zeros(1)})


def test_the_record_holds_every_batch_of_every_epoch(recorded):
    rec, ours, labels = recorded
    assert rec["method"] == "hsc" and rec["milestones"] == [1] and rec["lr"] == pytest.approx(1e-3)
    assert len(rec["epochs"]) == 2 and len(ours.losses) == sum(len(e) for e in rec["epochs"])
    x, is_normal = rec["epochs"][0][0]
    assert x.dtype == torch.float32 and int(is_normal.sum()) == len(x) // 2  # 16 normal + 16 OE
    assert len(labels) == sum(len(t) for t in rec["test"]) == len(ours.scores)


def test_the_same_computation_agrees_from_the_first_step(recorded, stand_in_eoe):
    rec, ours, labels = recorded
    stand_in_eoe()
    got = replay.replay(rec)
    c = step_compare.compare(ours, step_compare.Run(got["losses"], got["scores"]), labels)
    assert c.same_computation and c.first_rel < 1e-6
    assert c.max_rel < 1e-3 and c.auc_ours == pytest.approx(c.auc_theirs, abs=0.5)


def test_a_different_loss_is_caught_at_the_first_step(recorded, stand_in_eoe):
    rec, ours, labels = recorded
    stand_in_eoe(one="4")  # sqrt(|z|^2 + 4) - 4: another radial function
    got = replay.replay(rec)
    c = step_compare.compare(ours, step_compare.Run(got["losses"], got["scores"]), labels)
    assert not c.same_computation
    assert "DIFFERENT" in step_compare.report(c, ours, step_compare.Run(got["losses"], got["scores"]))[-1]

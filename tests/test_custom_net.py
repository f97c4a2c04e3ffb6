"""A researcher's own network (nets/custom.py, docs/research.md): any nn.Module, a snapshot, freezing, a head,
torchvision backbones offline from a snapshot; the snapshot's content is part of the job's identity."""

import pytest
import torch
import torchvision
from torch import nn

from conftest import merged, tiny_overrides
from oe_ad import fit
from oe_ad.errors import OEADError
from oe_ad.nets.custom import FeatureNet


class Tiny(nn.Module):
    """A small feature model of the test's own (its output: 12 features)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, stride=4)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width * 8 * 8, 12)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def test_a_module_gets_a_head_sized_for_the_methods_and_freezing_is_by_prefix():
    net = FeatureNet(Tiny(), freeze=["conv"], input_size=32)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 256) and net.head.in_features == 12
    assert [n for n, p in net.named_parameters() if not p.requires_grad] == ["model.conv.weight", "model.conv.bias"]
    assert all(not p.requires_grad for p in FeatureNet(Tiny(), freeze=True, input_size=32).model.parameters())
    with pytest.raises(OEADError, match=r"^net.freeze: no parameter of net.model is named 'convv'"):
        FeatureNet(Tiny(), freeze=["convv"], input_size=32)
    with pytest.raises(OEADError, match=r"^net.head=false: net.model gives 12 features, not net.out_dim=256"):
        FeatureNet(Tiny(), head=False, input_size=32)
    assert FeatureNet(Tiny(), head=False, out_dim=12, input_size=32)(torch.zeros(2, 3, 32, 32)).shape == (2, 12)


def test_a_snapshot_is_loaded_weights_only_and_a_mismatch_names_the_keys(tmp_path):
    source = Tiny()
    torch.save(source.state_dict(), tmp_path / "tiny.pt")
    net = FeatureNet(Tiny(), snapshot=str(tmp_path / "tiny.pt"), input_size=32)
    assert all(torch.equal(a, b) for a, b in zip(net.model.state_dict().values(), source.state_dict().values()))
    torch.save(Tiny(width=8).state_dict(), tmp_path / "wide.pt")
    with pytest.raises(OEADError, match=r"wide.pt: its tensors do not fit net.model \(size mismatch for conv.weight"):
        FeatureNet(Tiny(), snapshot=str(tmp_path / "wide.pt"), input_size=32)
    torch.save(
        {k: v for k, v in source.state_dict().items() if k != "fc.bias"} | {"extra": torch.zeros(1)},
        tmp_path / "keys.pt",
    )
    with pytest.raises(
        OEADError, match=r"keys do not match net.model \(missing \['fc.bias'\], unexpected \['extra'\]\)"
    ):
        FeatureNet(Tiny(), snapshot=str(tmp_path / "keys.pt"), input_size=32)
    torch.save({"model": Tiny()}, tmp_path / "pickled.pt")  # a whole pickled module: refused, never unpickled
    with pytest.raises(OEADError, match="not a state_dict file torch.load can read safely"):
        FeatureNet(Tiny(), snapshot=str(tmp_path / "pickled.pt"), input_size=32)


def _job(folder_root, oe_npy, tmp_path, *extra: str) -> list[str]:
    return merged([*tiny_overrides(folder_root, oe_npy, tmp_path / "runs"), "epochs=2", "milestones=[1]", *extra])


def test_a_frozen_torchvision_backbone_from_a_snapshot_trains_and_its_frozen_weights_stay_bit_identical(
    folder_root, oe_npy, tmp_path
):
    backbone = torchvision.models.resnet18()  # offline: the weights come from a snapshot the user saved
    torch.save(backbone.state_dict(), tmp_path / "resnet18.pt")  # with its fc: dropped by the config
    job = _job(folder_root, oe_npy, tmp_path, "net=resnet18", f"net.snapshot={tmp_path / 'resnet18.pt'}")
    fitted = fit(*job, "net.freeze=[conv1,bn1,layer1,layer2,layer3]", method="bce", normal_class=1)
    model = fitted.model.method.net.model
    trained = dict(model.named_parameters())
    for name, value in backbone.state_dict().items():
        frozen = name.startswith(("conv1.", "bn1.", "layer1.", "layer2.", "layer3."))
        if name in trained and frozen:
            assert torch.equal(trained[name].cpu(), value), name  # bit-identical after two epochs
    assert not torch.equal(trained["layer4.0.conv1.weight"].cpu(), backbone.state_dict()["layer4.0.conv1.weight"])
    assert 0 <= fitted.record["test_auroc"] <= 1 and fitted.record["inputs"]["net"]["fingerprint"]


def test_the_snapshots_content_is_part_of_the_jobs_identity(folder_root, oe_npy, tmp_path):
    torch.save(Tiny().state_dict(), tmp_path / "tiny.pt")
    job = _job(folder_root, oe_npy, tmp_path, "net=custom", "net.model._target_=test_custom_net.Tiny")
    first = fit(*job, f"net.snapshot={tmp_path / 'tiny.pt'}", method="hsc")
    (tmp_path / "moved").mkdir()
    (tmp_path / "tiny.pt").rename(tmp_path / "moved" / "tiny.pt")  # moved: the same job, reused
    moved = fit(*job, f"net.snapshot={tmp_path / 'moved' / 'tiny.pt'}", method="hsc")
    assert moved.dir == first.dir and moved.record == first.record
    torch.save(Tiny().state_dict(), tmp_path / "moved" / "tiny.pt")  # other weights under the same name
    with pytest.raises(OEADError, match=r"net.fingerprint differs: the snapshot file net.snapshot changed"):
        fit(*job, f"net.snapshot={tmp_path / 'moved' / 'tiny.pt'}", method="hsc")

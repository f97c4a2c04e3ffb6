"""The networks are the paper's code's networks: layers, biases, BatchNorm, initial weight statistics."""

import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from conftest import tiny_overrides
from oe_ad.config.factory import build_method
from oe_ad.nets.cnn32 import CNN32, default_weight_std
from oe_ad.nets.resnet_cbam import ResNet18CBAM, SpatialAttention
from test_cli import run_cli

WEIGHTS = {
    "convs.0.weight": (32, 3, 5, 5),
    "convs.1.weight": (64, 32, 5, 5),
    "convs.2.weight": (128, 64, 5, 5),
    "fc1.weight": (512, 2048),
    "fc2.weight": (256, 512),
}
BIASES = {
    "convs.0.bias": (32,),
    "convs.1.bias": (64,),
    "convs.2.bias": (128,),
    "fc1.bias": (512,),
    "fc2.bias": (256,),
    **{f"bns.{i}.{p}": (c,) for i, c in enumerate((32, 64, 128)) for p in ("weight", "bias")},
    "bn1.weight": (512,),
    "bn1.bias": (512,),
}


def layers(net: CNN32) -> list[nn.Conv2d | nn.Linear]:
    return [*net.convs, net.fc1, net.fc2]


def test_default_cnn32_has_biases_and_affine_batchnorm_with_eps_1e4():
    net = CNN32()
    shapes = {k: tuple(p.shape) for k, p in net.named_parameters()}
    assert shapes == {**WEIGHTS, **BIASES}
    bns = [*net.bns, net.bn1]
    assert all(bn.affine and bn.eps == 1e-4 for bn in bns)
    assert net(torch.randn(4, 3, 32, 32)).shape == (4, 256)


def test_bias_free_cnn32_has_only_weights_and_plain_batchnorm():
    net = CNN32(bias=False)
    assert {k: tuple(p.shape) for k, p in net.named_parameters()} == WEIGHTS
    assert not any(bn.affine for bn in [*net.bns, net.bn1])


def test_default_init_is_pytorchs_kaiming_uniform_weights_and_uniform_biases():
    torch.manual_seed(0)
    net = CNN32()
    for layer in layers(net):
        bound = 1 / math.sqrt(layer.weight[0].numel())
        assert layer.weight.std().item() == pytest.approx(default_weight_std(layer), rel=0.1)
        assert layer.weight.abs().max().item() <= bound
        assert layer.bias.abs().max().item() <= bound
    for layer in (net.fc1, net.fc2):  # enough biases for a stable std: U(+-b) has std b / sqrt(3)
        bound = 1 / math.sqrt(layer.weight[0].numel())
        assert layer.bias.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    for bn in [*net.bns, net.bn1]:
        assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and not bn.bias.any()


def test_xavier_init_option_follows_the_constructor_of_the_papers_code():
    torch.manual_seed(0)
    net = CNN32(init="xavier")
    gain = nn.init.calculate_gain("leaky_relu")
    for layer in layers(net):
        fan_in, fan_out = layer.weight[0].numel(), layer.weight[:, 0].numel()
        g = 1.0 if layer is net.fc2 else gain
        assert layer.weight.std().item() == pytest.approx(g * math.sqrt(2 / (fan_in + fan_out)), rel=0.1)
    with pytest.raises(ValueError, match="net.init"):
        CNN32(init="nope")


@pytest.mark.parametrize("method,bias", [("bce", True), ("hsc", True), ("deep_sad", True), ("deep_svdd", False)])
def test_the_method_config_picks_the_network(make_cfg, method, bias):
    net = build_method(make_cfg(f"method={method}")).net
    assert net.bias is bias
    assert any(k.endswith(".bias") for k, _ in net.named_parameters()) is bias


def test_deep_svdd_can_be_given_the_biased_network_explicitly(make_cfg):
    assert instantiate(make_cfg("method=deep_svdd", "net.bias=true").net).bias is True


def test_resnet_cbam_starts_from_pytorchs_default_init():
    torch.manual_seed(0)
    net = ResNet18CBAM()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.weight.numel() > 1000]
    for conv in convs:
        assert conv.weight.std().item() == pytest.approx(default_weight_std(conv), rel=0.1)
    spatial = [m for m in net.modules() if isinstance(m, SpatialAttention)]
    assert spatial and all(m.bn.momentum == 0.01 for m in spatial)


def test_a_diverging_job_fails_in_one_line_and_writes_no_record(folder_root, oe_npy, tmp_path):
    out = tmp_path / "runs"
    proc = run_cli(*tiny_overrides(folder_root, oe_npy, out), "epochs=2", "lr=1e30", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "NaN or infinite" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("result.json")) and not list(tmp_path.rglob("model.pt"))

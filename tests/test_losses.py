import math

import pytest
import torch

from oe_ad.methods import losses

NORMAL_OE = torch.tensor([True, False])


def test_bce_hand_computed():
    logits = torch.tensor([0.0, 2.0])  # normal with logit 0, OE with logit 2
    expected = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert losses.bce_loss(logits, NORMAL_OE).item() == pytest.approx(expected, rel=1e-6)


def test_focal_gamma0_is_bce_and_gamma2_hand_computed():
    logits = torch.tensor([0.3, -1.2])
    assert losses.focal_loss(logits, NORMAL_OE, 0.0).item() == pytest.approx(losses.bce_loss(logits, NORMAL_OE).item())
    # logit 0 for a normal sample: BCE = log 2, p_t = 0.5, loss = 0.5^2 * log 2
    assert losses.focal_loss(torch.tensor([0.0]), torch.tensor([True]), 2.0).item() == pytest.approx(
        0.25 * math.log(2), rel=1e-6
    )


@pytest.mark.parametrize(
    "radial, expected",
    [("l1", 7.0), ("l2", 5.0), ("l2_squared", 25.0), ("pseudo_huber", math.sqrt(26) - 1)],
)
def test_hsc_radial_functions(radial, expected):
    z = torch.tensor([[3.0, -4.0]])
    assert losses.hsc_distance(z, radial).item() == pytest.approx(expected, rel=1e-6)


def test_hsc_loss_hand_computed():
    z = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # normal at h = sqrt(26)-1, OE at h = sqrt(1.25)-1
    h_n, h_o = math.sqrt(26) - 1, math.sqrt(1.25) - 1
    expected = (h_n - math.log(1 - math.exp(-h_o) + 1e-9)) / 2
    assert losses.hsc_loss(z, NORMAL_OE).item() == pytest.approx(expected, rel=1e-5)


def test_deep_sad_loss_hand_computed():
    z = torch.tensor([[1.0, 2.0], [1.0, 2.0]])  # ||z||^2 = 5 for both
    assert losses.deep_sad_loss(z, NORMAL_OE).item() == pytest.approx((5 + 1 / 5) / 2, rel=1e-6)


def test_deep_svdd_center_and_loss():
    feats = torch.tensor([[1.0, 0.05, -0.02], [3.0, -0.05, -0.04]])
    c = losses.svdd_center(feats)
    assert torch.allclose(c, torch.tensor([2.0, 0.1, -0.1]))
    z = torch.tensor([[2.0, 0.1, 0.9]])
    assert losses.deep_svdd_loss(z, c).item() == pytest.approx(1.0, rel=1e-6)

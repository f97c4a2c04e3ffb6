import pytest
import torch

from oe_ad.data.filters import FrequencyFilter, fourier_filter, frequency_mask, minmax
from oe_ad.errors import OEADError


def images(n: int = 4, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def centred_power(x: torch.Tensor) -> torch.Tensor:
    """|centred spectrum| of each channel, after removing the rescale's offset (only DC changes)."""
    return torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1)).abs()


def test_lpf_magnitude_zero_is_the_identity_up_to_rescaling():
    x = images()
    assert torch.allclose(fourier_filter(x, "lpf", 0), minmax(x), atol=1e-5)
    assert torch.allclose(fourier_filter(x, "hpf", 0), minmax(x), atol=1e-5)


def removed(kind: str, m: int, scale: int = 2) -> torch.Tensor:
    """Centred-spectrum entries the filter must zero: masked out together with their conjugate (the
    real part of the inverse FFT folds a frequency onto its conjugate; on even sizes one row/column of the
    mask has no masked partner, as in the paper's code)."""
    out = ~frequency_mask(32, 32, kind, m, scale)
    conj = (-torch.arange(32)) % 32  # centred index i <-> frequency i-16; conjugate frequency 16-i
    return out & out[conj][:, conj]


@pytest.mark.parametrize("m", [1, 5, 14])
def test_lpf_removes_the_outer_frequencies_and_keeps_the_centre(m):
    x = images()
    spec = centred_power(fourier_filter(x, "lpf", m))
    outer = removed("lpf", m)
    assert outer[: m - 1].all() and outer[:, 33 - m :].all() and not outer[16, 16]
    assert spec[..., outer].max() < 1e-3
    assert spec[..., ~outer].max() > 1.0
    # the low frequencies near DC survive
    assert (spec[..., 15:18, 15:18].flatten(1).sum(1) > 1.0).all()


@pytest.mark.parametrize(("m", "scale"), [(3, 2), (5, 1), (15, 2)])
def test_hpf_removes_the_central_block(m, scale):
    x = images()
    spec = centred_power(fourier_filter(x, "hpf", m, hpf_scale=scale)).clone()
    block = removed("hpf", m, scale)
    spec[..., 16, 16] = 0  # DC comes back through the min-max offset only
    assert block.sum() >= (scale * m - 1) ** 2
    assert spec[..., block].max() < 1e-3
    assert spec[..., 0, :].sum() > 1.0  # the highest frequencies are kept
    assert (~frequency_mask(32, 32, "hpf", m, scale)).sum() == (scale * m) ** 2


def test_lpf_15_leaves_four_frequencies():
    assert frequency_mask(32, 32, "lpf", 15).sum() == 4


def test_filter_on_uint8_batches_keeps_shape_and_range():
    f = FrequencyFilter("lpf", 14, parts=("test",))
    x = (images(3) * 255).to(torch.uint8)
    y = f(x)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    assert int(y.amin()) == 0 and int(y.amax()) == 255  # each image rescaled to the full range


def test_bad_filter_options_are_one_line_errors():
    with pytest.raises(OEADError, match="filter.parts"):
        FrequencyFilter("lpf", 3, parts=("train",))
    with pytest.raises(OEADError, match="filter.kind"):
        FrequencyFilter("band", 3)
    with pytest.raises(OEADError, match="filter.magnitude"):
        FrequencyFilter("hpf", -1)


def test_datamodule_filters_only_the_chosen_parts(make_cfg):
    from oe_ad.config.factory import build_datamodule

    plain = build_datamodule(make_cfg("normal_class=1", "oe_size=4"))
    plain.setup("fit")
    filt = build_datamodule(
        make_cfg("normal_class=1", "oe_size=4", "filter=hpf", "filter.magnitude=4", "filter.parts=[train_oe]")
    )
    filt.setup("fit")
    assert torch.equal(plain.train_normal, filt.train_normal) and torch.equal(plain.test_images, filt.test_images)
    assert not torch.equal(plain.train_oe, filt.train_oe)
    expected = FrequencyFilter("hpf", 4)(plain.train_oe)
    assert torch.equal(filt.train_oe, expected)

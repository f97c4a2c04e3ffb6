import numpy as np
import pytest
import torch

from oe_ad.data.augment import Augmenter, random_crop
from oe_ad.data.datamodule import BalancedBatches, OEDataModule
from oe_ad.data.oe import cycle_indices, draw_subset
from oe_ad.data.pools import NpyPool
from oe_ad.data.sources import ImageFolder
from oe_ad.errors import OEADError


def identity_images(n: int, offset: int = 0) -> torch.Tensor:
    """Images whose first pixel stores their index (mod 256 in two channels), to trace batches."""
    x = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    idx = torch.arange(n) + offset
    x[:, 0, 0, 0], x[:, 1, 0, 0] = idx % 256, idx // 256
    return x


def decode_ids(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0, 0, 0].long() + 256 * x[:, 1, 0, 0].long()


def no_aug(x, gen):
    return x


def test_batches_hold_exactly_128_normal_and_128_oe_and_cover_every_normal_image():
    normal, oe = identity_images(300), identity_images(5, offset=1000)
    batches = BalancedBatches(normal, oe, batch_size=128, seed=0, augment=no_aug, epoch=lambda: 0)
    seen = []
    assert len(batches) == 3
    for x, is_normal in batches:
        assert x.shape == (256, 3, 32, 32)
        assert is_normal[:128].all() and not is_normal[128:].any()
        ids = decode_ids(x)
        assert (ids[:128] < 300).all() and (ids[128:] >= 1000).all()  # one forward tensor, normal first
        seen.append(ids[:128])
    assert set(torch.cat(seen).tolist()) == set(range(300))  # an epoch is a pass over the normal data


def test_single_oe_image_is_repeated_to_fill_the_batch():
    batches = BalancedBatches(identity_images(50), identity_images(1, 7), 128, 0, no_aug, lambda: 0)
    ((x, is_normal),) = list(batches)
    assert x.shape[0] == 256 and set(decode_ids(x[128:]).tolist()) == {7}


def test_no_oe_gives_normal_only_batches():
    ((x, is_normal),) = list(BalancedBatches(identity_images(10), None, 16, 0, no_aug, lambda: 0))
    assert x.shape[0] == 16 and is_normal.all()


def test_batch_order_is_fixed_by_seed_and_epoch():
    def ids(seed, epoch):
        b = BalancedBatches(identity_images(300), identity_images(40, 1000), 128, seed, no_aug, lambda: epoch)
        return torch.cat([decode_ids(x) for x, _ in b])

    assert torch.equal(ids(0, 0), ids(0, 0))
    assert not torch.equal(ids(0, 0), ids(0, 1))
    assert not torch.equal(ids(0, 0), ids(1, 0))


def test_oe_subset_is_a_function_of_the_seed():
    a, b, c = draw_subset(1000, 16, 3), draw_subset(1000, 16, 3), draw_subset(1000, 16, 4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(np.unique(a)) == 16 and np.all(np.diff(a) > 0)
    assert np.array_equal(draw_subset(10, None, 0), np.arange(10))


@pytest.mark.parametrize("size", [0, -1, 1001])
def test_bad_oe_size_is_a_clear_error(size):
    with pytest.raises(OEADError, match="oe_size"):
        draw_subset(1000, size, 0)


def test_cycle_indices_uses_every_item_before_repeating():
    idx = cycle_indices(5, 12, torch.Generator().manual_seed(0))
    assert sorted(idx[:5].tolist()) == list(range(5)) and sorted(idx[5:10].tolist()) == list(range(5))


def test_random_crop_with_padding_shifts_each_sample_independently():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32) + 1
    out = random_crop(x, 32, 4, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for i in range(2):  # each crop is a window of the zero-padded image
        padded = torch.nn.functional.pad(x[i], [4] * 4)
        assert any(torch.equal(out[i], padded[:, r : r + 32, c : c + 32]) for r in range(9) for c in range(9))


def test_augmenter_is_seeded_and_off_means_normalise_only():
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    aug = Augmenter(mean=torch.full((3,), 0.5), std=torch.full((3,), 0.25), crop=32)
    a = aug.train(x, torch.Generator().manual_seed(1))
    b = aug.train(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, aug.test(x))
    aug.enabled = False
    assert torch.allclose(aug.train(x, torch.Generator()), (x.float() / 255 - 0.5) / 0.25)


def test_datamodule_draws_the_oe_subset_and_normalises(folder_root, oe_npy, tmp_path):
    dm = OEDataModule(
        ImageFolder(str(folder_root), cache_dir=str(tmp_path)),
        NpyPool(str(oe_npy)),
        normal_class=1,
        oe_size=3,
        seed=0,
        batch_size=16,
    )
    dm.setup("fit")
    assert dm.train_oe.shape == (3, 3, 32, 32) and len(dm.train_normal) == 24
    assert dm.test_labels.sum() == 24 and len(dm.test_labels) == 36  # 2 of 3 test classes anomalous
    x = torch.cat([b for b, _ in dm.normal_batches()])
    assert x.mean().abs() < 0.05 and (x.std() - 1).abs() < 0.1  # normalised by the normal class's stats
    x, is_normal = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 and int(is_normal.sum()) == 16


def test_color_jitter_zero_is_identity_and_keeps_gray_images_gray():
    from oe_ad.data.augment import color_jitter

    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(color_jitter(x, 0.0, g), x, atol=1e-5)
    gray = x[:, :1].expand(-1, 3, -1, -1).contiguous()
    out = color_jitter(gray, 0.3, g)  # hue and saturation do not colour a gray image
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and not torch.allclose(out, gray)

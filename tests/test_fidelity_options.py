"""The options that restore the paper's code for diagnostics (docs/fidelity.md): how an epoch draws its OE
images and its last batch, the per-image augmentation pipeline, Deep SVDD with OE in the batch and its centre,
and an OE pool restricted to listed images (the single-image cells of Table 3)."""

import numpy as np
import pytest
import torch

from oe_ad.config.factory import uses_oe
from oe_ad.config.schema import validate_config
from oe_ad.data.augment import Augmenter
from oe_ad.data.datamodule import BalancedBatches, OEDataModule
from oe_ad.data.oe import oe_indices, oe_order, repeats
from oe_ad.data.options import BatchOptions
from oe_ad.data.pools import NpyPool
from oe_ad.data.sources import ImageFolder
from oe_ad.errors import OEADError
from oe_ad.job.lightning import run_job
from oe_ad.methods.base import Facts
from oe_ad.methods.deep_svdd import DeepSVDD
from oe_ad.methods.losses import squared_distance, svdd_center
from oe_ad.nets.cnn32 import CNN32
from test_data import decode_ids, identity_images, no_aug


# -- how the OE subset is drawn --------------------------------------------------------------------------------
def test_which_draw_each_subset_size_gets():
    assert [oe_order(n, "auto") for n in (1, 16, 9_999, 10_000, 30_000)] == ["repeat"] * 3 + ["permutations"] * 2
    assert [oe_order(n, "paper") for n in (16, 9_999, 10_000)] == ["repeat", "repeat", "replacement"]
    assert {oe_order(n, "permutations") for n in (1, 16, 30_000)} == {"permutations"}
    assert (repeats(1, 5000), repeats(16, 5000), repeats(5000, 5000), repeats(7000, 5000)) == (5000, 313, 1, 1)


def test_repeat_is_one_shuffled_pass_over_the_repeated_subset():
    # 3 images next to 10 normal ones: repeated ceil(10/3) = 4 times, a pass of 12 holds each exactly 4 times
    for seed in range(20):
        idx = oe_indices(3, 10, 12, "auto", torch.Generator().manual_seed(seed))
        assert torch.bincount(idx, minlength=3).tolist() == [4, 4, 4]
    # unlike permutations, an aligned window of 3 is not always one of each (the multiset is shuffled as a whole)
    windows = [oe_indices(3, 10, 12, "auto", torch.Generator().manual_seed(s)).view(4, 3) for s in range(20)]
    assert any(len(set(w.tolist())) < 3 for ws in windows for w in ws)
    perms = [oe_indices(3, 10, 12, "permutations", torch.Generator().manual_seed(s)).view(4, 3) for s in range(20)]
    assert all(sorted(w.tolist()) == [0, 1, 2] for ws in perms for w in ws)


def test_repeat_counts_in_a_batch_are_hypergeometric_as_in_the_paper():
    # 16 images, 5,000 normal: a multiset of 16 x 313 = 5,008; an image's count among the first 128 is
    # Hypergeometric(5008, 313, 128): mean 128 * 313 / 5008 = 8, variance 8 * (1 - 313/5008) * 4880/5007 = 7.31.
    draws = [oe_indices(16, 5000, 128, "auto", torch.Generator().manual_seed(s)) for s in range(400)]
    counts = torch.stack([torch.bincount(d, minlength=16) for d in draws]).double()
    assert abs(counts.mean().item() - 8.0) < 1e-9  # 128 draws over 16 images: 8 on average, exactly
    assert 6.6 < counts.var().item() < 8.0
    perm = torch.bincount(oe_indices(16, 5000, 128, "permutations", torch.Generator().manual_seed(0)), minlength=16)
    assert perm.tolist() == [8] * 16  # oe_ad's old cycling: every image exactly 8 times in every batch


def test_an_epoch_of_a_16_image_subset_uses_each_image_305_to_313_times():
    idx = oe_indices(16, 5000, 5000, "auto", torch.Generator().manual_seed(1))
    counts = torch.bincount(idx, minlength=16)
    assert counts.sum() == 5000 and counts.max() <= 313 and counts.min() >= 313 - 8


def test_replacement_only_for_large_subsets_under_paper():
    n = 10_000
    auto = oe_indices(n, 5000, n, "auto", torch.Generator().manual_seed(0))
    paper = oe_indices(n, 5000, n, "paper", torch.Generator().manual_seed(0))
    assert sorted(auto.tolist()) == list(range(n))  # a permutation
    # with replacement, n draws of n leave about n / e images out (3,679 expected; sd ~ 30)
    assert 3500 < n - len(torch.unique(paper)) < 3850


# -- batches: the last one and what they hold ------------------------------------------------------------------
@pytest.mark.parametrize("last, sizes", [("complete", [128, 128, 128]), ("remainder", [128, 128, 44])])
def test_last_batch_complete_or_remainder(last, sizes):
    normal, oe = identity_images(300), identity_images(16, offset=1000)
    batches = BalancedBatches(normal, oe, 128, 0, no_aug, lambda: 0, options=BatchOptions(last=last))
    seen = []
    assert batches.sizes() == sizes and len(batches) == 3
    for (x, is_normal), k in zip(batches, sizes, strict=True):
        ids = decode_ids(x)
        assert len(x) == 2 * k and int(is_normal.sum()) == k and is_normal[:k].all()
        assert (ids[:k] < 300).all() and (ids[k:] >= 1000).all()
        seen += ids[:k].tolist()
    if last == "remainder":  # one pass: every normal image exactly once
        assert sorted(seen) == list(range(300))
    else:
        assert set(seen) == set(range(300)) and len(seen) == 384


def test_the_papers_epoch_of_5000_ends_with_8_normal_and_8_oe():
    batches = BalancedBatches(
        identity_images(5000),
        identity_images(1, 9000),
        128,
        0,
        no_aug,
        lambda: 0,
        options=BatchOptions(last="remainder"),
    )
    sizes = [len(x) for x, _ in batches]
    assert len(sizes) == 40 and sizes[:39] == [256] * 39 and sizes[39] == 16


def test_remainder_refuses_data_parallel():
    with pytest.raises(OEADError, match="batches.last=remainder"):
        BalancedBatches(
            identity_images(10),
            None,
            4,
            0,
            no_aug,
            lambda: 0,
            rank=0,
            world_size=2,
            options=BatchOptions(last="remainder"),
        )


def test_small_subset_batches_follow_the_papers_repeat():
    oe = identity_images(16, offset=1000)
    b = BalancedBatches(identity_images(5000), oe, 128, 3, no_aug, lambda: 0)
    per_batch = [torch.bincount(decode_ids(x[128:]) - 1000, minlength=16) for x, _ in b]
    assert any(c.max() > 8 for c in per_batch)  # not the 8-of-each of consecutive permutations
    old = BalancedBatches(identity_images(5000), oe, 128, 3, no_aug, lambda: 0, options=BatchOptions(oe="permutations"))
    assert all(torch.bincount(decode_ids(x[128:]) - 1000, minlength=16).tolist() == [8] * 16 for x, _ in old)


@pytest.mark.parametrize("key, value", [("oe", "sometimes"), ("last", "drop"), ("augment", "pil")])
def test_bad_batch_option_is_a_one_line_error(key, value):
    with pytest.raises(OEADError, match=f"batches.{key}={value}: choose from"):
        BatchOptions(**{key: value})


def test_schema_checks_the_batches_node(make_cfg):
    with pytest.raises(OEADError, match="batches.last=drop"):
        validate_config(make_cfg("batches.last=drop"))
    with pytest.raises(OEADError, match="unknown key 'batches.sampler'"):
        validate_config(make_cfg("+batches.sampler=x"))
    cfg = validate_config(make_cfg("batches.oe=paper", "batches.last=remainder", "batches.augment=per_sample"))
    assert dict(cfg.batches) == {"oe": "paper", "last": "remainder", "augment": "per_sample"}


# -- the paper's augmentation, image by image -------------------------------------------------------------------
def paper_augmenter(**kw) -> Augmenter:
    return Augmenter(mean=torch.zeros(3), std=torch.ones(3), crop=32, per_sample=True, **kw)


def test_per_sample_pipeline_is_a_function_of_the_generator_and_leaves_the_global_stream():
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    aug = paper_augmenter()
    state = torch.get_rng_state()
    a = aug.train(x, torch.Generator().manual_seed(5))
    b = aug.train(x, torch.Generator().manual_seed(5))
    c = aug.train(x, torch.Generator().manual_seed(6))
    assert torch.equal(torch.get_rng_state(), state)
    assert a.shape == (6, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_per_sample_pipeline_without_jitter_crop_or_noise_only_flips():
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    out = paper_augmenter(jitter=0.0, padding=0, noise=0.0).train(x, torch.Generator().manual_seed(0))
    plain, flipped = x.float() / 255, x.flip(-1).float() / 255
    is_plain = [torch.equal(o, p) for o, p in zip(out, plain)]
    is_flipped = [torch.equal(o, f) for o, f in zip(out, flipped)]
    assert all(p or f for p, f in zip(is_plain, is_flipped))
    assert 0 < sum(is_flipped) < 32  # RandomHorizontalFlip(p=0.5), per image


def test_per_sample_pipeline_crops_within_the_zero_padding_and_adds_small_noise():
    x = torch.randint(1, 256, (8, 3, 32, 32), dtype=torch.uint8)
    out = paper_augmenter(jitter=0.0).train(x, torch.Generator().manual_seed(1))
    for o, img in zip(out, x.float() / 255):
        windows = []
        for src in (img, img.flip(-1)):
            padded = torch.nn.functional.pad(src, [4] * 4)
            windows += [padded[:, r : r + 32, c : c + 32] for r in range(9) for c in range(9)]
        assert min((o - w).abs().max().item() for w in windows) < 0.006  # 0.001 * N(0, 1): < 6 sd


def test_datamodule_per_sample_option_reaches_the_augmenter(folder_root, oe_npy, tmp_path):
    dm = OEDataModule(
        ImageFolder(str(folder_root), cache_dir=str(tmp_path)),
        NpyPool(str(oe_npy)),
        1,
        3,
        0,
        batch_size=16,
        batches=BatchOptions(augment="per_sample", last="remainder"),
    )
    dm.setup("fit")
    assert dm.augmenter.per_sample
    a = [x for x, _ in dm.train_dataloader()]
    b = [x for x, _ in dm.train_dataloader()]
    assert [len(x) for x in a] == [32, 16] and all(torch.equal(p, q) for p, q in zip(a, b))  # 24 normal: 16 + 8


# -- Deep SVDD: the centre, and OE in the batch -------------------------------------------------------------------
def smooth_images(n: int, seed: int) -> torch.Tensor:
    """Normalised 'images' with spatial structure: upsampled 8x8 noise plus a per-image colour offset."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, 8, 8, generator=g)
    x = torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False)
    return x + 0.5 * torch.randn(n, 3, 1, 1, generator=g)


def running_stats(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}


@pytest.mark.parametrize("bias", [False, True])
def test_deep_svdd_centre_is_the_train_mode_mean_feature_not_a_batchnorm_artefact(bias):
    torch.manual_seed(0)
    images = smooth_images(200, 1)
    chunks = [(images[i : i + 50], torch.zeros(50)) for i in range(0, 200, 50)]
    method = DeepSVDD(CNN32(bias=bias), optimizer=torch.optim.Adam)
    before = running_stats(method)
    method.prepare(Facts(["car"], lambda: iter(chunks)))
    after = running_stats(method)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the pass leaves the running statistics alone
    # the centre is the floored mean of the train-mode features, chunk by chunk as prepare feeds them
    method.train()
    with torch.no_grad():
        expected = svdd_center(torch.cat([method(x) for x, _ in chunks]))
    assert torch.allclose(method.center, expected, atol=1e-5)
    # not the artefact of untouched running statistics: in eval mode (mean 0, variance 1 in every BatchNorm) the
    # features are tiny and the floor makes the centre 0.1 * sign everywhere; the real centre is not that
    method.load_state_dict(before, strict=False)
    method.eval()
    with torch.no_grad():
        artefact = svdd_center(torch.cat([method(x) for x, _ in chunks]))
    assert torch.all(artefact.abs() == 0.1)
    assert (method.center.abs() > 0.1).float().mean() > 0.5


def test_deep_svdd_centre_is_not_recomputed_once_ready():
    method = DeepSVDD(CNN32(bias=False), optimizer=torch.optim.Adam)
    method.center.fill_(3.0)
    method.center_ready.fill_(True)
    method.prepare(Facts(["car"], lambda: iter([(smooth_images(8, 0), torch.zeros(8))])))
    assert torch.all(method.center == 3.0)


def test_deep_svdd_with_oe_pulls_every_image_to_the_centre():
    out = torch.randn(6, 4)
    is_normal = torch.tensor([True, True, True, False, False, False])
    plain = DeepSVDD(CNN32(out_dim=4, bias=False), optimizer=torch.optim.Adam)
    with_oe = DeepSVDD(CNN32(out_dim=4, bias=False), with_oe=True, optimizer=torch.optim.Adam)
    for m in (plain, with_oe):
        m.center.copy_(torch.tensor([0.1, -0.2, 0.3, 0.5]))
    d = squared_distance(out, plain.center)
    assert torch.allclose(plain.loss(out, is_normal), d[:3].mean())
    assert torch.allclose(with_oe.loss(out, is_normal), d.mean())
    assert (plain.with_oe, with_oe.with_oe) == (False, True) and DeepSVDD.oe_use == "none"
    assert DeepSVDD.trains_with_oe({"with_oe": True}) and not DeepSVDD.trains_with_oe({})


def test_deep_svdd_with_oe_trains_on_oe_batches(make_cfg, tmp_path):
    cfg = validate_config(make_cfg("method=deep_svdd", "method.with_oe=yes", "oe_size=4", "epochs=1", "milestones=[]"))
    assert cfg.method.with_oe is True and uses_oe(cfg)
    assert not uses_oe(validate_config(make_cfg("method=deep_svdd")))
    record = run_job(cfg, tmp_path / "svdd-oe")
    assert record["oe"] == "npy" and record["oe_count"] == 4 and record["train_auroc"] is not None


# -- an OE pool of listed images (single-image cells) ------------------------------------------------------------
def test_npy_pool_restricted_to_listed_images(oe_npy):
    full = NpyPool(str(oe_npy))
    one = NpyPool(str(oe_npy), indices=[37])
    two = NpyPool(str(oe_npy), indices=[40, 3])
    assert len(one) == 1 and torch.equal(one.load(np.array([0])), full.load(np.array([37])))
    assert len(two) == 2 and torch.equal(two.load(np.array([1])), full.load(np.array([3])))
    for bad, message in (([64], "outside"), ([3, 3], "twice"), ([], "at least one"), ([1.5], "integer")):
        with pytest.raises(OEADError, match=f"oe.indices.*{message}"):
            NpyPool(str(oe_npy), indices=bad)


def test_a_job_with_one_listed_oe_image_trains_on_that_image_only(make_cfg, oe_npy, tmp_path):
    cfg = make_cfg("method=hsc", "oe.indices=[37]", "epochs=1", "milestones=[]")
    record = run_job(cfg, tmp_path / "one")
    assert record["oe_count"] == 1 and record["config"]["oe"]["indices"] == [37]
    with pytest.raises(OEADError, match="oe_size=2: larger than the OE pool"):
        validate_config(make_cfg("oe.indices=[37]", "oe_size=2"))

"""CLIP methods on a tiny randomly initialised open_clip model (a custom config registered here): no downloads."""

import json
import math
import time
from functools import partial

import huggingface_hub
import numpy as np
import open_clip
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from PIL import Image
from safetensors.torch import save_file

from conftest import tiny_overrides
from oe_ad.config import CONF_DIR
from oe_ad.config.factory import build_datamodule
from oe_ad.config.schema import resolve_milestones
from oe_ad.data.benchmarks import normal_class_names
from oe_ad.errors import OEADError
from oe_ad.job.lightning import run_job
from oe_ad.job.scores import read_scores
from oe_ad.methods.clip_bce import CLIPBCE
from oe_ad.nets import clip as clipnet
from oe_ad.nets.clip import CLIPNet, anomaly_log_odds, prompt_logits, prompts
from oe_ad.predict import predict
from oe_ad.sweep import expand

TINY = "oe-ad-tiny-clip"
TINY_OVERRIDES = ("net=clip", f"net.model={TINY}", "net.pretrained=null")


@pytest.fixture(scope="module", autouse=True)
def tiny_model(tmp_path_factory):
    """Register a 1-layer, 16-d open_clip architecture with a 48x48 input (32x32 images get upsampled)."""
    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 48, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    path = tmp_path_factory.mktemp("clip_cfg") / f"{TINY}.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return TINY


@pytest.fixture
def offline(monkeypatch):
    """No download may start: the hub is offline and any direct download fails the test."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(open_clip, "download_pretrained", lambda *a, **k: pytest.fail("a download was attempted"))


def tiny_net(**kwargs) -> CLIPNet:
    return CLIPNet(TINY, **{"pretrained": None, **kwargs})


# -- prompts and the score ------------------------------------------------------------------------------------
def test_prompts_one_vs_rest_and_leave_one_class_out():
    classes = ["acorn", "american_alligator", "banjo"]
    assert prompts(normal_class_names(classes, 1, "ovr")) == ["a photo of a american alligator", "a photo of something"]
    assert prompts(normal_class_names(classes, 1, "loo")) == [
        "a photo of a acorn",
        "a photo of a banjo",
        "a photo of something",
    ]


def test_score_is_the_softmax_probability_of_the_anomaly_prompt_with_logit_scale_100():
    text = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])  # 2 normal prompts + anomaly
    angles = torch.tensor([0.1, 0.7, 1.2])
    images = torch.stack([angles.cos(), 0.5 * angles.sin(), angles.sin()], 1) * 3  # unnormalised on purpose
    logits = prompt_logits(images, text)
    for i in range(3):
        cos = [float(F.cosine_similarity(images[i], t, dim=0)) for t in text]
        expected = math.exp(100 * cos[2]) / sum(math.exp(100 * c) for c in cos)  # docs/methods.md, CLIP zero-shot
        assert torch.sigmoid(anomaly_log_odds(logits[i : i + 1])).item() == pytest.approx(expected, rel=1e-4)
    # the log-odds keep ranking where the float32 probability has saturated to 1.0
    far = prompt_logits(torch.tensor([[0.0, 0.0, 1.0], [0.01, 0.0, 1.0]]), text)
    assert (far.softmax(1)[:, -1] == 1.0).all() and anomaly_log_odds(far)[0] > anomaly_log_odds(far)[1]


def test_bce_cl_loss_targets_the_best_normal_prompt_for_normal_and_the_anomaly_prompt_for_oe():
    logits = torch.tensor([[3.0, 5.0, 1.0], [4.0, 2.0, 9.0], [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]])
    is_normal = torch.tensor([True, True, False, False])
    expected = F.cross_entropy(logits, torch.tensor([1, 0, 2, 2]))
    assert CLIPBCE.loss(None, logits, is_normal) == pytest.approx(expected.item())


# -- preprocessing ----------------------------------------------------------------------------------------------
def test_preprocessing_upsamples_to_the_model_size_and_normalises_with_clip_statistics():
    net = tiny_net()
    x = torch.full((2, 3, 32, 32), 0.5)
    out = net.preprocess(x)
    mean, std = torch.tensor(open_clip.OPENAI_DATASET_MEAN), torch.tensor(open_clip.OPENAI_DATASET_STD)
    assert out.shape == (2, 3, 48, 48)
    torch.testing.assert_close(out, ((0.5 - mean) / std)[None, :, None, None].expand(2, 3, 48, 48))
    wide = net.preprocess(torch.rand(1, 3, 32, 64))  # shortest side to 48, then a centre crop
    assert wide.shape == (1, 3, 48, 48)
    same = torch.rand(1, 3, 48, 48)
    torch.testing.assert_close(net.preprocess(same), (same - mean[:, None, None]) / std[:, None, None])


def test_preprocessing_matches_open_clips_pil_transform_on_a_natural_looking_image():
    """Same geometry as open_clip's PIL pipeline; only the bicubic kernel differs (torch a=-0.75, PIL a=-0.5)."""
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    image = np.asarray(coarse.resize((32, 32), Image.BILINEAR))  # smooth, with edges, like a photo
    net = tiny_net()
    ref = open_clip.image_transform(48, is_train=False)(Image.fromarray(image))
    ours = net.preprocess(torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255)[0]
    assert (ref - ours).abs().mean() < 0.01  # ~0.7 grey levels in CLIP's normalised units


def test_clip_batches_arrive_in_unit_range_and_end_to_end_methods_keep_their_normalisation(make_cfg):
    dm = build_datamodule(make_cfg("method=clip_bce", *TINY_OVERRIDES))
    dm.setup("fit")
    x, is_normal = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 3, 32, 32) and (~is_normal).sum() == 16
    assert x.min() > -0.01 and x.max() < 1.01 and x.std() > 0.05  # augmented, not normalised
    x_test, _ = next(iter(dm.test_dataloader()))
    torch.testing.assert_close(x_test, dm.test_images[: len(x_test)].float() / 255)
    bce = build_datamodule(make_cfg("method=bce"))
    bce.setup("fit")
    assert min(bce.normalisation["mean"]) > 0.1 and max(bce.normalisation["std"]) < 0.5


def test_cpu_forward_stays_fp32():
    net = tiny_net(autocast="bfloat16")
    assert net(torch.rand(2, 3, 32, 32)).dtype == torch.float32


# -- methods ---------------------------------------------------------------------------------------------------
def test_bce_cl_gradients_reach_the_image_encoder_only():
    net = tiny_net()
    method = CLIPBCE(net, optimizer=partial(torch.optim.SGD, momentum=0.9, nesterov=True), lr=0.1)
    method.set_normal_classes(["class0"])
    assert method.text_features.shape == (2, 16) and not method.text_features.requires_grad
    x, is_normal = torch.rand(8, 3, 32, 32), torch.arange(8) < 4
    method.loss(method(x), is_normal).backward()
    visual = [p for n, p in net.clip.named_parameters() if n.startswith("visual.")]
    text = [p for n, p in net.clip.named_parameters() if not n.startswith("visual.")]
    assert all(p.grad is not None for p in visual) and sum(float(p.grad.abs().sum()) for p in visual) > 0
    assert all(p.grad is None and not p.requires_grad for p in text)
    opt = method.configure_optimizers()["optimizer"]
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in visual}


def test_zero_shot_skips_fit_ignores_oe_and_writes_a_record(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(pl.Trainer, "fit", lambda *a, **k: pytest.fail("fit ran for a zero-shot method"))
    record = run_job(make_cfg("method=clip_zero_shot", *TINY_OVERRIDES), tmp_path / "zs")
    assert (tmp_path / "zs" / "result.json").exists() and 0 <= record["test_auroc"] <= 1
    assert record["method"] == "clip_zero_shot" and record["oe"] == "none" and record["train_auroc"] is None
    assert record["normalisation"]["mean"] == [0.0, 0.0, 0.0]


def test_zero_shot_runs_with_oe_none_on_leave_one_class_out(folder_root, oe_npy, tmp_path):
    overrides = [o for o in tiny_overrides(folder_root, oe_npy, tmp_path) if not o.startswith("oe")]
    overrides += ["method=clip_zero_shot", "oe=none", "benchmark=loo", *TINY_OVERRIDES]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    record = run_job(cfg, tmp_path / "loo")
    assert record["benchmark"] == "loo" and record["oe"] == "none" and 0 <= record["test_auroc"] <= 1


def test_bce_cl_trains_with_oe_and_writes_a_record(make_cfg, tmp_path):
    record = run_job(make_cfg("method=clip_bce", "epochs=1", "milestones=[]", *TINY_OVERRIDES), tmp_path / "bcecl")
    assert (tmp_path / "bcecl" / "result.json").exists() and record["oe_count"] == 64
    assert record["train_auroc"] is not None and 0 <= record["test_auroc"] <= 1


@pytest.mark.parametrize("method", ["clip_zero_shot", "clip_bce"])
def test_predict_on_a_clip_model_pt_gives_the_test_runs_scores(method, make_cfg, folder_root, tmp_path):
    """model.pt keeps the facts the method was prepared with (the prompts' class names): predict rebuilds the
    prompts before loading the weights, so a zero-shot and a fine-tuned CLIP score the test set as their job did.
    The weights come from a local file, so the frozen towers predict rebuilds are the trained job's."""
    torch.manual_seed(0)
    weights = tmp_path / "weights.pt"
    torch.save(tiny_net().clip.state_dict(), weights)
    overrides = [*TINY_OVERRIDES[:-1], f"net.pretrained={weights}", "epochs=1", "milestones=[]"]
    run_job(make_cfg(f"method={method}", *overrides), tmp_path / "job")
    rows = predict(tmp_path / "job" / "model.pt", folder_root / "test")
    expected, _ = read_scores(tmp_path / "job" / "scores.csv")
    np.testing.assert_allclose([s for _, s in rows], expected.numpy(), rtol=1e-4, atol=1e-4)


# -- configuration ---------------------------------------------------------------------------------------------
def test_clip_methods_default_to_the_clip_net_and_the_paper_schedule(make_cfg):
    zs = make_cfg("method=clip_zero_shot")
    assert (zs.net.model, zs.net.pretrained) == ("ViT-B-32", "openai")
    bce = make_cfg("method=clip_bce", "epochs=80", "milestones=[50,60,70,75]")
    opt = bce.method.optimizer
    assert (opt._target_, opt.momentum, opt.nesterov, opt.weight_decay) == ("torch.optim.SGD", 0.9, True, 1e-3)
    assert bce.lr == 2e-5 and make_cfg("method=clip_bce", "lr=1e-4").lr == 1e-4
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["method=clip_bce", "data=folder"])
    assert (cfg.epochs, resolve_milestones(cfg.milestones, cfg.epochs), cfg.lr) == (80, [50, 60, 70, 75], 2e-5)


def test_zero_shot_sweep_is_one_job_per_class_unless_seeds_are_asked_for():
    jobs = expand(["method=clip_zero_shot", "oe=none"])
    assert len(jobs) == 10 and all("seed=0" in job for job in jobs)
    assert len(expand(["method=clip_zero_shot", "seed=0,1"])) == 20
    assert len(expand(["method=clip_bce"])) == 100


# -- weights ---------------------------------------------------------------------------------------------------
def test_weights_load_from_a_local_state_dict(tmp_path):
    torch.manual_seed(0)
    source = tiny_net()
    path = tmp_path / "weights.pt"
    torch.save(source.clip.state_dict(), path)
    save_file(source.clip.state_dict(), tmp_path / "weights.safetensors")  # the Hub's checkpoint format
    for file in (path, tmp_path / "weights.safetensors"):
        torch.manual_seed(1)
        loaded = tiny_net(pretrained=str(file))
        for (name, a), b in zip(source.clip.state_dict().items(), loaded.clip.state_dict().values()):
            torch.testing.assert_close(a, b, msg=name)
    torch.save({"nope": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(OEADError, match="cannot load it into"):
        tiny_net(pretrained=str(tmp_path / "wrong.pt"))
    with pytest.raises(OEADError, match="no such file, nor an open_clip tag"):
        tiny_net(pretrained=str(tmp_path / "missing.pt"))


def test_an_uncached_tag_fails_fast_offline_with_a_one_line_message(offline, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(OEADError) as err:
        CLIPNet("ViT-B-32", pretrained="openai", cache_dir=str(tmp_path))
    assert time.perf_counter() - t0 < 10
    message = str(err.value)
    assert "\n" not in message and "net.pretrained=openai" in message
    assert "net.pretrained=/path/to/weights.pt" in message


def test_without_hf_offline_an_unreachable_hub_also_fails_fast(offline, monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "https://hub.invalid")  # RFC 2606: never resolves
    t0 = time.perf_counter()
    with pytest.raises(OEADError, match="hub.invalid cannot be reached"):
        clipnet.resolve_weights("ViT-B-32", "openai", cache_dir=str(tmp_path))
    assert time.perf_counter() - t0 < 10


def test_a_cached_tag_resolves_to_the_cached_file_without_network(offline, tmp_path):
    snapshot = tmp_path / "models--timm--vit_base_patch32_clip_224.openai" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    path, tag_cfg = clipnet.resolve_weights("ViT-B-32", "openai", cache_dir=str(tmp_path))
    assert path == str(snapshot / "open_clip_model.safetensors") and tag_cfg["quick_gelu"] is True


def test_an_offline_clip_job_raises_the_one_line_error_and_writes_no_record(offline, make_cfg, tmp_path):
    with pytest.raises(OEADError, match="net.pretrained=/path/to/weights.pt"):
        run_job(make_cfg("method=clip_zero_shot", f"net.cache_dir={tmp_path}/hub"), tmp_path / "job")
    assert not list(tmp_path.rglob("result.json"))


def test_an_unknown_architecture_is_a_one_line_error():
    with pytest.raises(OEADError, match="net.model=ViT-Nope"):
        CLIPNet("ViT-Nope", pretrained=None)


@pytest.mark.slow
def test_cli_offline_tag_exits_nonzero_within_seconds_with_one_error_line(folder_root, oe_npy, tmp_path):
    from test_cli import records, run_cli

    args = [a for a in tiny_overrides(folder_root, oe_npy, tmp_path / "runs") if not a.startswith("oe")]
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    t0 = time.perf_counter()
    proc = run_cli(*args, "method=clip_zero_shot", "oe=none", cwd=tmp_path, env=env)
    elapsed = time.perf_counter() - t0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "net.pretrained=/path/to/weights.pt" in errors[0]
    assert "Traceback" not in proc.stderr and records(tmp_path) == []
    assert elapsed < 60, elapsed  # interpreter start and imports included; the weight lookup itself is instant

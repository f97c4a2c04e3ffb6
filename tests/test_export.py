"""``oe-ad-export``: the TorchScript and ONNX files score the test images as ``oe-ad-predict`` does (run by plain
torch and by onnxruntime, without oe_ad), for a CNN and for a tiny random open_clip model; the JSON sidecar says
what a user needs; errors are one line; docs/export.md's example runs."""

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import open_clip
import pytest
import torch

from oe_ad import __version__
from oe_ad.data.images import decode, list_images
from oe_ad.export import main
from oe_ad.job.checkpoint import read_model_file
from oe_ad.predict import main as predict_main

DOC = Path(__file__).resolve().parents[1] / "docs" / "export.md"
TINY_CLIP = "oe-ad-tiny-clip-export"


def run(capsys, main_fn, *args: str) -> tuple[int, str, str]:
    try:
        main_fn([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def predicted(capsys, job: Path, images: Path, tmp: Path) -> np.ndarray:
    """``oe-ad-predict``'s scores of every image of ``images`` (its CSV, in its order), on the CPU as the exported
    files run here (a GPU's convolutions, TF32 included, differ from the CPU's by more than 1e-5)."""
    code, _, err = run(capsys, predict_main, job, images, "-o", tmp / "predict.csv", "--device", "cpu")
    assert code == 0, err
    with open(tmp / "predict.csv") as fh:
        return np.array([float(row["score"]) for row in csv.DictReader(fh)])


def batch_of(images: Path, size: int, kind: str) -> np.ndarray:
    """The images as the exported file takes them: uint8 (N, H, W, 3) or float32 (N, 3, H, W) in [0, 1]."""
    batch = np.stack([decode(f, size) for f in list_images(images)])
    return batch if kind == "uint8" else batch.transpose(0, 3, 1, 2).astype(np.float32) / 255


def run_exported(path: Path, batch: np.ndarray) -> np.ndarray:
    """Scores from the exported file alone: ``torch.jit.load`` or an onnxruntime session."""
    if path.suffix == ".onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = session.run(["scores"], {"images": batch})
        return out
    with torch.no_grad():
        return torch.jit.load(str(path))(torch.from_numpy(batch)).numpy()


@pytest.fixture(scope="module")
def job(trained_job, tmp_path_factory) -> Path:
    """A copy of the tiny trained HSC job (CNN32): exports go into its folder, not the shared fixture's."""
    copy = tmp_path_factory.mktemp("export") / "job"
    shutil.copytree(trained_job.dir, copy)
    return copy


@pytest.mark.parametrize("kind", ["uint8", "float"])
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_the_exported_file_scores_as_oe_ad_predict(fmt, kind, job, folder_root, tmp_path, capsys):
    out = tmp_path / f"model-{kind}.{'onnx' if fmt == 'onnx' else 'pt'}"
    code, stdout, err = run(capsys, main, job, "--format", fmt, "--input", kind, "-o", out)
    assert code == 0, err
    assert f"-> {out}" in stdout and f"-> {out}.json" in stdout
    expected = predicted(capsys, job, folder_root / "test", tmp_path)
    got = run_exported(out, batch_of(folder_root / "test", 32, kind))  # 36 images, traced with 2
    assert got.dtype == np.float32 and got.shape == expected.shape == (36,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    if fmt == "onnx":
        onnx.checker.check_model(str(out))  # a valid ONNX graph, weights inside (one file)
        assert not list(out.parent.glob("*.data"))


def test_the_sidecar_says_what_a_user_needs(job, trained_job):
    code = main([str(job), "--format", "onnx"]) or 0
    assert code == 0
    out = job / "model.onnx"
    meta = json.loads((job / "model.onnx.json").read_text())
    payload = read_model_file(job / "model.pt")
    assert meta["format"] == "onnx" and meta["file"] == "model.onnx" and meta["method"] == "hsc"
    assert meta["normal_classes"] == ["class0"] and meta["classes"] == ["class0", "class1", "class2"]
    assert meta["input"] == {
        "dtype": "uint8",
        "layout": "NHWC",
        "range": [0, 255],
        "shape": ["N", 32, 32, 3],
        "channels": "RGB",
        "name": "images",
    }
    assert meta["image_size"] == 32 and meta["crop"] == 32 and meta["larger_is_anomalous"] is True
    assert meta["normalisation"] == {k: payload["preprocessing"][k] for k in ("mean", "std")}
    assert meta["thresholds"]["percentiles"] == payload["normal_scores"]["percentiles"]
    assert set(meta["thresholds"]["percentiles"]) == {"50", "90", "95", "99", "99.9"}
    assert meta["versions"] == {"oe_ad": __version__, "torch": torch.__version__}
    assert meta["config_hash"] == trained_job.record["config_hash"] == payload["config_hash"]
    assert meta["output"]["meaning"].startswith("h(phi(x))")
    assert len(meta["file_sha256"]) == 64 and len(meta["model_sha256"]) == 64
    from oe_ad.atomic import file_sha256

    assert meta["file_sha256"] == file_sha256(out)


# -- CLIP: a tiny random open_clip model (no download) ----------------------------------------------------------
@pytest.fixture(scope="module")
def clip_job(tmp_path_factory, folder_root, oe_npy) -> Path:
    """A zero-shot CLIP job on a 1-layer, 16-d open_clip architecture (random weights), as tests/test_clip.py."""
    from hydra import compose, initialize_config_dir

    from conftest import tiny_overrides
    from oe_ad.config import CONF_DIR
    from oe_ad.job.lightning import run_job

    tmp = tmp_path_factory.mktemp("clip_export")
    arch = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 48, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (tmp / f"{TINY_CLIP}.json").write_text(json.dumps(arch))
    open_clip.add_model_config(tmp / f"{TINY_CLIP}.json")
    clip = ("method=clip_zero_shot", "net=clip", f"net.model={TINY_CLIP}", "net.pretrained=null")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*tiny_overrides(folder_root, oe_npy, tmp), *clip])
    run_job(cfg, tmp / "job")
    return tmp / "job"


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_clip_model_exports_and_scores_as_oe_ad_predict(fmt, clip_job, folder_root, tmp_path, capsys):
    """CLIP's own preprocessing (bicubic antialiased resize 32 -> 48, CLIP's mean/std) is inside the file."""
    out = tmp_path / f"clip.{fmt}"
    code, _, err = run(capsys, main, clip_job, "--format", fmt, "-o", out)
    assert code == 0, err
    expected = predicted(capsys, clip_job, folder_root / "test", tmp_path)
    got = run_exported(out, batch_of(folder_root / "test", 32, "uint8"))
    # onnxruntime's antialiased bicubic resize differs from torch's in the last float bits
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4 if fmt == "onnx" else 1e-5)
    meta = json.loads(Path(f"{out}.json").read_text())
    assert meta["method"] == "clip_zero_shot" and meta["normalisation"]["mean"] == [0.0, 0.0, 0.0]


def test_a_network_that_does_not_trace_is_refused_in_one_line(job, tmp_path, capsys, monkeypatch):
    def fails(*args, **kwargs):
        raise RuntimeError("Dynamic control flow is not supported\n  File ... (forty lines of trace)")

    monkeypatch.setattr(torch.onnx, "export", fails)
    code, _, err = run(capsys, main, job, "--format", "onnx", "-o", tmp_path / "x.onnx")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: checkpoint=") and "cannot be exported to onnx" in err
    assert "RuntimeError: Dynamic control flow is not supported" in err and "forty" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    "args, expected",
    [
        (["JOB"], "the following arguments are required: --format"),
        (["JOB", "--format", "tflite"], "argument --format: invalid choice: 'tflite'"),
        (["JOB", "--format", "onnx", "--input", "bgr"], "argument --input: invalid choice: 'bgr'"),
        (["NOPE", "--format", "onnx"], "no such file"),
        (["JOB", "--format", "onnx", "-o", "DIR"], "--output DIR: is a directory"),
        (["BROKEN", "--format", "torchscript"], "not a readable model.pt"),
    ],
)
def test_export_errors_are_one_line(args, expected, job, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.pt").write_bytes(b"not a checkpoint")
    paths = {"JOB": str(job), "NOPE": str(tmp_path / "nope"), "DIR": str(tmp_path), "BROKEN": str(broken)}
    code, out, err = run(capsys, main, *[paths.get(a, a) for a in args])
    expected = expected.replace("DIR", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("*.json"))


def test_the_docs_example_scores_with_plain_torch_and_onnxruntime(job, folder_root, capsys):
    """docs/export.md's Python block, on the tiny job (both files exported first) and a class folder."""
    for fmt in ("onnx", "torchscript"):
        assert run(capsys, main, job, "--format", fmt)[0] == 0
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    code, n = re.subn(r"^job = .*$", f"job = Path({str(job)!r})", code, count=1, flags=re.M)
    images = folder_root / "test" / "class1"
    code, m = re.subn(r"^images = .*$", f"images = Path({str(images)!r})", code, count=1, flags=re.M)
    assert n == m == 1, "docs/export.md's example no longer starts from `job = ...` and `images = ...`"
    exec(compile(code, str(DOC), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    expected = predicted(capsys, job, images, job.parent)
    assert len(lines) == 12 and [line.split()[0] for line in lines] == [f.name for f in list_images(images)]
    np.testing.assert_allclose([float(line.split()[1]) for line in lines], expected, atol=1e-4)
    assert all(line.split()[2] in ("normal", "anomalous") for line in lines)

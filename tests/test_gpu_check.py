"""benchmarks/gpu_check.py --smoke on the CPU: every section runs and lands in the JSON and the table, so the
script is known to work before it first runs on a GPU (docs/gpu.md)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.mark.slow
def test_smoke_run_writes_every_section_to_the_json_and_the_table(tmp_path):
    # generous caps: the CPU of a shared machine may be many times slower than a quiet one
    cmd = [sys.executable, str(SCRIPT), str(tmp_path), "--smoke", "--cap-scale", "20"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {"environment", "wall_s", "all_passed", "sections", "table"} <= result.keys()
    assert result["environment"]["smoke"] is True and result["all_passed"] is False  # smoke proves nothing about a GPU
    sections = result["sections"]
    assert sorted(sections) == ["1", "2", "3", "4", "5", "6"]
    for number, sec in sections.items():
        assert sec["status"] == "ok", (number, sec["reason"])
        assert sec["rows"], number
    e2e = sections["1"]["data"]
    for key in ("job_img_s", "raw_img_s", "job_over_raw", "dataloader_img_s", "job_over_dataloader", "test_auroc"):
        assert e2e[key] > 0, key
    # grouped and split convolutions are the same function: in float64 their losses agree over the steps
    assert sections["3"]["data"]["grouped_vs_split"]["within_tolerance"]
    assert math.isfinite(sections["3"]["data"]["grouped_vs_split_fp32"]["max_abs_diff"])
    assert set(sections["6"]["data"]) >= {"table1-cifar10", "fig2-cifar10", "search"}
    assert sections["6"]["data"]["table1-cifar10"]["jobs"] == 400
    assert sections["6"]["data"]["fig2-cifar10"]["jobs"] == 3800
    assert sections["6"]["data"]["search"]["models"] == 64 * 50 * 2
    table = proc.stdout
    assert table.splitlines()[0] == "| § | measure | value | goal | check |"
    assert "n/a on CPU" in table and "failed" not in table
    assert (tmp_path / "gpu_check.md").read_text().strip() == result["table"]


def test_a_failing_section_is_marked_failed_and_the_others_still_run(tmp_path):
    import gpu_check
    from gpu_sections import Section

    sec, later = Section(1, "broken"), Section(2, "fine")
    gpu_check.run_section(sec, lambda s, ctx: 1 / 0, 60, 10, None)
    gpu_check.run_section(later, lambda s, ctx: s.add("x", "1"), 60, 10, None)
    assert sec.status == "failed" and sec.reason.startswith("ZeroDivisionError")
    assert sec.rows[-1].check.startswith("failed: ZeroDivisionError")
    assert later.status == "ok"
    skipped = Section(3, "late")
    gpu_check.run_section(skipped, lambda s, ctx: None, 1, 10, None)
    assert skipped.status == "skipped" and "out of time budget" in skipped.reason


def test_a_section_over_its_cap_is_stopped():
    import time

    import gpu_check
    from gpu_sections import Section

    sec = Section(4, "slow")
    gpu_check.run_section(sec, lambda s, ctx: time.sleep(30), 60, 3.5, None)
    assert sec.status == "failed" and "time cap" in sec.reason and sec.seconds < 10


def test_projection_sweep_sizes_come_from_the_experiment_configs():
    from gpu_projections import sweep

    assert sweep("table1-cifar10") == (400, 200)
    assert sweep("fig2-cifar10") == (3800, 200)
    assert sweep("table3-cifar10")[1] == 30


def test_without_a_gpu_the_full_check_refuses_in_one_line(tmp_path, capsys):
    import gpu_check
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gpu_check.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no CUDA device")


@pytest.mark.parametrize(
    ("pool", "indices", "auc", "checks"),
    [
        ("reference", "same", 0.904, ["info", "pass", "pass"]),  # 0.9 points from the stored 0.895
        ("reference", "same", 0.910, ["info", "pass", "fail"]),
        ("reference", "other", 0.895, ["info", "fail", "pass"]),
        ("own", "other", 0.700, ["info", "info"]),  # a user's own data: shown, not judged
    ],
)
def test_section_2_judges_only_the_reference_data(tmp_path, monkeypatch, pool, indices, auc, checks):
    import types

    import gpu_check
    import gpu_sections
    import numpy as np
    from gpu_sections import Context, Section

    reference = tmp_path / "reference.npy"
    np.save(reference, np.zeros((4, 32, 32, 3), np.uint8))
    own = tmp_path / "own.npy"
    np.save(own, np.ones((4, 32, 32, 3), np.uint8))
    ref = {"oe_shape": [4, 32, 32, 3], "oe_sha256": gpu_sections.sha256(reference)}
    ref |= {"oe_indices_sha256": "abc", "test_auroc": 0.895}
    monkeypatch.setattr(gpu_sections, "reference", lambda: ref)
    first = Section(1, "job")
    first.data = {"test_auroc": auc, "record_device": "cuda", "oe_indices_sha256": "abc" if indices == "same" else "x"}
    s = types.SimpleNamespace(smoke=False)
    ctx = Context(s, tmp_path, tmp_path, reference if pool == "reference" else own, gpu_check.verdict, {1: first})
    sec = Section(2, "agreement")
    gpu_sections.agreement(sec, ctx)
    assert [r.check for r in sec.rows] == checks
    assert sec.data["reference_pool"] is (pool == "reference")


def test_gpu_check_data_writes_the_cifar10_folder_and_the_cifar100_pool(cifar_root, tmp_path):
    """`make gpu-check` without GPU_DATA/GPU_OE prepares its data with benchmarks/gpu_check_data.py: every CIFAR-10
    image losslessly as train|test/<class>/<index>.png, CIFAR-100's training images as (N, 32, 32, 3) uint8."""
    import pickle
    import shutil

    import gpu_check_data
    import numpy as np
    from PIL import Image

    from oe_ad.data.sources import CIFAR10

    cifar_root = Path(shutil.copytree(cifar_root, tmp_path / "cifar"))  # conftest's fake CIFAR-10, + a CIFAR-100
    base = cifar_root / "cifar-100-python"
    base.mkdir()
    rng = np.random.default_rng(5)
    for name, n in (("train", 12), ("test", 4)):
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        with open(base / name, "wb") as fh:
            pickle.dump({"data": data, "fine_labels": [k % 100 for k in range(n)]}, fh)
    out = tmp_path / "gpu-check"
    assert gpu_check_data.main([str(out), "--cifar-root", str(cifar_root)]) == 0
    train, test = CIFAR10(str(cifar_root), download=False).load()
    for split, part in (("train", train), ("test", test)):
        files = sorted((out / "cifar10" / split).glob("*/*.png"))
        assert len(files) == len(part.labels)
        for f in files[:5] + files[-5:]:
            i = int(f.stem)
            assert f.parent.name == CIFAR10.classes[int(part.labels[i])]
            assert np.array_equal(np.asarray(Image.open(f)), part.images[i].permute(1, 2, 0).numpy())
    with open(base / "train", "rb") as fh:
        raw = pickle.load(fh)["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    oe = np.load(out / "cifar100-oe.npy")
    assert oe.dtype == np.uint8 and np.array_equal(oe, raw)
    assert not list(out.glob("*partial*"))
    stamp = (out / "cifar100-oe.npy").stat().st_mtime_ns
    assert gpu_check_data.main([str(out), "--cifar-root", str(cifar_root)]) == 0  # already there: kept
    assert (out / "cifar100-oe.npy").stat().st_mtime_ns == stamp

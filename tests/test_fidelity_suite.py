"""benchmarks/fidelity.py: its variants, how it finds a job's record, and (slow) a resumed run on tiny data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import fidelity  # noqa: E402


def test_the_full_suite_holds_the_issues_cells():
    full = {v.key: v for v in fidelity.variants("full")}
    cells = {v.cell for v in full.values() if v.cell}
    methods = ("hsc", "bce", "focal", "dsad", "dsvdd")
    assert {f"c1-{m}-full" for m in methods} <= cells
    assert {f"c1-{m}-n{n}" for m in ("hsc", "bce") for n in (1, 16)} <= cells
    assert {f"c1-{m}-img{i}" for m in ("hsc", "bce") for i in fidelity.IMAGES} <= cells
    assert "c1-dsvdd-none" in cells
    assert all(len(v.seeds) == 3 for v in full.values() if v.group != "images")
    assert {v.method: v.seeds for v in full.values() if v.group == "images"} == {"hsc": (0, 1, 2, 3, 4), "bce": (0, 1)}
    options = {v.key: v.overrides for v in full.values() if v.group == "options"}
    assert sorted(options.values()) == [
        ("batches.augment=per_sample",),
        ("batches.last=remainder",),
        ("batches.oe=paper",),
    ]
    assert all(full[k].baseline == "hsc-full" for k in options)
    assert [v.key for v in fidelity.variants("quick")] == ["hsc-full", "bce-full"]
    jobs = fidelity.jobs_in_order(list(full.values()))
    assert len(jobs) == len({(j.variant.key, j.seed) for j in jobs}) == sum(len(v.seeds) for v in full.values())
    assert jobs[0].variant.key == "hsc-full" and jobs[-1].variant.group == "images"


def test_the_single_image_indices_are_the_reference_files():
    import numpy as np

    assert tuple(sorted(np.random.default_rng(2022).choice(30000, 6, replace=False).tolist())) == fidelity.IMAGES


def record(config: dict, seed: int = 0, epochs: int = 12, milestones: tuple = (6, 9)) -> dict:
    return {
        "seed": seed,
        "normal_class": 1,
        "epochs": epochs,
        "method": "hsc",
        "test_auroc": 0.9,
        "config": {"milestones": list(milestones), **config},
    }


def test_a_record_matches_its_variant_only():
    v = fidelity.Variant("x", "hsc", ("batches.oe=paper", "oe.indices=[5]", "method.with_oe=true"))
    good = record({"batches": {"oe": "paper"}, "oe": {"indices": [5]}, "method": {"with_oe": True}})
    assert fidelity.matches(good, fidelity.Job(v, 0))
    assert not fidelity.matches(good, fidelity.Job(v, 1))  # another seed
    assert not fidelity.matches({**good, "epochs": 1}, fidelity.Job(v, 0))
    other = record({"batches": {"oe": "auto"}, "oe": {"indices": [5]}, "method": {"with_oe": True}})
    assert not fidelity.matches(other, fidelity.Job(v, 0))
    assert not fidelity.matches(
        record({"oe": {"indices": [5]}, "method": {"with_oe": True}}), fidelity.Job(v, 0)
    )  # no key
    assert fidelity.matches(record({}, epochs=1, milestones=()), fidelity.Job(fidelity.Variant("y", "hsc"), 0), (1, ()))


@pytest.mark.slow
def test_quick_suite_runs_resumes_and_prints_the_table(folder_root, oe_npy, tmp_path):
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"cells": {"c1-hsc-full": {"runs": [50.0, 52.0, 51.0]}}}))
    base = [
        sys.executable,
        str(BENCH / "fidelity.py"),
        "--suite",
        "quick",
        "--data",
        str(folder_root),
        "--oe",
        str(oe_npy),
        "--references",
        str(refs),
        "--runs",
        str(tmp_path / "runs"),
        "--epochs",
        "1",
        "--milestones",
        "",
        "--nice",
        "0",
        "batch_size=8",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    first = subprocess.run(
        [*base, "--only", "hsc-full", "--json", str(tmp_path / "t.json")], capture_output=True, text=True, timeout=900
    )
    assert "3 of 3 jobs to run" in first.stdout, first.stdout + first.stderr
    table = json.loads((tmp_path / "t.json").read_text())
    hsc = table["cells"]["hsc-full"]
    assert hsc["oe_ad"]["n"] == 3 and hsc["other"]["n"] == 3 and hsc["welch"] is not None
    # the tiny data are trivially separable: ~100 % against the fake 51 %: flagged, exit status 1
    assert table["flagged"] == ["c1-hsc-full"] and first.returncode == 1
    assert "| c1-bce-full | - | 0 | pending |" in first.stdout
    again = subprocess.run([*base, "--only", "hsc-full"], capture_output=True, text=True, timeout=300)
    assert "0 of 3 jobs to run" in again.stdout and again.returncode == 1
    times = json.loads((tmp_path / "runs" / "fidelity-times.json").read_text())
    assert sorted(times) == [f"hsc-full/seed{s}" for s in range(3)]


def test_missing_reference_file_is_one_error_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH / "fidelity.py"), "--no-run", "--references", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: --references") and proc.stderr.count("\n") == 1


def test_no_run_prints_pending_cells_from_an_empty_folder(tmp_path):
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"cells": {"c1-hsc-full": {"runs": [88.0, 89.0]}, "c1-hsc-img2789": {"runs": [70.0]}}}))
    args = ["--suite", "full", "--no-run", "--references", str(refs), "--runs", str(tmp_path / "runs")]
    proc = subprocess.run([sys.executable, str(BENCH / "fidelity.py"), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "| c1-hsc-full | - | 0 | pending | 2 | 88.50 ± 0.71 |" in proc.stdout
    assert "| hsc (oe_ad / paper's code) | - / 70.00 |" in proc.stdout and "## Deep SVDD" in proc.stdout


def test_image_table_gives_rank_agreement_difference_over_the_images_and_repeatability():
    rows = {}
    for k, i in enumerate(fidelity.IMAGES):
        for m in ("hsc", "bce"):
            v = fidelity.Variant(f"{m}-img{i}", m, seeds=(0, 1), cell=f"c1-{m}-img{i}", group="images")
            ours = {0: 50.0 + k, 1: 51.0 + k + (0.25 if k % 2 else -0.25)}  # oe_ad's second run keeps the ranks
            theirs = [55.0 + k, 56.0 + (5 - k)] if m == "hsc" else [60.0 + k, 62.0 + k]  # hsc's second: reversed
            rows[v.key] = fidelity.Row(v, ours, theirs)
    lines, data = fidelity.image_table(rows)
    hsc, bce = data["hsc"], data["bce"]
    # per-image means: oe_ad 50.5..55.5, paper's code 58.0 every image (tied): no rank correlation is defined
    assert hsc["rho"] is None and bce["rho"] == pytest.approx(1.0)
    # the unit is oe_ad's seed (means over the images 52.5 and 53.5) and the paper's run (57.5 and 58.5):
    # difference -5, se sqrt(0.5/2 + 0.5/2), Welch df 2
    assert hsc["over_images"]["diff"] == pytest.approx(-5.0) and hsc["over_images"]["df"] == pytest.approx(2.0)
    assert hsc["over_images"]["t"] == pytest.approx(-5.0 / 0.5**0.5)
    assert bce["over_images"]["diff"] == pytest.approx(53.0 - 63.5)
    assert hsc["repeatability"] == {"oe_ad": pytest.approx(1.0), "paper": pytest.approx(-1.0)}
    assert bce["repeatability"] == {"oe_ad": pytest.approx(1.0), "paper": pytest.approx(1.0)}
    assert any(line.startswith("- hsc: oe_ad − paper's code over the 6 images -5.00 points") for line in lines)
    # both differences are larger than 1 point and significant: flagged by the cells' rule
    assert hsc["over_images"]["p"] < 0.05 and hsc["flag"] and bce["flag"]
    assert all(line.endswith("**FLAG**") for line in lines if line.startswith("- "))
    _, lenient = fidelity.image_table(rows, threshold=20.0)  # no difference is larger than 20 points
    assert not lenient["hsc"]["flag"] and not lenient["bce"]["flag"]


def test_a_seed_shared_by_every_image_is_one_unit_not_six():
    """oe_ad's seed 0 is 3 points low on every image: paired over the images that would look certain (the
    differences have no spread); with the seed as the unit it is one draw of two."""
    rows = {}
    for k, i in enumerate(fidelity.IMAGES):
        v = fidelity.Variant(f"hsc-img{i}", "hsc", seeds=(0, 1), cell=f"c1-hsc-img{i}", group="images")
        rows[v.key] = fidelity.Row(v, {0: 57.0 + k, 1: 60.0 + k}, [60.0 + k + 0.5 * (-1) ** k, 60.0 + k])
    _, data = fidelity.image_table(rows)
    test = data["hsc"]["over_images"]
    assert test["diff"] == pytest.approx(-1.5) and test["p"] > 0.05 and not data["hsc"]["flag"]


def test_times_of_two_suites_on_one_folder_are_merged_not_overwritten(tmp_path):
    path = tmp_path / "fidelity-times.json"
    first, second = fidelity.Times(path), fidelity.Times(path)  # both read the (empty) file at start
    hsc, bce = fidelity.Variant("hsc-full", "hsc"), fidelity.Variant("bce-full", "bce")
    first.add(fidelity.Job(hsc, 0), 300.0)
    second.add(fidelity.Job(bce, 1), 200.0)
    first.add(fidelity.Job(hsc, 1), 100.0)
    on_disk = json.loads(path.read_text())
    assert sorted(on_disk) == ["bce-full/seed1", "hsc-full/seed0", "hsc-full/seed1"]
    assert fidelity.Times(path).total([hsc, bce]) == (600.0, 3)
    assert not list(tmp_path.glob("*.tmp"))


def test_repeatability_is_the_mean_rho_over_every_pair_of_runs():
    ranks = [0, 1, 2, 3, 4, 5]
    third = [5, 4, 3, 2, 1, 0]  # the third run reverses the images' order
    runs = [[(0, 50.0 + r), (1, 60.0 + r), (2, 70.0 + t)] for r, t in zip(ranks, third)]
    # pairs (1, 2): +1, (1, 3): -1, (2, 3): -1 -> mean -1/3
    assert fidelity._repeatability(runs) == pytest.approx(-1 / 3)
    assert fidelity._repeatability([r[:2] for r in runs]) == pytest.approx(1.0)
    assert fidelity._repeatability([runs[0][:1], *runs[1:]]) is None  # one image with a single run

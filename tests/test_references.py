"""The recorded references of the paper's code (benchmarks/references/*.json) and the pure parts of the runner
that produces them (benchmarks/official/): provenance checks, the CIFAR batch writer, AUC parsing, resume."""

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.official import data, jobs, patches, references, runqueue  # noqa: E402

REFERENCE_FILES = sorted((REPO / "benchmarks" / "references").glob("*.json"))
COMMIT = "11054e448223b988c26c636bedb33b4f83b94aca"


# ---- the committed reference files -------------------------------------------------------------------------


def test_there_are_reference_files():
    assert [p.name for p in REFERENCE_FILES] == ["cifar10-12ep.json"]


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda p: p.name)
def test_reference_file_provenance(path):
    doc = json.loads(path.read_text())
    assert references.validate(doc) == []
    assert doc["cells"], "a reference file holds at least one cell"
    for cid, cell in doc["cells"].items():
        assert (cell["normal_class"], cell["epochs"], cell["milestones"]) == (1, 12, [6, 9]), cid
        if cell["oe"] == "image":
            assert cell["oe_index"] in doc["protocol"]["single_images"]["indices"], cid
        for run in cell["runs_detail"]:  # the provenance reads the same anywhere: no path of the machine that ran it
            named = [run["command"], run["data"]["data_folder"], run["data"]["oe_file"]]
            assert not [w for text in named for w in text.split() if w.startswith("/")], run["job"]


def test_a_recorded_command_names_its_paths_by_role(tmp_path):
    roots = {"<python>": "/venv/bin/python", "<eoe>": "/src/eoe", "<work>": "/runs/official", "<checkout>": "/src/oe"}
    cmd = "nice -n 19 /venv/bin/python /src/oe/benchmarks/official/patches.py --eoe /src/eoe --out /runs/official/c1"
    assert runqueue.portable(cmd, roots) == (
        "nice -n 19 <python> <checkout>/benchmarks/official/patches.py --eoe <eoe> --out <work>/c1"
    )


# ---- validate: every provenance field is required ----------------------------------------------------------


def run_record(job: str, auc: float, date: str = "2026-11-29T16:00:00+00:00", draws=("all",)) -> dict:
    cell = job.split("/")[0]
    method, tag = cell.split("-")[1], cell.split("-")[2]
    oe = "full" if tag == "full" else "none" if tag == "none" else "image" if tag.startswith("img") else "subset"
    return {
        "job": job,
        "cell": cell,
        "run": int(job[-1]),
        "method": method,
        "oe": oe,
        "oe_size": int(tag[1:]) if oe == "subset" else 1 if oe == "image" else None,
        "oe_index": int(tag[3:]) if oe == "image" else None,
        "normal_class": 1,
        "epochs": 12,
        "milestones": [6, 9],
        "batch_size": 128,
        "auc": auc,
        "ap": 90.0,
        "date": date,
        "wall_s": 600.0,
        "eoe_commit": COMMIT,
        "command": "python patches.py --eoe eoe -- -o " + method,
        "eoe_args": ["-o", method],
        "oe_indices": None if oe == "none" else list(draws),
        "environment": {"python": "3.11.7", "torch": "2.14.1+cu130", "torchvision": "0.29.1", "numpy": "2.4.6"}
        | {"threads": 1, "cpu": "AMD EPYC"},
        "data": {"oe_sha256": "a" * 64, "cifar_batches_sha256": {"data_batch_1": "b" * 64}, "oe_shape": [30000]},
    }


def valid_doc() -> dict:
    records = [
        run_record("c1-hsc-full/run0", 89.5),
        run_record("c1-hsc-full/run1", 87.9),
        run_record("c1-hsc-img2789/run0", 70.0, draws=([2789],)),
        run_record("c1-bce-n16/run0", 80.0, draws=(list(range(16)),)),
        run_record("c1-dsvdd-none/run0", 50.0),
    ]
    return references.merge(None, records)


def test_validate_accepts_a_complete_file():
    doc = valid_doc()
    assert references.validate(doc) == []
    assert doc["cells"]["c1-hsc-full"]["n"] == 2
    assert doc["cells"]["c1-hsc-full"]["mean"] == 88.7
    assert doc["cells"]["c1-hsc-full"]["sd"] == pytest.approx(1.1314, abs=1e-4)  # |89.5 - 87.9| / sqrt(2)
    assert doc["cells"]["c1-hsc-img2789"]["sd"] is None


@pytest.mark.parametrize(
    "field", ["eoe_commit", "command", "date", "environment", "data", "oe_indices", "auc", "job", "wall_s"]
)
def test_validate_fails_on_a_missing_run_field(field):
    doc = valid_doc()
    del doc["cells"]["c1-hsc-full"]["runs_detail"][0][field]
    problems = references.validate(doc)
    assert any(field in p and "c1-hsc-full.runs_detail[0]" in p for p in problems), problems


@pytest.mark.parametrize("field", ["n", "mean", "sd", "runs", "oe_index", "milestones"])
def test_validate_fails_on_a_missing_cell_field(field):
    doc = valid_doc()
    del doc["cells"]["c1-hsc-img2789"][field]
    assert any(field in p for p in references.validate(doc))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("runs_detail", 0, "eoe_commit"), "11054e4", "40 hex"),
        (("runs_detail", 0, "command"), " ", "empty command"),
        (("runs_detail", 0, "date"), "29.11.2026", "ISO"),
        (("runs_detail", 0, "environment", "torch"), None, "torch"),
        (("runs_detail", 0, "environment", "torch"), "latest", "torch"),
        (("runs_detail", 0, "data", "oe_sha256"), "7a498ab4", "SHA-256"),
        (("runs_detail", 0, "oe_indices"), [[5]], "oe_indices"),
        (("n",), 3, "n 3"),
        (("mean",), 88.0, "mean"),
        (("sd",), None, "sd"),
        (("runs",), [89.5, 88.0], "runs / ap"),
    ],
)
def test_validate_fails_on_a_malformed_field(path, value, message):
    doc = valid_doc()
    target = doc["cells"]["c1-hsc-full"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problems = references.validate(doc)
    assert any(message in p for p in problems), problems


def test_validate_single_image_cell_names_its_pool_index():
    doc = valid_doc()
    doc["cells"]["c1-hsc-img2789"]["oe_index"] = None
    assert any("oe_index" in p for p in references.validate(doc))


def test_merge_keeps_recorded_runs_and_adds_only_new_ones():
    doc = valid_doc()
    again = [run_record("c1-hsc-full/run1", 87.9), run_record("c1-hsc-full/run2", 87.2)]
    merged = references.merge(copy.deepcopy(doc), again)
    cell = merged["cells"]["c1-hsc-full"]
    assert cell["runs"] == [89.5, 87.9, 87.2]
    assert cell["n"] == 3 and cell["mean"] == 88.2  # (89.5 + 87.9 + 87.2) / 3
    assert cell["sd"] == pytest.approx(1.1790, abs=1e-4)
    assert merged["cells"]["c1-bce-n16"] == doc["cells"]["c1-bce-n16"]
    # a re-run of job run0 (a new date) is a further run, not a replacement
    rerun = references.merge(merged, [run_record("c1-hsc-full/run0", 80.0, date="2026-12-01T10:00:00+00:00")])
    assert rerun["cells"]["c1-hsc-full"]["n"] == 4


# ---- the CIFAR batch writer: round trip through torchvision's reader ----------------------------------------


def fake_image_folder(root: Path, classes: list[str], n_train: int, n_test: int) -> dict:
    """PNG (lossless) images of random pixels; returns {(split, class): [HWC arrays in file-name order]}."""
    rng = np.random.default_rng(0)
    images = {}
    for split, n in (("train", n_train), ("test", n_test)):
        for cls in classes:
            (root / split / cls).mkdir(parents=True)
            images[split, cls] = []
            for i in range(n):
                img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(img).save(root / split / cls / f"{i:04d}.png")
                images[split, cls].append(img)
    return images


def test_cifar_batches_round_trip_through_torchvision(tmp_path, monkeypatch):
    classes = ["cat", "airplane", "bird"]  # written in sorted order: airplane 0, bird 1, cat 2
    images = fake_image_folder(tmp_path / "folder", classes, n_train=4, n_test=2)
    manifest = data.write_cifar_batches(tmp_path / "folder", tmp_path / "out")
    assert manifest["classes"] == ["airplane", "bird", "cat"]
    assert (manifest["n_train"], manifest["n_test"]) == (12, 6)
    for attr in ("train_list", "test_list", "meta"):
        monkeypatch.setattr(tvd.CIFAR10, attr, getattr(tvd.CIFAR10, attr))  # restored after the test
    patches.patch_cifar_local({name: f["md5"] for name, f in manifest["files"].items()})

    train = tvd.CIFAR10(tmp_path / "out", train=True, download=False)
    test = tvd.CIFAR10(tmp_path / "out", train=False, download=False)
    assert train.classes == ["airplane", "bird", "cat"]
    assert train.targets == [0] * 4 + [1] * 4 + [2] * 4
    assert test.targets == [0, 0, 1, 1, 2, 2]
    expected_train = np.stack([img for cls in ["airplane", "bird", "cat"] for img in images["train", cls]])
    expected_test = np.stack([img for cls in ["airplane", "bird", "cat"] for img in images["test", cls]])
    np.testing.assert_array_equal(train.data, expected_train)
    np.testing.assert_array_equal(test.data, expected_test)


def test_cifar_batches_use_string_keys(tmp_path):
    import pickle

    fake_image_folder(tmp_path / "folder", ["a", "b"], n_train=5, n_test=1)
    data.write_cifar_batches(tmp_path / "folder", tmp_path / "out")
    with open(tmp_path / "out" / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        batch = pickle.load(f)
    assert set(batch) >= {"data", "labels"}
    assert batch["data"].dtype == np.uint8 and batch["data"].shape == (2, 3072)  # 10 images over 5 batches
    with open(tmp_path / "out" / "cifar-10-batches-py" / "batches.meta", "rb") as f:
        assert pickle.load(f)["label_names"] == ["a", "b"]


def test_torchvision_rejects_the_copy_without_the_patch(tmp_path):
    fake_image_folder(tmp_path / "folder", ["a", "b"], n_train=5, n_test=1)
    data.write_cifar_batches(tmp_path / "folder", tmp_path / "out")
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        tvd.CIFAR10(tmp_path / "out", train=True, download=False)


def test_prepare_requires_cifar10_classes_and_reuses_its_manifest(tmp_path):
    pool = tmp_path / "pool.npy"
    np.save(pool, np.zeros((7, 32, 32, 3), np.uint8))
    fake_image_folder(tmp_path / "wrong", ["a", "b"], n_train=5, n_test=1)
    with pytest.raises(data.DataError, match="not CIFAR-10's"):
        data.prepare(tmp_path / "wrong", pool, tmp_path / "work-wrong")
    fake_image_folder(tmp_path / "folder", data.CIFAR10_CLASSES, n_train=1, n_test=1)
    manifest = data.prepare(tmp_path / "folder", pool, tmp_path / "work")
    assert manifest["oe"]["shape"] == [7, 32, 32, 3]
    assert manifest["oe"]["sha256"] == data.file_digest(pool)
    stamp = (tmp_path / "work" / "manifest.json").stat().st_mtime_ns
    assert data.prepare(tmp_path / "folder", pool, tmp_path / "work") == manifest
    assert (tmp_path / "work" / "manifest.json").stat().st_mtime_ns == stamp


def test_check_pool_rejects_a_wrong_shape(tmp_path):
    np.save(tmp_path / "p.npy", np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(data.DataError, match=r"\(N, 32, 32, 3\) uint8"):
        data.check_pool(tmp_path / "p.npy")


# ---- parsing eoe's output ----------------------------------------------------------------------------------

CANNED = (
    "evaluating cls automobile: 100%|##########| 79/79 [00:14<00:00,  5.51it/s]\n"
    'Eval: class "automobile" yields 78.96% AUC and 97.19% average precision (seed 0).\n'
    "Training: Overall 94.91% +- 0.00 AUC.\n"
    'Eval: Class "automobile" yields 78.96% +- 0.00% AUC.\n'
)


def test_parse_eval_lines_reads_the_per_run_line_only():
    assert runqueue.parse_eval_lines(CANNED) == [{"class": "automobile", "auc": 78.96, "ap": 97.19, "seed": 0}]


def fake_eoe_job(job_dir: Path, auc: float, ap: float, log_auc: float, logs: int = 1) -> None:
    for i in range(logs):
        log_dir = job_dir / "eoe-data" / "results" / f"log_2026112915364{i}_hsc_cifar10_one_vs_rest"
        log_dir.mkdir(parents=True)
        (log_dir / "logtxt.txt").write_text(CANNED.replace("78.96% AUC and", f"{log_auc:.2f}% AUC and"))
        rocs = [[] for _ in range(10)]
        rocs[1] = [auc]
        (log_dir / "results.json").write_text(json.dumps({"eval_cls_rocs": rocs, "eval_mean_avg_prec": ap}))


def test_read_result_takes_full_precision_and_checks_the_log(tmp_path):
    fake_eoe_job(tmp_path / "ok", 0.7896311666666667, 0.9718832496899671, 78.96)
    result = runqueue.read_result(tmp_path / "ok", normal_class=1)
    assert (result["auc"], result["ap"]) == (78.963117, 97.188325)
    fake_eoe_job(tmp_path / "disagree", 0.80, 0.9718832496899671, 78.96)
    with pytest.raises(runqueue.RunError, match="disagrees"):
        runqueue.read_result(tmp_path / "disagree", normal_class=1)
    fake_eoe_job(tmp_path / "two", 0.7896311666666667, 0.9718832496899671, 78.96, logs=2)
    with pytest.raises(runqueue.RunError, match="found 2"):
        runqueue.read_result(tmp_path / "two", normal_class=1)


# ---- the job list and the resumable queue ------------------------------------------------------------------


def test_protocol_jobs():
    assert jobs.single_image_indices(30000) == [2789, 5654, 7421, 18352, 21204, 22474]
    cells = jobs.protocol_cells(30000)
    assert len(jobs.protocol_jobs(cells)) == 5 * 3 + 4 * 3 + 6 * 5 + 6 * 2 + 3  # HSC 5 runs per image, BCE 2
    assert [c.id for c in cells[:5]] == ["c1-hsc-full", "c1-bce-full", "c1-focal-full", "c1-dsad-full", "c1-dsvdd-full"]
    base = ["--classes", "1", "-it", "1", "-e", "12", "--milestones", "6", "9", "-o"]
    by_id = {c.id: c for c in cells}
    assert by_id["c1-dsvdd-full"].eoe_args() == [*base, "dsvdd"]
    assert by_id["c1-bce-n16"].eoe_args() == [*base, "bce", "--oe-size", "16"]
    assert by_id["c1-hsc-img5654"].eoe_args() == [*base, "hsc", "--oe-size", "1"]
    assert by_id["c1-dsvdd-none"].eoe_args() == [*base, "dsvdd", "-oe", "none"]


def test_max_runs_caps_each_cell_so_every_cell_gets_a_first_run_early():
    from benchmarks.official import run_official

    capped = run_official.selected_cells(30000, ["img"], max_runs=1)
    assert len(capped) == 12 and {c.runs for c in capped} == {1}
    assert [j.id for j in jobs.protocol_jobs(capped)][:2] == ["c1-hsc-img2789/run0", "c1-bce-img2789/run0"]
    runs = {c.id: c.runs for c in run_official.selected_cells(30000, ["img2789"])}
    assert runs == {"c1-hsc-img2789": 5, "c1-bce-img2789": 2}
    assert [c.runs for c in run_official.selected_cells(30000, ["full"], max_runs=5)] == [3] * 5


def test_command_passes_the_pool_index_for_single_image_cells(tmp_path):
    ctx = runqueue.Context(Path("/eoe"), tmp_path, "py", COMMIT, {}, {}, nice=19)
    cell = jobs.Cell("hsc", "image", 2, oe_size=1, oe_index=2789)
    cmd = ctx.command(jobs.Job(cell, 1), tmp_path / "out")
    assert cmd[:4] == ["nice", "-n", "19", "py"]
    assert cmd[cmd.index("--oe-index") + 1] == "2789"
    assert cmd[cmd.index("--") + 1 :] == cell.eoe_args()


def test_queue_skips_finished_jobs_and_retries_failed_ones_next_time(tmp_path):
    cells = [jobs.Cell("hsc", "full", 2), jobs.Cell("bce", "full", 1)]
    all_jobs = jobs.protocol_jobs(cells)
    runqueue.write_json_atomic(runqueue.record_path(tmp_path, all_jobs[0]), {"auc": 1.0})
    assert runqueue.pending(all_jobs, tmp_path) == all_jobs[1:]
    ran, lines = [], []

    def fake_runner(job, ctx):
        ran.append(job.id)
        if job.cell.method == "bce":
            return None  # failed every try
        record = {"auc": 88.0, "ap": 90.0, "wall_s": 60.0}
        runqueue.write_json_atomic(runqueue.record_path(ctx.work, job), record)
        return record

    ctx = runqueue.Context(Path("/eoe"), tmp_path, "py", COMMIT, {}, {}, log=lines.append)
    runqueue.run_queue(all_jobs, ctx, parallel=2, runner=fake_runner)
    assert sorted(ran) == ["c1-bce-full/run0", "c1-hsc-full/run1"]
    assert ctx.counts == {"done": 1, "failed": 1}
    assert any(line.startswith("done c1-hsc-full/run1: AUC 88.00") for line in lines)
    ran.clear()
    runqueue.run_queue(all_jobs, ctx, parallel=2, runner=fake_runner)
    assert ran == ["c1-bce-full/run0"]


def test_queue_survives_a_runner_that_raises(tmp_path):
    all_jobs = jobs.protocol_jobs([jobs.Cell("hsc", "full", 2)])
    lines = []

    def flaky_runner(job, ctx):
        if job.run == 0:
            raise OSError("disk full")
        runqueue.write_json_atomic(runqueue.record_path(ctx.work, job), {"auc": 88.0})
        return {"auc": 88.0, "ap": 90.0, "wall_s": 60.0}

    ctx = runqueue.Context(Path("/eoe"), tmp_path, "py", COMMIT, {}, {}, log=lines.append)
    runqueue.run_queue(all_jobs, ctx, parallel=1, runner=flaky_runner)
    assert ctx.counts == {"done": 1, "failed": 1}
    assert "FAILED c1-hsc-full/run0: OSError: disk full" in lines
    assert runqueue.pending(all_jobs, tmp_path) == all_jobs[:1]

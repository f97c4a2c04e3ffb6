"""``oe-ad-eval``: a saved model evaluated on labelled images gives the AUROC, AUPR and per-image scores its job
recorded for the same test set."""

import json
import shutil

import numpy as np
import pytest

from oe_ad.evaluate import main
from oe_ad.job.scores import read_scores
from oe_ad.metrics import CONVENTION


def run_eval(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_on_the_jobs_data_folder_reproduces_its_record(trained_job, folder_root, tmp_path, capsys):
    """FOLDER with train/ and test/: the test split, class0 (the job's normal class) normal."""
    code, out, err = run_eval(capsys, str(trained_job.dir), str(folder_root), "-o", str(tmp_path / "ev"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["auroc"] == pytest.approx(trained_job.record["test_auroc"], abs=1e-6)
    assert metrics["aupr"] == pytest.approx(trained_job.record["test_aupr"], abs=1e-6)
    for key in ("fpr95", "aupr_in", "aupr_out"):  # the OOD table, as the job recorded it
        assert metrics[key] == pytest.approx(trained_job.record[f"test_{key}"], abs=1e-6), key
    assert metrics["convention"] == CONVENTION and "95% of the normal test images" in CONVENTION
    assert (metrics["n_normal"], metrics["n_anomalous"]) == (12, 24)
    assert metrics["normal_classes"] == ["class0"] and metrics["anomalous_classes"] == ["class1", "class2"]
    assert metrics["method"] == "hsc" and len(metrics["model_sha256"]) == 64
    rows = (tmp_path / "ev" / "scores.csv").read_text().splitlines()
    assert rows[0] == "index,path,label,score" and len(rows) == 37
    assert rows[1].startswith("0,class0/000.png,0,") and rows[13].startswith("12,class1/000.png,1,")
    # per image, the scores the job wrote for its test set (same order: classes, then files, sorted)
    ours = np.array([float(r.split(",")[3]) for r in rows[1:]])
    job_scores, job_labels = read_scores(trained_job.dir / "scores.csv")
    assert ours == pytest.approx(job_scores.numpy(), rel=1e-5)
    assert [int(r.split(",")[2]) for r in rows[1:]] == job_labels.tolist()
    for name in ("roc.png", "pr.png"):
        assert (tmp_path / "ev" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"AUROC {100 * trained_job.record['test_auroc']:.2f}%" in out and "12 normal (class0), 24 anomalous" in out
    assert f"FPR@95 {100 * trained_job.record['test_fpr95']:.2f}%  AUPR-In " in out and f"({CONVENTION})" in out


def test_eval_on_the_jobs_dataset_config_reproduces_its_record(trained_job, capsys):
    """--data folder: the job's own data config (its root), labelled by its normal class; no files without -o."""
    code, out, err = run_eval(capsys, str(trained_job.dir), "--data", "folder")
    assert code == 0, err
    assert f"AUROC {100 * trained_job.record['test_auroc']:.2f}%" in out and "->" not in out


def test_eval_normal_classes_by_name_and_the_normal_folder_convention(trained_job, folder_root, tmp_path, capsys):
    """--normal picks the normal class folders; without it a folder named `normal` is normal."""
    code, out, _ = run_eval(capsys, str(trained_job.dir), str(folder_root / "test"), "--normal", "class1,class2")
    assert code == 0 and "24 normal (class1, class2), 12 anomalous" in out
    data = tmp_path / "data"
    shutil.copytree(folder_root / "test" / "class0", data / "normal")
    shutil.copytree(folder_root / "test" / "class2", data / "anomalous")
    code, out, _ = run_eval(capsys, str(trained_job.dir), str(data))
    assert code == 0 and "12 normal (normal), 12 anomalous" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "give the test images as FOLDER or as --data NAME"),
        (["FOLDER", "--data", "folder"], "give the test images as FOLDER or as --data NAME"),
        (["FOLDER", "--normal", "nope"], "--normal nope: no such class folder"),
        (["FOLDER/test/class1"], "expected one folder of images per class"),
        (["NOCLASS"], "none of its classes (class1) is the model's normal class (class0)"),
        (["--data", "nope"], "unknown data 'nope'"),
        (["--data", "folder", "--normal", "class0"], "--normal applies to FOLDER"),
        (["FOLDER", "--normal", "class0,class1,class2"], "no anomalous images"),
    ],
)
def test_eval_errors_are_one_line(args, expected, trained_job, folder_root, tmp_path, capsys):
    shutil.copytree(folder_root / "test" / "class1", tmp_path / "noclass" / "class1")
    paths = {"FOLDER": str(folder_root), "NOCLASS": str(tmp_path / "noclass")}
    args = [paths.get(a, a.replace("FOLDER", str(folder_root))) for a in args]
    code, _, err = run_eval(capsys, str(trained_job.dir), *args, "-o", str(tmp_path / "ev"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], err
    assert not (tmp_path / "ev").exists()

"""``oe-ad-predict`` and ``oe_ad.inference``: a trained job's model.pt scores new images as the job scored its test
set, and carries the distribution of its normal training images' scores (thresholds)."""

import csv
import shutil

import numpy as np
import pytest
import torch

from oe_ad.inference import load_model, predict
from oe_ad.job.checkpoint import MODEL_FILE, read_model_file
from oe_ad.job.scores import PERCENTILES, normal_score_percentiles, percentile_key
from oe_ad.metrics import auroc
from oe_ad.predict import main


def test_scores_of_the_test_folder_reproduce_the_jobs_test_auroc(trained_job, folder_root):
    assert (trained_job.dir / MODEL_FILE).exists()
    rows = predict(trained_job.dir / MODEL_FILE, folder_root / "test")
    assert len(rows) == 36 and rows[0][0] == "class0/000.png"
    anomalous = torch.tensor([not name.startswith("class0/") for name, _ in rows])
    scores = torch.tensor([score for _, score in rows])
    assert auroc(scores, anomalous) == pytest.approx(trained_job.record["test_auroc"], abs=1e-6)


def test_model_file_keeps_the_percentiles_of_the_normal_training_images_scores(trained_job, folder_root):
    """The stored percentiles are those of the 24 un-augmented class0 training images as predict scores them."""
    payload = read_model_file(trained_job.dir)
    stats = payload["normal_scores"]
    assert payload["facts"] == {"normal_names": ["class0"]} and payload["classes"] == ["class0", "class1", "class2"]
    assert stats["n"] == 24 and list(stats["percentiles"]) == ["50", "90", "95", "99", "99.9"]
    assert "radial function pseudo_huber" in stats["scale"]
    train = np.array([score for _, score in predict(trained_job.dir, folder_root / "train" / "class0")])
    expected = np.percentile(train, PERCENTILES)
    got = [stats["percentiles"][percentile_key(p)] for p in PERCENTILES]
    assert got == pytest.approx(expected, rel=1e-5)
    assert stats["min"] == pytest.approx(train.min(), rel=1e-5) and stats["max"] == pytest.approx(train.max(), rel=1e-5)
    assert stats["mean"] == pytest.approx(train.mean(), rel=1e-5)


def test_normal_score_percentiles_by_hand():
    stats = normal_score_percentiles(torch.tensor([4.0, 1.0, 3.0, 2.0, 0.0]), (50.0, 90.0, 99.9))
    # sorted 0..4: the p-th percentile sits at position p/100 * 4 (linear interpolation)
    assert stats["percentiles"] == {"50": 2.0, "90": pytest.approx(3.6), "99.9": pytest.approx(3.996)}
    assert (stats["n"], stats["mean"], stats["min"], stats["max"]) == (5, 2.0, 0.0, 4.0)
    assert stats["std"] == pytest.approx(2**0.5)


def read_csv(path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_cli_writes_file_score_and_label_csv(trained_job, folder_root, oe_npy, tmp_path, capsys):
    job = trained_job.dir
    main([str(job), str(folder_root / "test"), "--output", str(tmp_path / "scores.csv")])
    rows = read_csv(tmp_path / "scores.csv")
    assert len(rows) == 36 and set(rows[0]) == {"file", "score"}
    threshold = sorted(float(r["score"]) for r in rows)[17]
    main([str(job), str(oe_npy), "-o", str(tmp_path / "oe.csv"), "--threshold", str(threshold)])
    rows = read_csv(tmp_path / "oe.csv")
    assert len(rows) == 64 and rows[3]["file"] == "oe.npy[3]"
    assert all(r["label"] == ("anomalous" if float(r["score"]) > threshold else "normal") for r in rows)
    out = capsys.readouterr().out
    assert "64 images scored" in out and "scores: hsc, h(phi(x))" in out and "larger = more anomalous" in out


def test_threshold_percentile_uses_the_stored_percentile(trained_job, folder_root, tmp_path, capsys):
    """The 99th percentile of 24 scores lies between the two largest: exactly one training image is above it."""
    p99 = read_model_file(trained_job.dir)["normal_scores"]["percentiles"]["99"]
    train = folder_root / "train" / "class0"
    main([str(trained_job.dir), str(train), "-o", str(tmp_path / "t.csv"), "--threshold-percentile", "99"])
    rows = read_csv(tmp_path / "t.csv")
    assert [r["label"] for r in rows].count("anomalous") == 1
    assert all(r["label"] == ("anomalous" if float(r["score"]) > p99 else "normal") for r in rows)
    assert "99th percentile of the normal training images' scores): 1 of 24 images" in capsys.readouterr().out


def test_help_says_the_scale_and_lists_the_stored_percentiles(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert exit_info.value.code == 0 and "larger = more anomalous" in text and "--threshold-percentile P" in text
    assert "stored in model.pt: " + ", ".join(percentile_key(p) for p in PERCENTILES) in text


def test_a_model_file_without_the_new_fields_still_loads(trained_job, folder_root, tmp_path, capsys):
    """model.pt written before the class names and percentiles existed: predicts; --threshold-percentile is an error."""
    old = tmp_path / "old"
    old.mkdir()
    payload = torch.load(trained_job.dir / MODEL_FILE, weights_only=True)
    for key in ("normal_scores", "classes", "facts"):
        del payload[key]
    torch.save(payload, old / MODEL_FILE)
    model = load_model(old)
    assert model.normal_scores is None and model.normal_classes is None
    assert predict(model, folder_root / "test") == predict(trained_job.dir, folder_root / "test")
    with pytest.raises(SystemExit) as exit_info:
        main([str(old), str(folder_root / "test"), "-o", str(tmp_path / "x.csv"), "--threshold-percentile", "99"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "holds no score percentiles" in err[0]
    assert "--threshold VALUE" in err[0] and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "case", ["no_model", "bad_image", "unknown_key", "not_an_input", "unstored_percentile", "two_thresholds"]
)
def test_predict_errors_are_one_line(case, trained_job, folder_root, tmp_path, capsys):
    images = folder_root / "test"
    args = [str(trained_job.dir), str(images), "--output", str(tmp_path / "x.csv")]
    if case == "no_model":
        args[0], expected = str(tmp_path), f"{tmp_path / MODEL_FILE}: no such file"
    elif case == "bad_image":
        images = tmp_path / "imgs"
        shutil.copytree(folder_root / "test" / "class1", images)
        (images / "zz.png").write_bytes(b"junk")
        args[1], expected = str(images), "zz.png"
    elif case == "unknown_key":
        args += ["--thresold", "1"]
        expected = "unrecognized arguments: --thresold 1"
    elif case == "unstored_percentile":
        args += ["--threshold-percentile", "97"]
        expected = "percentile 97 is not stored in"
    elif case == "two_thresholds":
        args += ["--threshold", "1", "--threshold-percentile", "99"]
        expected = "not allowed with argument"
    else:
        args[1], expected = str(tmp_path / "nothing.txt"), "not a folder of images or a .npy"
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error:") and expected in err[0]
    assert not (tmp_path / "x.csv").exists()

"""``python -m oe_ad.predict``: a trained job's model.pt scores new images as the job scored its test set."""

import csv
import shutil

import pytest
import torch

from oe_ad.checkpointing import MODEL_FILE
from oe_ad.lightning_fitter import run_job
from oe_ad.metrics import auroc
from oe_ad.predict import main, predict


@pytest.fixture(scope="module")
def trained_job(tmp_path_factory, folder_root, oe_npy):
    from hydra import compose, initialize_config_dir

    from conftest import tiny_overrides
    from oe_ad.config import CONF_DIR

    out = tmp_path_factory.mktemp("predict")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*tiny_overrides(folder_root, oe_npy, out), "method=hsc", "epochs=2"])
    record = run_job(cfg, out / "job")
    return out / "job", record


def test_scores_of_the_test_folder_reproduce_the_jobs_test_auroc(trained_job, folder_root):
    job, record = trained_job
    assert (job / MODEL_FILE).exists()
    rows = predict(job / MODEL_FILE, folder_root / "test")
    assert len(rows) == 36 and rows[0][0] == "class0/000.png"
    anomalous = torch.tensor([not name.startswith("class0/") for name, _ in rows])
    scores = torch.tensor([score for _, score in rows])
    assert auroc(scores, anomalous) == pytest.approx(record["test_auroc"], abs=1e-6)


def read_csv(path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_cli_writes_file_score_and_label_csv(trained_job, folder_root, oe_npy, tmp_path, capsys):
    job, _ = trained_job
    main([str(job), str(folder_root / "test"), "--output", str(tmp_path / "scores.csv")])
    rows = read_csv(tmp_path / "scores.csv")
    assert len(rows) == 36 and set(rows[0]) == {"file", "score"}
    threshold = sorted(float(r["score"]) for r in rows)[17]
    main([str(job), str(oe_npy), "-o", str(tmp_path / "oe.csv"), "--threshold", str(threshold)])
    rows = read_csv(tmp_path / "oe.csv")
    assert len(rows) == 64 and rows[3]["file"] == "oe.npy[3]"
    assert all(r["label"] == ("anomalous" if float(r["score"]) > threshold else "normal") for r in rows)
    assert "64 images scored" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["no_model", "bad_image", "unknown_key", "not_an_input"])
def test_predict_errors_are_one_line(case, trained_job, folder_root, tmp_path, capsys):
    job, _ = trained_job
    images = folder_root / "test"
    args = [str(job), str(images), "--output", str(tmp_path / "x.csv")]
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
    else:
        args[1], expected = str(tmp_path / "nothing.txt"), "not a folder of images or a .npy"
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error:") and expected in err[0]
    assert not (tmp_path / "x.csv").exists()

"""What W&B receives, read back from offline runs (no account, no network): per job, per vectorised member,
per experiment summary; and the per-image scores beside each record."""

import json
import math

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.metrics import average_precision_score, roc_auc_score

from oe_ad import report
from oe_ad.job.lightning import run_job
from oe_ad.job.scores import SCORES_NAME, read_scores
from oe_ad.loggers.job import CONVENTION_KEY, SUMMARY_KEYS, hyperparameters, run_id
from oe_ad.metrics import CONVENTION
from oe_ad.vectorised.launcher import train_jobs
from wandb_files import offline_runs

JOB = ("logger=wandb", "method=hsc", "oe_size=8", "normal_class=1", "epochs=2", "milestones=[1]", "name=wb")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)


@pytest.fixture(scope="module")
def single(tmp_path_factory, folder_root, oe_npy):
    """One job with W&B offline, then the same job again (force=true): two offline runs of one run id."""
    from hydra import compose, initialize_config_dir

    from conftest import tiny_overrides
    from oe_ad.config import CONF_DIR

    out = tmp_path_factory.mktemp("wb")
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("HOME", str(out))
    mp.delenv("WANDB_API_KEY", raising=False)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*tiny_overrides(folder_root, oe_npy, out), *JOB])
        again = compose("config", overrides=[*tiny_overrides(folder_root, oe_npy, out), *JOB, "force=true"])
    job = out / "wb" / "hsc" / "job"
    first = run_job(cfg, job)
    runs_after_first = offline_runs(job)
    second = run_job(again, job)
    mp.undo()
    return cfg, job, first, runs_after_first, second


def test_job_run_has_its_id_name_tags_config_summary_and_learning_rates(single):
    cfg, job, record, runs, _ = single
    (run,) = runs
    assert run.id == run_id("wb", record["config_hash"]) and run.id.startswith(record["config_hash"])
    assert run.name == "hsc · class1 · oe 8 · s0" and run.group == "wb"
    assert run.tags == ["method:hsc", "data:folder", "benchmark:ovr", "oe_size:8", "class:1", "seed:0"]
    assert run.config["config_hash"] == record["config_hash"] and run.config["oe_size_plot"] == 8
    assert run.config["method"]["name"] == "hsc" and run.config["class_name"] == "class1"
    for key in SUMMARY_KEYS:
        assert run.summary[key] == pytest.approx(record[key]) if isinstance(record[key], float) else record[key]
    assert 0 <= record["test_aupr"] <= 1
    assert {"test_fpr95", "test_aupr_in", "test_aupr_out"} <= set(SUMMARY_KEYS)
    assert run.summary[CONVENTION_KEY] == CONVENTION  # what FPR@95 and AUPR-In/Out mean, beside them
    tests = [row for row in run.history if "test/fpr95" in row]  # the OOD table once, in the history too
    assert len(tests) == 1 and tests[0]["test/aupr_in"] == pytest.approx(record["test_aupr_in"])
    lrs = [row["train/lr"] for row in run.history if "train/lr" in row]
    assert lrs == pytest.approx([1e-3, 1e-4])  # one per epoch, divided by 10 at milestone 1
    assert {"test/roc_table/_type", "test/scores_normal/bins", "test/scores_anomalous/values"} <= set(run.summary)
    hist = run.summary["test/scores_normal/values"], run.summary["test/scores_anomalous/values"]
    assert [sum(h) for h in hist] == [12, 24]  # 12 normal and 24 anomalous test images


def test_the_experiments_report_layout_is_not_a_hyperparameter():
    cfg = OmegaConf.create({"name": "x", "seed": 3, "report": {"rows": "class", "paper": {"hsc": [1.0]}}})
    assert hyperparameters(cfg) == {"name": "x", "seed": 3}


def test_rerun_job_continues_the_same_run_id(single):
    _, job, first, runs_first, second = single
    runs = offline_runs(job)
    assert len(runs) == 2 and runs[0].id == runs[1].id == runs_first[0].id
    assert first["config_hash"] == second["config_hash"]


def test_scores_csv_has_every_test_image_and_its_auroc_is_the_records(single):
    _, job, _, _, record = single
    lines = (job / SCORES_NAME).read_text().splitlines()
    assert lines[0] == "index,label,score" and len(lines) == 1 + 36  # 3 classes x 12 test images
    scores, labels = read_scores(job / SCORES_NAME)
    assert roc_auc_score(labels.numpy(), scores.numpy()) == pytest.approx(record["test_auroc"], abs=1e-6)
    assert average_precision_score(labels.numpy(), scores.numpy()) == pytest.approx(record["test_aupr"], abs=1e-9)


def test_report_wandb_twice_is_one_summary_run_with_a_numeric_table(single, capsys):
    _, job, _, _, _ = single
    exp = job.parents[1]
    for _ in range(2):
        assert report.main([str(exp), "--wandb", "--roc", "--experiment", "fig2-cifar10"]) == 0
    runs = offline_runs(exp / "wandb")
    assert len(runs) == 2 and runs[0].id == runs[1].id and runs[0].id.startswith("summary-")
    assert runs[0].name == "fig2-cifar10 · summary" and runs[0].group == "fig2-cifar10"
    (table_file,) = runs[1].folder.glob("files/media/table/table_*.table.json")
    table = json.loads(table_file.read_text())
    rows = [dict(zip(table["columns"], r)) for r in table["data"]]
    ours = [r for r in rows if r["row"] == "8"]
    assert ours and isinstance(ours[0]["mean"], float) and ours[0]["n"] == 1 and not math.isnan(ours[0]["mean"])
    # the report's statistics: no sd or interval from one seed, incomplete, not the paper's data (data=folder)
    cell = ours[0]
    assert (cell["std"], cell["ci_low"], cell["seeds_expected"], cell["complete"]) == (None, None, 10, False)
    assert cell["paper_comparable"] is False and "data.name=folder (paper: cifar10)" in cell["differs"]
    (comparison,) = runs[1].folder.glob("files/media/table/comparison_*.table.json")
    assert json.loads(comparison.read_text())["columns"][:4] == ["a", "b", "row", "n"]
    assert runs[1].summary["crossover/missing"].startswith("no records of `bce`")
    assert "fig2-cifar10/curve" in "".join(runs[1].config)  # the native line plot
    assert "figure/fig2-cifar10/_type" in runs[1].summary and (exp / "roc.png").stat().st_size > 0


def test_vectorised_members_log_runs_with_the_single_jobs_fields(single, make_cfg, tmp_path):
    cfg, _, record, runs, _ = single
    cfgs = [make_cfg(*JOB, f"seed={s}") for s in (0, 1)]
    dirs = [tmp_path / f"m{s}" for s in (0, 1)]
    results = train_jobs(cfgs, dirs, device="cpu")
    members = [offline_runs(d) for d in dirs]
    assert all(len(m) == 1 for m in members)
    (m0,), (m1,) = members
    ref = runs[0]
    assert m0.id == ref.id and m0.name == ref.name and m0.tags == ref.tags  # seed 0 is the single job
    assert m1.name == "hsc · class1 · oe 8 · s1" and m1.id == run_id("wb", results[1]["config_hash"])
    assert set(m0.config) == set(ref.config)
    for key in SUMMARY_KEYS:
        assert key in m1.summary
    assert m1.summary["test_fpr95"] == pytest.approx(results[1]["test_fpr95"]) and CONVENTION_KEY in m1.summary
    assert m1.summary["test_auroc"] == pytest.approx(results[1]["test_auroc"])
    assert [r["train/lr"] for r in m1.history if "train/lr" in r] == pytest.approx([1e-3, 1e-4])
    history_keys = lambda run: {k for row in run.history for k in row if not k.startswith("_")}  # noqa: E731
    assert history_keys(ref) <= history_keys(m0)
    for d in dirs:
        scores, labels = read_scores(d / SCORES_NAME)
        assert len(scores) == 36 and np.isfinite(scores.numpy()).all()

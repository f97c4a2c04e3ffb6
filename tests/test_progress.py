"""Progress of long steps: a line with rate and ETA every N seconds when the output is not a terminal; the
sweep's size as the basic sweeper will launch it."""

import logging
import re

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from oe_ad.cli.entrance import sweep_size
from oe_ad.config import CONF_DIR
from oe_ad.progress import Progress, progress


def test_progress_logs_rate_and_eta_lines_when_not_a_terminal(monkeypatch, caplog):
    monkeypatch.setenv("OE_AD_PROGRESS_SECONDS", "0")
    with (
        caplog.at_level(logging.INFO, logger="oe_ad.progress"),
        Progress(4, "decoding x", "images", terminal=False) as bar,
    ):
        for _ in range(4):
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and lines[0].startswith("decoding x: 1/4 images (25%)") and "images/s" in lines[0]
    assert lines[-1].startswith("decoding x: 4/4 images (100%)")


def test_short_work_stays_silent(monkeypatch, caplog):
    monkeypatch.setenv("OE_AD_PROGRESS_SECONDS", "60")
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    with caplog.at_level(logging.INFO, logger="oe_ad.progress"):
        assert list(progress(range(3), 3, "indexing", "synsets")) == [0, 1, 2]
    assert caplog.records == []


def test_sweep_size_is_the_product_of_swept_values_with_the_command_line_winning():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["seed=0,1", "oe_size=1,2,null"]
    assert sweep_size(cfg) == 10 * 2 * 3  # normal_class=range(0,10) from the config, seed and oe_size from the CLI


def test_a_job_reports_progress_of_decoding_epochs_testing_and_thresholds(trained_job):
    """Every step of a job that can take long goes through oe_ad.progress (here a line per update): decoding the
    image folder, each epoch's steps, the test pass and scoring the normal training images for model.pt."""
    lines = trained_job.log
    decode = [line for line in lines if line.startswith("decoding ")]
    assert any("/train: 72/72 images (100%)" in line for line in decode)
    assert any("/test: 36/36 images (100%)" in line for line in decode)
    for epoch in (1, 2):  # 24 normal training images, batch_size=16: 2 steps per epoch
        assert [line.split(" [")[0] for line in lines if line.startswith(f"epoch {epoch}/2:")] == [
            f"epoch {epoch}/2: 1/2 steps (50%)",
            f"epoch {epoch}/2: 2/2 steps (100%)",
        ]
    assert [line.split(" [")[0] for line in lines if line.startswith("testing:")] == ["testing: 36/36 images (100%)"]
    thresholds = [line for line in lines if line.startswith("scoring the normal training images")]
    assert thresholds[-1].startswith("scoring the normal training images (thresholds): 24/24 images (100%)")
    assert all(re.search(r"[\d.]+(\w+/s|s/\w+)\]$", line) for line in lines), lines  # a rate on every line

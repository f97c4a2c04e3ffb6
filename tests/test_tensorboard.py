"""``logger=tensorboard``: the event files of a single job and of a vectorised member, read back, hold the scalars
the CSV logger writes (train loss, AUROC and learning rate per epoch; the test metrics once)."""

import csv
import math
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from oe_ad.job.lightning import run_job
from oe_ad.vectorised.launcher import train_jobs

JOB = ("method=hsc", "oe_size=8", "epochs=2", "milestones=[1]", "name=tb")
TEST = {f"test/{m}" for m in ("auroc", "aupr", "fpr95", "aupr_in", "aupr_out")}


def event_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files in ``folder``: tag -> [(step, value), ...]."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def csv_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """The same from a CSV logger's metrics.csv."""
    out: dict[str, list[tuple[int, float]]] = {}
    with open(path) as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                if key != "step" and value != "":
                    out.setdefault(key, []).append((int(row["step"]), float(value)))
    return out


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, folder_root, oe_npy):
    """The same job with logger=tensorboard and with logger=csv (two output folders)."""
    from hydra import compose, initialize_config_dir

    from conftest import tiny_overrides
    from oe_ad.config import CONF_DIR

    out = tmp_path_factory.mktemp("tb")
    records = {}
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for logger in ("tensorboard", "csv"):
            cfg = compose(
                "config", overrides=[*tiny_overrides(folder_root, oe_npy, out / logger), *JOB, f"logger={logger}"]
            )
            records[logger] = run_job(cfg, out / logger / "job")
    return out, records


def test_a_jobs_event_file_holds_the_csv_loggers_scalars(jobs):
    out, records = jobs
    tb = event_scalars(out / "tensorboard" / "job" / "tensorboard")
    assert set(tb) == {"train/loss", "train/auroc", "train/lr", "epoch", *TEST}
    assert set(tb) == set(csv_scalars(out / "csv" / "job" / "csv" / "metrics.csv"))
    for tag, points in csv_scalars(out / "csv" / "job" / "csv" / "metrics.csv").items():
        assert [s for s, _ in tb[tag]] == [s for s, _ in points], tag  # the same steps
        assert [v for _, v in tb[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag
    assert [v for _, v in tb["train/lr"]] == pytest.approx([1e-3, 1e-4])  # divided by 10 at milestone 1
    assert len(tb["train/loss"]) == len(tb["train/auroc"]) == 2 and all(math.isfinite(v) for _, v in tb["train/loss"])
    record = records["tensorboard"]
    for tag in TEST:
        ((_, value),) = tb[tag]
        assert value == pytest.approx(record[tag.replace("/", "_")], abs=1e-6), tag
    assert (out / "tensorboard" / "job" / "tensorboard" / "hparams.yaml").is_file()


def test_a_vectorised_members_event_file_holds_the_single_jobs_scalars(jobs, make_cfg, tmp_path):
    out, _ = jobs
    single = event_scalars(out / "tensorboard" / "job" / "tensorboard")
    dirs = [tmp_path / f"m{s}" for s in (0, 1)]
    results = train_jobs([make_cfg(*JOB, "logger=tensorboard", f"seed={s}") for s in (0, 1)], dirs, device="cpu")
    for d, record in zip(dirs, results):
        member = event_scalars(d / "tensorboard")
        assert set(member) == set(single)
        for tag in single:  # the steps Lightning would have used
            assert [s for s, _ in member[tag]] == [s for s, _ in single[tag]], tag
        assert [v for _, v in member["train/lr"]] == pytest.approx([1e-3, 1e-4])
        for tag in TEST:
            ((_, value),) = member[tag]
            assert value == pytest.approx(record[tag.replace("/", "_")], abs=1e-6), tag

"""Synthetic data the tests make themselves (no downloads): a fake image-folder tree, a fake
cifar-10-batches-py, a small OE .npy, a helper that composes the package's Hydra config, and one tiny trained job
(its model.pt) shared by the inference tests."""

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from oe_ad.config import CONF_DIR

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def coloured_images(colour, n: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """n images of one colour plus pixel noise: trivially separable between colours."""
    base = np.asarray(colour, dtype=np.float64)[None, None, None, :]
    return np.clip(base + rng.normal(0, 12, (n, size, size, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def folder_root(tmp_path_factory) -> Path:
    """train/<class>/*.png and test/<class>/*.png for 3 colour classes (24 train, 12 test each)."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 12)):
        for k, colour in enumerate(COLOURS):
            d = root / split / f"class{k}"
            d.mkdir(parents=True)
            for i, img in enumerate(coloured_images(colour, n, rng)):
                Image.fromarray(img).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def oe_npy(tmp_path_factory) -> Path:
    """64 OE images of random colours, (64, 32, 32, 3) uint8."""
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, (64, 3))
    images = np.concatenate([coloured_images(c, 1, rng) for c in colours])
    path = tmp_path_factory.mktemp("oe") / "oe.npy"
    np.save(path, images)
    return path


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    """A fake cifar-10-batches-py (torchvision's pickle format): 5 train batches + test batch."""
    root = tmp_path_factory.mktemp("cifar")
    base = root / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(2)

    def batch(n: int) -> dict:
        labels = rng.integers(0, 10, n).tolist()
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        return {"data": data, "labels": labels}

    for i in range(1, 6):
        with open(base / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch(20), fh)
    with open(base / "test_batch", "wb") as fh:
        pickle.dump(batch(30), fh)
    return root


def tiny_overrides(folder_root: Path, oe_npy: Path, out: Path) -> list[str]:
    """Overrides for a fast job on the synthetic data."""
    return [
        "data=folder",
        f"data.root={folder_root}",
        "oe=npy",
        f"oe.path={oe_npy}",
        "epochs=3",
        "milestones=[2]",
        "batch_size=16",
        "logger=none",
        f"paths.output_dir={out}",
        f"paths.cache_dir={out}/cache",
    ]


def merged(args: list[str] | tuple[str, ...]) -> list[str]:
    """Command-line arguments where a later ``key=value`` replaces an earlier one of the same key (the CLI
    rejects a key given twice; tests append their overrides to ``tiny_overrides``)."""
    key = lambda a: a.lstrip("+~").partition("=")[0] if "=" in a and not a.startswith("-") else None  # noqa: E731
    last = {key(a): i for i, a in enumerate(args) if key(a)}
    return [a for i, a in enumerate(args) if key(a) is None or last[key(a)] == i]


@pytest.fixture
def make_cfg(folder_root, oe_npy, tmp_path):
    """compose the config with tiny-data overrides plus the given ones."""

    def _make(*overrides: str):
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=[*tiny_overrides(folder_root, oe_npy, tmp_path), *overrides])

    return _make


@dataclass
class TrainedJob:
    dir: Path
    record: dict
    log: list[str]  # the progress lines (oe_ad.progress) the job logged, one every update


@pytest.fixture(scope="session")
def trained_job(tmp_path_factory, folder_root, oe_npy) -> TrainedJob:
    """HSC trained for 2 epochs on class0 of ``folder_root`` (its job folder holds model.pt and scores.csv), with
    every progress update logged (OE_AD_PROGRESS_SECONDS=0)."""
    from oe_ad.job.lightning import run_job

    out = tmp_path_factory.mktemp("trained")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*tiny_overrides(folder_root, oe_npy, out), "method=hsc", "epochs=2"])
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: lines.append(r.getMessage())
    logger = logging.getLogger("oe_ad.progress")
    old_level, old_seconds = logger.level, os.environ.get("OE_AD_PROGRESS_SECONDS")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    os.environ["OE_AD_PROGRESS_SECONDS"] = "0"
    try:
        with mock.patch("oe_ad.progress.is_terminal", return_value=False):  # log lines even under `pytest -s`
            record = run_job(cfg, out / "job")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        if old_seconds is None:
            del os.environ["OE_AD_PROGRESS_SECONDS"]
        else:
            os.environ["OE_AD_PROGRESS_SECONDS"] = old_seconds
    return TrainedJob(out / "job", record, lines)


def tiny_job(tmp_path: Path, *overrides: str) -> dict:
    """One HSC job of one epoch on the data the ``overrides`` name, in ``tmp_path/job``; its record."""
    from oe_ad.job.lightning import run_job

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[
            "epochs=1", "milestones=[1]", "batch_size=4", "logger=none", "trainer.accelerator=cpu", "method=hsc",
            f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path}/cache", *overrides,
        ])  # fmt: skip
    record = run_job(cfg, tmp_path / "job")
    assert (tmp_path / "job" / "result.json").exists() and 0 <= record["test_auroc"] <= 1
    return record


def interrupt_single_job_at(monkeypatch, epoch: int, error: type[Exception]) -> None:
    """A single (Lightning) job raises ``error`` as its epoch ``epoch`` (0-based) starts."""
    from oe_ad.job import callbacks

    start = callbacks.EpochSummary.on_train_epoch_start

    def die(self, trainer, pl_module):
        if trainer.current_epoch == epoch:
            raise error
        start(self, trainer, pl_module)

    monkeypatch.setattr(callbacks.EpochSummary, "on_train_epoch_start", die)


def interrupt_stack_at(monkeypatch, epoch: int, error: type[Exception]) -> None:
    """A stack of ``launcher=vectorised`` raises ``error`` as its epoch ``epoch`` (0-based) starts."""
    from oe_ad.vectorised import trainer

    train_epoch = trainer.train_epoch

    def die(net, opt, obj, members, e, lr):
        if e == epoch:
            raise error
        return train_epoch(net, opt, obj, members, e, lr)

    monkeypatch.setattr(trainer, "train_epoch", die)

"""Training from Python (oe_ad.fit): the command line's job loop, folder and record; its one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import oe_ad
from conftest import merged, tiny_overrides
from oe_ad.errors import OEADError


def test_a_job_fitted_from_python_and_the_same_job_from_the_cli_share_one_folder_and_record(
    folder_root, oe_npy, tmp_path
):
    args = merged([*tiny_overrides(folder_root, oe_npy, tmp_path / "runs"), "epochs=1", "milestones=[]", "name=py"])
    fitted = oe_ad.fit(*args, method="hsc", normal_class=1)
    assert fitted.dir.is_dir() and (fitted.dir / "result.json").exists()
    assert fitted.record == json.loads((fitted.dir / "result.json").read_text())
    scores = fitted.score(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    assert scores.shape == (4,) and torch.isfinite(scores).all()
    mtime = (fitted.dir / "result.json").stat().st_mtime_ns
    cli = subprocess.run(
        [sys.executable, "-m", "oe_ad.run", *args, "method=hsc", "normal_class=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert f"skip: {fitted.dir} is finished" in cli.stdout + cli.stderr  # the CLI found the Python job's record
    assert (fitted.dir / "result.json").stat().st_mtime_ns == mtime
    again = oe_ad.fit(*args, "method=hsc", "normal_class=1")  # and Python finds it too
    assert again.dir == fitted.dir and again.record["config_hash"] == fitted.record["config_hash"]


def test_errors_raise_one_exception_with_the_command_lines_line(folder_root, oe_npy, tmp_path):
    args = tiny_overrides(folder_root, oe_npy, tmp_path / "runs")
    with pytest.raises(OEADError, match=r"^normal_class=7: must be <= 2$"):
        oe_ad.fit(*args, method="hsc", normal_class=7)
    with pytest.raises(OEADError, match=r"^unknown key 'epoch' \(did you mean 'epochs'\?\)$"):
        oe_ad.fit(*args, "epoch=3")
    with pytest.raises(OEADError, match="method=bce needs OE but oe=none"):
        oe_ad.fit(*[a for a in args if not a.startswith("oe")], method="bce", oe="none")
    with pytest.raises(OEADError, match=r"^epochs given twice on the command line"):
        oe_ad.fit(*args, epochs=2)
    with pytest.raises(OEADError, match="training diverged"):
        oe_ad.fit(*merged([*args, "epochs=2", "milestones=[]"]), method="bce", lr=1e30)
    assert not list((tmp_path / "runs").rglob("result.json"))


def test_fit_all_runs_the_sweep_as_the_cli_would(folder_root, oe_npy, tmp_path):
    args = merged([*tiny_overrides(folder_root, oe_npy, tmp_path / "runs"), "epochs=1", "milestones=[]"])
    fitted = oe_ad.fit_all(*args, method="hsc", normal_class=0, seed="0,1")
    assert sorted(f.record["seed"] for f in fitted) == [0, 1] and len({f.dir for f in fitted}) == 2

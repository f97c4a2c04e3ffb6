"""docs/extending.md stays true: its files, written to a temporary folder as shown, give a toy method, dataset,
OE source and experiment that `--config-dir` adds to the package's configs, and one job of it runs."""

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"


def doc_blocks() -> tuple[dict[str, str], list[str]]:
    """The ``# file: PATH`` blocks of the page ({path: text}) and the command lines of its ``# run:`` block."""
    files, commands = {}, []
    for body in re.findall(r"```[a-z]*\n(.*?)```", DOC.read_text(), flags=re.S):
        first, _, rest = body.partition("\n")
        if first.startswith("# file: "):
            files[first.removeprefix("# file: ").strip()] = rest
        elif first.startswith("# run:"):
            commands = [line.split("#")[0].strip() for line in rest.splitlines() if line.strip()]
    return files, commands


def as_module_call(command: str) -> list[str]:
    """``PYTHONPATH=. oe-ad-run ARGS`` -> ``python -m oe_ad.run ARGS``, from setup.cfg's console commands
    (the tests run in a checkout where the commands may not be installed)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = dict(
        line.replace(" ", "").split("=") for line in cfg["options.entry_points"]["console_scripts"].split("\n") if line
    )
    words = [w for w in command.split() if not w.startswith("PYTHONPATH=")]
    module = scripts[words[0]].split(":")[0].removesuffix(".__main__")
    return [sys.executable, "-m", module, *words[1:]]


def test_extending_page_example_runs_one_job(tmp_path):
    files, commands = doc_blocks()
    assert {"my_ext.py", "my_conf/method/margin.yaml", "my_conf/data/stripes.yaml", "my_conf/oe/noise.yaml"} <= set(
        files
    ) and "my_conf/experiment/stripes-demo.yaml" in files
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")]), "WANDB_MODE": "offline"}
    sweep, single = commands[0], commands[1]
    assert "oe-ad-sweep" in sweep and "--config-dir my_conf" in single

    listed = subprocess.run(as_module_call(sweep), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.strip().endswith("8 jobs") and "oe_size=4" in listed.stdout

    ran = subprocess.run(as_module_call(single), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-3000:]
    (record,) = (tmp_path / "runs" / "stripes-demo").rglob("result.json")
    result = json.loads(record.read_text())
    assert result["config"]["method"]["name"] == "margin" and result["config"]["data"]["name"] == "stripes"
    assert 0.0 <= result["test_auroc"] <= 1.0


@pytest.mark.parametrize("option", ["method=margin", "data=stripes"])
def test_user_config_choice_is_unknown_without_config_dir(option, tmp_path):
    """A group option of the user's folder composes only when the folder is passed."""
    from oe_ad.config import compose
    from oe_ad.errors import OEADError

    files, _ = doc_blocks()
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    compose([option], config_dirs=[tmp_path / "my_conf"])
    with pytest.raises(OEADError, match="unknown"):
        compose([option])

"""docs/research.md, top to bottom, on tiny images: its Python example runs as written (only the schedule shrunk), a
folder whose classes hold normal/ and anomalous/ images, a snapshot-initialised, frozen torchvision backbone with a
head, the class's anomalies as OE, AUROC, FPR@95 and AUPR-In/Out, an ONNX export scored by onnxruntime; then the
page's command line finds the same job's record."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import coloured_images

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "research.md"
# The page's schedule, shrunk for 2 CPU cores (the same change in the Python example and the command line).
SHRINK = (("epochs=20", "epochs=1"), ("milestones=[15]", "milestones=[]"), ("batch_size=32", "batch_size=8"))


def blocks(fence: str) -> list[str]:
    return re.findall(rf"^```{fence}\n(.*?)^```", PAGE.read_text(), flags=re.S | re.M)


def shrink(text: str) -> str:
    for old, new in SHRINK:
        assert old in text, old
        text = text.replace(old, new)
    return text


def command(line: str) -> list[str]:
    """A console command of the page as this interpreter runs it (``oe-ad-run`` -> ``python -m oe_ad.run``)."""
    name, *args = shlex.split(line)
    module = {"oe-ad-run": "oe_ad.run", "oe-ad-export": "oe_ad.export"}[name]
    return [sys.executable, "-m", module, *args]


def my_images(root: Path) -> None:
    """Two classes, each with normal and anomalous train and test images: normal red or green, anomalies blue."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("test", 8)):
        for name, normal in (("cable", (200, 40, 40)), ("screw", (40, 200, 40))):
            for kind, colour in (("normal", normal), ("anomalous", (40, 40, 200))):
                folder = root / split / name / kind
                folder.mkdir(parents=True)
                for i, image in enumerate(coloured_images(colour, n if kind == "normal" else n // 2, rng)):
                    Image.fromarray(image).save(folder / f"{name}-{split}-{kind}-{i}.png")


@pytest.mark.slow
def test_the_research_page_runs_top_to_bottom(tmp_path):
    my_images(tmp_path / "my_images")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    (python,) = blocks("python")
    run = subprocess.run(
        [sys.executable, "-c", shrink(python)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    metrics, flagged = run.stdout.strip().splitlines()[-2:]
    assert re.match(r"cable: AUROC [01]\.\d{3}, FPR@95 [01]\.\d{3}, AUPR-In [01]\.\d{3}, AUPR-Out [01]\.\d{3}", metrics)
    assert re.match(r"\d+ of 12 test images flagged", flagged)
    (record,) = (tmp_path / "runs" / "my-research").rglob("result.json")
    job = json.loads(record.read_text())
    assert job["oe_count"] == 8 and job["config"]["net"]["freeze"] == ["conv1", "bn1", "layer1", "layer2", "layer3"]
    assert job["inputs"]["net"]["fingerprint"] and (record.parent / "model.onnx").exists()

    (bash,) = blocks("bash")  # the same job from the command line: its folder, its record, skipped
    run_line, export_line = [command(line) for line in shrink(bash).replace("\\\n", " ").splitlines()]
    cli = subprocess.run(run_line, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert f"skip: {record.parent} is finished" in cli.stdout + cli.stderr
    assert json.loads(record.read_text()) == job
    exported = subprocess.run(export_line, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr[-3000:]

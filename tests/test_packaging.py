"""The wheel holds what an install outside the checkout needs, and every console command answers --help."""

import configparser
import json
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "oe_ad"


def console_scripts() -> dict[str, str]:
    """{command: "module:function"} from setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    """File names inside a wheel built from the checkout (without build isolation when setuptools allows)."""
    out = tmp_path_factory.mktemp("wheel")
    base = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)]
    scratch = [ROOT / "build", ROOT / "src" / "oe_ad.egg-info"]  # setuptools writes these into the checkout
    existed = [p.exists() for p in scratch]
    done = subprocess.run([*base, "--no-build-isolation"], capture_output=True, text=True)
    if done.returncode != 0:  # e.g. no `wheel` package for an old setuptools: let pip fetch the build backend
        done = subprocess.run(base, capture_output=True, text=True)
    for path, was_there in zip(scratch, existed):
        if not was_there:
            shutil.rmtree(path, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = out.glob("oe_ad-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_holds_every_config_list_and_the_launcher_plugin(wheel_names):
    configs = {f"oe_ad/{p.relative_to(PACKAGE)}" for p in (PACKAGE / "conf").rglob("*.yaml")}
    lists = {f"oe_ad/{p.relative_to(PACKAGE)}" for p in (PACKAGE / "data" / "lists").glob("*.txt")}
    assert len(configs) > 50 and "oe_ad/conf/config.yaml" in configs and "oe_ad/conf/hydra/help/oe_ad.yaml" in configs
    assert configs <= wheel_names, sorted(configs - wheel_names)
    assert lists and lists <= wheel_names
    assert "hydra_plugins/oe_ad_vectorised/__init__.py" in wheel_names
    assert not any(n.startswith(("tests/", "docs/", "conf/", "benchmarks/")) for n in wheel_names)


def test_wheel_declares_the_console_commands_and_dependencies(wheel_names, tmp_path):
    meta = {n.split("/")[-1]: n for n in wheel_names if ".dist-info/" in n}
    assert {"entry_points.txt", "METADATA"} <= set(meta)
    assert set(console_scripts()) == {
        "oe-ad-run",
        "oe-ad-sweep",
        "oe-ad-search",
        "oe-ad-report",
        "oe-ad-predict",
        "oe-ad-wandb-sync",
        "oe-ad-eval",
        "oe-ad-export",
    }


@pytest.mark.parametrize("command", sorted(console_scripts()))
def test_every_console_command_answers_help(command):
    """The entry point function itself, as the installed command calls it, with --help: usage, exit 0."""
    module, function = console_scripts()[command].split(":")
    code = f"import sys; sys.argv = [{command!r}, '--help']; from {module} import {function}; sys.exit({function}())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "src")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower() and command in done.stdout
    assert "Traceback" not in done.stderr and "powered by Hydra" not in done.stdout


def test_license_citation_and_changelog_agree_with_setup_cfg():
    """One version and one license everywhere a user or a citation tool looks."""
    from omegaconf import OmegaConf

    import oe_ad

    meta = configparser.ConfigParser()
    meta.read(ROOT / "setup.cfg")
    version, license_name = meta["metadata"]["version"], meta["metadata"]["license"]
    cff = OmegaConf.to_container(OmegaConf.load(ROOT / "CITATION.cff"))
    assert cff["cff-version"] == "1.2.0" and cff["version"] == version == oe_ad.__version__
    assert cff["license"] == license_name == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 the oe_ad authors\n")
    paper = cff["preferred-citation"]
    assert paper["journal"] == "Transactions on Machine Learning Research" and paper["year"] == 2022
    assert [a["family-names"] for a in paper["authors"]] == [
        "Liznerski",
        "Ruff",
        "Vandermeulen",
        "Franks",
        "Müller",
        "Kloft",
    ]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{version}] - " in changelog


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_install_refuses_another_python_in_one_line(tmp_path):
    """`make install PYTHON=...` with a Python other than 3.11: one error line naming its version, exit 2, and
    no .venv made."""
    fake = tmp_path / "python3.12"
    fake.write_text('#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.12.1"; exit 0; }\nexit 1\n')
    fake.chmod(0o755)
    had_venv = (ROOT / ".venv").exists()
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"PYTHON={fake}"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout.strip().splitlines() == [
        f"error: {fake} is not Python 3.11 (Python 3.12.1); oe_ad needs 3.11: make install PYTHON=python3.11"
    ]
    assert (ROOT / ".venv").exists() == had_venv


HEAVY = ("torch", "torchvision", "pytorch_lightning", "lightning_fabric", "matplotlib", "pandas", "wandb", "open_clip")


def run_entry_point(command: str, *args: str) -> tuple[subprocess.CompletedProcess, float, float, dict]:
    """The console command's entry point in a fresh interpreter: (process, wall s, CPU s, what it imported)."""
    module, function = console_scripts()[command].split(":")
    code = (
        f"import sys, json; sys.argv = [{command!r}, *{list(args)!r}]\n"
        f"try:\n    from {module} import {function}; code = {function}()\n"
        "except SystemExit as e:\n    code = e.code\n"
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules], 'code': code}}), file=sys.stderr)"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "src")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, wall, cpu, json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("command", sorted(console_scripts()))
def test_help_is_instant_and_imports_nothing_heavy(command):
    """--help parses before torch, Lightning, pandas or matplotlib are imported. The bound is on the command's CPU
    time (a wall-clock bound would measure the machine's other load): 2 s is generous, the Hydra commands take
    ~0.7 s (Hydra composes the config to print its groups), the others ~0.1 s."""
    done, wall, cpu, seen = run_entry_point(command, "--help")
    assert seen == {"heavy": [], "code": 0}, done.stderr[-2000:]
    assert cpu < 2.0, f"{command} --help took {cpu:.2f} s of CPU ({wall:.2f} s wall)"


@pytest.mark.parametrize("command", sorted(console_scripts()))
def test_every_command_prints_the_versions(command):
    """oe_ad's version (setup.cfg in a checkout) and the stack's, from metadata: nothing heavy is imported."""
    from oe_ad import __version__

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    done, _, _, seen = run_entry_point(command, "--version")
    assert seen == {"heavy": [], "code": 0}, done.stderr[-2000:]
    (line,) = done.stdout.splitlines()
    assert __version__ == cfg["metadata"]["version"] and line.startswith(f"oe_ad {__version__} (torch ")
    assert all(f"{name} " in line for name in ("torchvision", "pytorch-lightning", "hydra-core", "Python"))

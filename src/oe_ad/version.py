"""The package's version and the stack it runs on, for ``--version`` of every command.

Read from metadata files only (never by importing torch), so ``--version`` answers at once.
"""

import configparser
import importlib.metadata
import platform
from pathlib import Path

# What a bug report needs besides oe_ad's own version (distribution names as pip spells them).
STACK = ("torch", "torchvision", "pytorch-lightning", "hydra-core")
SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"  # present when running from a checkout


def package_version() -> str:
    """oe_ad's version: a checkout's ``setup.cfg`` (the code actually running, even when an older editable
    install's metadata is on the path), else the installed distribution's metadata."""
    if SETUP_CFG.is_file():
        cfg = configparser.ConfigParser()
        cfg.read(SETUP_CFG)
        if cfg.get("metadata", "name", fallback=None) == "oe_ad" and cfg.get("metadata", "version", fallback=None):
            return cfg["metadata"]["version"]
    try:
        return importlib.metadata.version("oe_ad")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def version_text() -> str:
    """``oe_ad X (torch …, torchvision …, pytorch-lightning …, hydra-core …, Python …)``: one line."""
    stack = ", ".join(f"{name} {distribution_version(name)}" for name in STACK)
    return f"oe_ad {package_version()} ({stack}, Python {platform.python_version()})"


def cpu_model() -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"

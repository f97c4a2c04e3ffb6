"""The paper's experiments, one YAML each: ``python -m oe_ad.experiments {list,help}`` (used by the Makefile).

``oe_ad/conf/experiment/<stem>.yaml`` holds an experiment's sweep and, under ``report:``, its ``help`` line and
the layout of its report (read by ``oe_ad.report``; the config hash and job folder names leave ``report`` out).
An experiment that sets ``search:`` is a search (``python -m oe_ad.search``), any other a sweep of jobs
(``python -m oe_ad.run``). Its records land in ``runs/<name>/``; a YAML whose ``name`` is another experiment's
(the ``-baselines`` sweeps) adds jobs to that experiment's folder and report and carries only ``report.help``.
"""

import argparse
import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from omegaconf import OmegaConf

from .config import CONF_DIR
from .errors import OEADError

EXPERIMENT_DIR = CONF_DIR / "experiment"


@dataclass(frozen=True)
class Experiment:
    """One experiment YAML as the Makefile and the report see it."""

    stem: str  # the file name: `make <stem>`, `experiment=<stem>`
    name: str  # the records' folder runs/<name>/ (another experiment's for the -baselines sweeps)
    kind: Literal["run", "search"]
    help: str
    data: str  # the data config it uses (for the class order of per-class paper values)
    report: dict[str, Any] = field(default_factory=dict)  # the report layout (without `help`); {} if it has none


def _choice(defaults: list, group: str) -> str | None:
    """The option a Hydra defaults list picks for ``group`` (``data: cifar10`` or ``override /data: mvtec``)."""
    for entry in defaults:
        for key, value in entry.items() if isinstance(entry, dict) else ():
            if key.removeprefix("override ").strip("/ ") == group:
                return value
    return None


def load(path: Path) -> Experiment:
    """Read one experiment YAML; a missing ``name`` or ``report.help`` is an error naming the file."""
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    report = dict(cfg.get("report") or {})
    help_line = report.pop("help", None)
    if not isinstance(cfg.get("name"), str) or not isinstance(help_line, str):
        raise OEADError(f"{path}: needs `name:` and `report.help:` (the line `make help` shows)")
    primary = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))
    data = _choice(cfg.get("defaults", []), "data") or _choice(primary["defaults"], "data")
    kind = "search" if "search" in cfg else "run"
    return Experiment(path.stem, cfg["name"], kind, help_line, data, report)


@cache
def experiments() -> dict[str, Experiment]:
    """Every experiment YAML, by file stem, in natural order (fig2 before fig13)."""
    paths = sorted(
        EXPERIMENT_DIR.glob("*.yaml"), key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.stem)]
    )
    found = {p.stem: load(p) for p in paths}
    for exp in found.values():
        if exp.stem != exp.name and (exp.name not in found or exp.report):
            raise OEADError(
                f"{EXPERIMENT_DIR / exp.stem}.yaml: name={exp.name} adds jobs to another experiment: "
                "that must be an experiment's file name, and this YAML may only carry report.help"
            )
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m oe_ad.experiments", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="the experiment names, one per line")
    listing.add_argument("kind", nargs="?", choices=("run", "search"), help="only sweeps of jobs, or only searches")
    sub.add_parser("help", help="one `make help` line per experiment")
    args = ap.parse_args(argv)
    try:
        found = experiments()
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for stem, exp in found.items():
        if args.command == "help":
            print(f"  {stem:<26} {exp.help}")
        elif args.kind in (None, exp.kind):
            print(stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())

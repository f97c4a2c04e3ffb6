"""Expand a multirun without running it: the job list Hydra's basic sweeper would launch, and (``--check``)
every job's composed config checked against the schema before anything trains.

Used by tests and by ``oe-ad-sweep [overrides]`` (``python -m oe_ad.sweep``) to preview the size of a sweep, and
by ``oe-ad-sweep --check`` to find the jobs of a sweep that would fail on their options (an ``oe_size`` larger
than the OE pool, a class out of range, a value left ``???``) before hours of the others have run.
"""

import copy
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .cli.args import ArgumentParser
from .config import CONF_DIR, GROUPS
from .run import check_group_choices, missing_value, one_line


def expand(overrides: list[str], config_name: str = "config", config_dirs: Sequence[Path] = ()) -> list[list[str]]:
    """Jobs (each a list of ``key=value`` overrides) for ``-m overrides``: the config's
    ``hydra.sweeper.params`` narrowed by the command line (a command-line key replaces the config's).
    ``config_name="search"`` expands a search sweep (``python -m oe_ad.search -m``); ``config_dirs`` are
    searched before the package's configs (as ``--config-dir``)."""
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    if config_dirs:
        fixed.append(f"hydra.searchpath=[{','.join(f'file://{Path(d).resolve()}' for d in config_dirs)}]")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=fixed, return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params") or {}
    # As BasicSweeper.sweep: config params first, command line after (a later key wins).
    parsed = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(overrides))
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _composes(key: str, groups: set[str]) -> bool:
    """Whether an override changes what Hydra composes (a group choice, ``hydra.*``, ``search/fitness=``), as
    opposed to a value set on the composed config."""
    return key in groups or "/" in key or key.startswith("hydra")


def check(
    overrides: list[str], config_name: str = "config", config_dirs: Sequence[Path] = (), multirun: bool = True
) -> tuple[list[list[str]], list[tuple[list[str], str]]]:
    """Compose every job of ``-m overrides`` (or the one job of ``overrides`` when not ``multirun``) as the
    launcher would and check it as a job checks itself before reading data: ``oe_ad.config.schema.validate_config``
    (types, ranges, unknown keys, ``oe_size`` against the size of a ``.npy`` OE pool read from its header, classes
    of a folder dataset counted from its folders) and every value resolved, none left ``???``. No image is read.

    Returns (jobs, failures), a failure being (job, one-line error). Jobs that make the same group choices share
    one composition, whose values are resolved once; each job's swept values are then set on it, as Hydra sets
    command-line values after composing. The jobs of one composition set the same keys (each job replaces the
    previous job's values) and the schema's normalisation is idempotent, so one working copy serves them all."""
    from .config.schema import validate_config  # imports torch (the method classes): only when checking

    jobs = expand(overrides, config_name, config_dirs) if multirun else [list(overrides)]
    groups = set(GROUPS) | {p.name for d in config_dirs for p in Path(d).iterdir() if p.is_dir()}
    parser = OverridesParser.create()
    parsed_once: dict[str, Override] = {}  # a sweep repeats few distinct overrides; parsing is the slow part
    fixed = set(overrides)
    extra = (
        [f"hydra.searchpath=[{','.join(f'file://{Path(d).resolve()}' for d in config_dirs)}]"] if config_dirs else []
    )
    bases: dict[tuple, tuple[DictConfig, DictConfig] | str] = {}
    failures: list[tuple[list[str], str]] = []
    hydra_config = HydraConfig.instance().cfg
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            for job in jobs:
                parsed = [parsed_once.get(o) or parsed_once.setdefault(o, parser.parse_overrides([o])[0]) for o in job]
                composed = tuple(o for o, p in zip(job, parsed) if o in fixed or _composes(p.key_or_group, groups))
                values = [p for o, p in zip(job, parsed) if o not in composed]
                key = (composed, tuple(p.key_or_group for p in values))
                if key not in bases:
                    try:
                        cfg = compose(config_name, overrides=[*composed, *extra], return_hydra_config=True)
                        HydraConfig.instance().set_config(cfg)  # as a launched job: ${hydra:...} values resolve
                        with open_dict(cfg):
                            del cfg["hydra"]
                        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
                        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # no ???, no broken ${...}
                        _resolve_fixed(cfg, [p.key_or_group for p in values])
                        bases[key] = (cfg, copy.deepcopy(cfg))
                    except Exception as e:
                        bases[key] = _one_line(e)
                if isinstance(bases[key], str):
                    failures.append((job, bases[key]))
                    continue
                base, work = bases[key]
                try:
                    if any(p.is_add() or p.is_delete() or p.is_force_add() for p in values):
                        work = copy.deepcopy(base)  # +key / ~key apply once: a fresh copy for each job
                    ConfigLoaderImpl._apply_overrides_to_config(values, work)
                    validate_config(work)
                except Exception as e:
                    failures.append((job, _one_line(e)))
    finally:
        HydraConfig.instance().cfg = hydra_config
    return jobs, failures


def _resolve_fixed(cfg: DictConfig, swept: list[str]) -> None:
    """Replace each interpolation of ``cfg`` that cannot depend on the ``swept`` keys by its value, so that the
    jobs of one composition do not resolve it again (resolving is most of the cost of checking a job). An
    interpolation depends on a key when it names it, a key above or below it, or another interpolation that does;
    relative ones (``${.x}``) are kept as they are."""
    found: list[tuple[DictConfig | ListConfig, Any, str, set[str]]] = []

    def walk(node: DictConfig | ListConfig, prefix: str) -> None:
        for key in node.keys() if isinstance(node, DictConfig) else range(len(node)):
            child = node._get_node(key)
            path = f"{prefix}{key}"
            if OmegaConf.is_interpolation(node, key):
                text = str(child._value())
                names = set() if "${." in text else set(re.findall(r"[A-Za-z_][\w.]*", text))
                found.append((node, key, path, names))
            elif isinstance(child, (DictConfig, ListConfig)) and not child._is_none() and not child._is_missing():
                walk(child, f"{path}.")

    def related(a: str, b: str) -> bool:
        return a == b or a.startswith(f"{b}.") or b.startswith(f"{a}.")

    walk(cfg, "")
    moving = set(swept)
    changed = True
    while changed:  # until no interpolation newly depends on a moving key
        changed = False
        for _, _, path, names in found:
            if path not in moving and (not names or any(related(n, m) for n in names for m in moving)):
                moving.add(path)
                changed = True
    for node, key, path, _ in found:
        if path not in moving:
            node[key] = node[key]


def _one_line(e: Exception) -> str:
    from omegaconf.errors import MissingMandatoryValue

    return missing_value(e) if isinstance(e, MissingMandatoryValue) else one_line(e)


def main(argv: list[str] | None = None) -> None:
    ap = ArgumentParser(
        prog="oe-ad-sweep",
        description="List the jobs that `oe-ad-run -m OVERRIDES` (or `oe-ad-search -m`) would launch, without "
        "running them: one line of overrides per job on stdout, the job count on stderr.",
    )
    ap.add_argument(
        "overrides", nargs="*", help="Hydra overrides as for oe-ad-run, e.g. experiment=fig2-cifar10 seed=0"
    )
    ap.add_argument("--search", action="store_true", help="expand an oe-ad-search sweep (config search.yaml)")
    ap.add_argument("--config-dir", "-cd", help="a config folder of your own, searched before the package's")
    ap.add_argument(
        "--check",
        action="store_true",
        help="also compose every job's config and check it as the job would before reading data (types, ranges, "
        "oe_size against the OE pool's size, values left ???); no image is read. Prints each failing job with "
        "its error and exits with 2 if any fails",
    )
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    user_dirs = [Path(args.config_dir)] if args.config_dir else []
    config_name = "search" if args.search else "config"
    failures: list[tuple[list[str], str]] = []
    try:
        check_group_choices(args.overrides, [CONF_DIR, *user_dirs])
        if args.check:
            jobs, failures = check(args.overrides, config_name, user_dirs)
        else:
            jobs = expand(args.overrides, config_name, user_dirs)
    except Exception as e:  # a bad override or config: one line, as oe-ad-run
        print(f"error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)
    for job in jobs:
        print(" ".join(job))
    for job, error in failures:
        print(f"error: {' '.join(job)}: {error}", file=sys.stderr)
    if args.check:
        print(f"{len(jobs)} jobs, {len(jobs) - len(failures)} pass the check, {len(failures)} fail", file=sys.stderr)
        sys.exit(2 if failures else 0)
    print(f"{len(jobs)} jobs", file=sys.stderr)


if __name__ == "__main__":
    main()

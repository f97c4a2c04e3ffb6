"""Expand a multirun without running it: the job list Hydra's basic sweeper would launch, and (``--check``)
every job's composed config passed through the one validation of a job before anything trains.

Used by tests and by ``oe-ad-sweep [overrides]`` (``python -m oe_ad.sweep``) to preview the size of a sweep, and
by ``oe-ad-sweep --check`` to find the jobs of a sweep that would fail on their options (an ``oe_size`` larger
than the OE pool, a class out of range, a value left ``???``) before hours of the others have run.
"""

import copy
import itertools
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

from .cli.args import ArgumentParser
from .config import GROUPS, compose, job_config


def expand(overrides: list[str], config_name: str = "config", config_dirs: Sequence[Path] = ()) -> list[list[str]]:
    """Jobs (each a list of ``key=value`` overrides) for ``-m overrides``, as Hydra's basic sweeper builds them:
    the config's ``hydra.sweeper.params`` narrowed by the command line (a command-line key replaces the config's),
    one job per combination. ``config_name="search"`` expands a search sweep; ``config_dirs`` as ``--config-dir``."""
    fixed = [o.input_line for o in OverridesParser.create().parse_overrides(overrides) if not o.is_sweep_override()]
    return combinations(compose(fixed, config_name, config_dirs).hydra.sweeper.get("params") or {}, overrides)


def combinations(params: Any, overrides: Sequence[str]) -> list[list[str]]:
    """Every combination of the swept values of ``params`` (``hydra.sweeper.params``) and ``overrides``, a later key
    replacing an earlier one in its place."""
    values: dict[str, list[str]] = {}
    for o in OverridesParser.create().parse_overrides([*(f"{k}={v}" for k, v in params.items()), *overrides]):
        key = o.get_key_element()
        swept = o.sweep_string_iterator() if o.is_sweep_override() else [o.get_value_element_as_str()]
        values[key] = [f"{key}={v}" for v in swept]
    return [list(job) for job in itertools.product(*values.values())]


def _apply(values: list[Override], cfg: DictConfig) -> None:
    """Set parsed ``key=value`` overrides on a composed config as Hydra does (``+`` adds, ``~`` deletes)."""
    from .config.schema import unknown_key

    with open_dict(cfg):
        for o in values:
            key = o.key_or_group
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            if o.is_delete():
                del node[leaf]
            elif not (o.is_add() or o.is_force_add()) and leaf not in list(getattr(node, "keys", list)()):
                raise unknown_key(key, [f"{parent}.{k}" if parent else str(k) for k in node or []])
            else:
                OmegaConf.update(cfg, key, o.value(), merge=True, force_add=True)


def check(
    overrides: list[str], config_name: str = "config", config_dirs: Sequence[Path] = (), multirun: bool = True
) -> tuple[list[list[str]], list[tuple[list[str], str]]]:
    """Compose every job of ``-m overrides`` (or the one job of ``overrides`` when not ``multirun``) and pass it
    through ``oe_ad.config.schema.validate_config``, as the job itself does before reading data (types, ranges,
    unknown keys, ``oe_size`` against a ``.npy`` pool's header, a folder dataset's classes, values left ``???``).
    No image is read. Jobs that make the same group choices share one composition and one working copy of it, to
    which each job's values are applied (the jobs of one composition set the same keys, each replacing the previous
    job's, and validation is idempotent; ``+``/``~`` overrides get a fresh copy). Returns (jobs, failures), a
    failure being (job, its one-line error)."""
    from .config.schema import validate_config
    from .job.failure import describe

    jobs = expand(overrides, config_name, config_dirs) if multirun else [list(overrides)]
    groups = set(GROUPS) | {p.name for d in config_dirs for p in Path(d).iterdir() if p.is_dir()}
    parser, parsed, fixed = OverridesParser.create(), {}, set(overrides)  # the command line's own, in every job
    bases: dict[tuple, tuple[DictConfig, DictConfig] | str] = {}
    failures: list[tuple[list[str], str]] = []
    hydra_config = HydraConfig.instance().cfg
    try:
        for job in jobs:
            ov = [parsed[o] if o in parsed else parsed.setdefault(o, parser.parse_overrides([o])[0]) for o in job]
            composes = tuple(o for o, p in zip(job, ov) if o in fixed or p.key_or_group in groups or
                             "/" in p.key_or_group or p.key_or_group.startswith("hydra"))  # fmt: skip
            if composes not in bases:
                try:
                    base = job_config(compose(list(composes), config_name, config_dirs))
                    resolve_fixed(base, {p.key_or_group for o, p in zip(job, ov) if o not in composes})
                    bases[composes] = (base, copy.deepcopy(base))
                except Exception as e:
                    bases[composes] = describe(e).message
            if isinstance(bases[composes], str):
                failures.append((job, bases[composes]))
                continue
            base, cfg = bases[composes]
            values = [p for o, p in zip(job, ov) if o not in composes]
            try:
                if any(p.is_add() or p.is_delete() or p.is_force_add() for p in values):
                    cfg = copy.deepcopy(base)
                _apply(values, cfg)
                validate_config(cfg)
            except Exception as e:
                failures.append((job, describe(e).message))
    finally:
        HydraConfig.instance().cfg = hydra_config
    return jobs, failures


def resolve_fixed(cfg: DictConfig, swept: set[str]) -> None:
    """Replace each interpolation of ``cfg`` that cannot depend on a ``swept`` key by its value, so that the jobs
    of one composition do not resolve it again (most of the cost of checking a job). An interpolation depends on a
    key when it names it, a key above or below it, or another interpolation that does; relative ones (``${.x}``)
    are kept."""
    from .config.schema import nodes

    def named(text: str) -> set[str]:
        return set() if "${." in text else set(re.findall(r"[A-Za-z_][\w.]*", text))

    def related(a: str, b: str) -> bool:
        return a == b or a.startswith(f"{b}.") or b.startswith(f"{a}.")

    found = [(n, key, path, named(str(c._value()))) for n, key, path, c in nodes(cfg) if c._is_interpolation()]
    moving, changed = set(swept), True
    while changed:  # until no interpolation newly depends on a moving key
        changed = False
        for *_, path, names in found:
            if path not in moving and (not names or any(related(n, m) for n in names for m in moving)):
                moving.add(path)
                changed = True
    for node, key, path, _ in found:
        if path not in moving:
            node[key] = node[key]


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
        if args.check:
            jobs, failures = check(args.overrides, config_name, user_dirs)
        else:
            jobs = expand(args.overrides, config_name, user_dirs)
    except Exception as e:  # a bad override or config: one line, as oe-ad-run
        from .job.failure import describe

        print(f"error: {describe(e).message}", file=sys.stderr)
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

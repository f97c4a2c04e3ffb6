"""Expand a multirun without running it: the job list Hydra's basic sweeper would launch.

Used by tests and by ``oe-ad-sweep [overrides]`` (``python -m oe_ad.sweep``) to preview the size of a sweep.
"""

import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from .cliargs import ArgumentParser
from .config import CONF_DIR
from .run import check_group_choices


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
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    user_dirs = [Path(args.config_dir)] if args.config_dir else []
    try:
        check_group_choices(args.overrides, [CONF_DIR, *user_dirs])
        jobs = expand(args.overrides, "search" if args.search else "config", user_dirs)
    except Exception as e:  # a bad override or config: one line, as oe-ad-run
        print(f"error: {str(e).splitlines()[0] if str(e) else e.__class__.__name__}", file=sys.stderr)
        sys.exit(2)
    for job in jobs:
        print(" ".join(job))
    print(f"{len(jobs)} jobs", file=sys.stderr)


if __name__ == "__main__":
    main()

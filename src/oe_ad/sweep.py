"""Expand a multirun without running it: the job list Hydra's basic sweeper would launch.

Used by tests and by ``python -m oe_ad.sweep [overrides]`` to preview the size of a sweep.
"""

import sys

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from .run import CONF_DIR


def expand(overrides: list[str], config_name: str = "config") -> list[list[str]]:
    """Jobs (each a list of ``key=value`` overrides) for ``-m overrides``: the config's
    ``hydra.sweeper.params`` narrowed by the command line (a command-line key replaces the config's).
    ``config_name="search"`` expands a search sweep (``python -m oe_ad.search -m``)."""
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=fixed, return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params") or {}
    # As BasicSweeper.sweep: config params first, command line after (a later key wins).
    parsed = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(overrides))
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


if __name__ == "__main__":
    jobs = expand(sys.argv[1:])
    for job in jobs:
        print(" ".join(job))
    print(f"{len(jobs)} jobs", file=sys.stderr)

"""The argument style of the non-Hydra commands (report, predict, eval, sweep): argparse, errors in one line,
``--version`` on every command. Nothing heavy is imported here: ``--help`` must answer at once."""

import argparse
import logging
import sys
from typing import Any, NoReturn

from ..version import version_text


class _Version(argparse.Action):
    """``--version``: the package and its stack (computed only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the versions of oe_ad, torch, Lightning and Hydra, then exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> NoReturn:
        print(version_text())
        parser.exit()


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one ``error: ...`` line (exit 2), like every other oe_ad error, and which
    answers ``--version``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action=_Version)

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def show_progress_and_warnings() -> None:
    """Log setup of a non-Hydra command: warnings, and the progress lines of long steps (``oe_ad.progress``) when
    stderr is not a terminal (on one, tqdm draws the bar)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("oe_ad.progress").setLevel(logging.INFO)

"""Progress of long steps with a rate and an ETA: a tqdm bar on a terminal; elsewhere (sweep logs, Slurm
output) one log line every ``OE_AD_PROGRESS_SECONDS`` seconds (default 10). Work that ends sooner stays silent."""

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("oe_ad.progress")
LINE = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}]"


def is_terminal() -> bool:
    """stderr is a terminal a bar can be drawn on (a pseudo-terminal without a size, e.g. some CI runners, gets
    log lines: tqdm would draw a bar of width 0)."""
    try:
        return sys.stderr.isatty() and os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (OSError, ValueError, AttributeError):
        return False


def interval() -> float:
    """Seconds between two progress lines when the output is not a terminal."""
    try:
        return float(os.environ.get("OE_AD_PROGRESS_SECONDS", 10))
    except ValueError:
        return 10.0


class Progress:
    """``with Progress(total, "decoding images", "images") as bar: ... bar.update(k)``.

    ``leave=False``: the terminal bar disappears when done (for steps another line sums up, e.g. an epoch).
    """

    def __init__(
        self, total: int | None, desc: str, unit: str = "it", terminal: bool | None = None, leave: bool = True
    ) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.terminal = is_terminal() if terminal is None else terminal
        self.t0 = self.last = time.monotonic()
        self.lines, self.shown = 0, 0
        self.bar = (
            tqdm(total=total, desc=desc, unit=unit, delay=1.0, dynamic_ncols=True, leave=leave)
            if self.terminal
            else None
        )

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif time.monotonic() - self.last >= interval():
            self._line()

    def set_description(self, desc: str) -> None:
        self.desc = desc
        if self.bar is not None:
            self.bar.set_description(desc)

    def _line(self) -> None:
        self.last, self.shown = time.monotonic(), self.n
        self.lines += 1
        log.info(self.format())

    def format(self) -> str:
        """The one-line state: done/total, percent, elapsed<remaining, rate."""
        elapsed = time.monotonic() - self.t0
        fmt = LINE if self.total else "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}]"
        return tqdm.format_meter(self.n, self.total, elapsed, prefix=self.desc, unit=self.unit, bar_format=fmt)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines and self.shown != self.n:  # the last word, if there were others
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(items: Iterable[T], total: int | None, desc: str, unit: str = "it") -> Iterator[T]:
    """``items``, reporting progress as they are consumed."""
    with Progress(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update()

"""How many models per stack, and which convolution mode, train a group of jobs fastest on this device: measured,
not assumed. Memory only bounds the stack sizes tried (``memory.models_per_step``).

:func:`choose` times a few fused steps (forward, backward, Adam) of stacks of 1, 2, 4, ... models of the group's
own method, network, batch and image size on the stack's device, in each convolution mode (``split``: each model's
own kernels in turn, the very kernels a single job runs; ``grouped``: one convolution for all models, one kernel
launch per layer), and keeps the size and mode with the least time per model and step. A larger stack is taken only
where it is at least :data:`GAIN` faster per model than the best smaller one, and the search stops at the first size
that is not; grouped convolutions are taken only where they are :data:`GAIN` faster than split ones. Each timing is
the fastest of a few steps after half a second of untimed ones, and where a stack wins, one model is timed once more
at the end: a device warms up over its first steps, which would otherwise favour whatever is timed later. In split
mode a
member's numbers are bit-identical whatever the stack size; grouped convolutions sum in another order, so there they
agree to float32 rounding. Where stacking does not pay (a CPU, typically), every stack holds one model: the jobs train
one after another in one process, as fast per step as single jobs and without their start-up, and the log says so.

The timings are cached per device and shape in ``<paths.cache_dir>/vectorised-probe.json``: a device is probed once
per network, method, batch and image size. Delete the file to probe again (e.g. after a driver update).
"""

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_open
from ..version import cpu_model

log = logging.getLogger(__name__)

CACHE_FILE = "vectorised-probe.json"
GAIN = 0.05  # a larger stack must be this much faster per model step than the best smaller one
MODES = ("split", "grouped")
WARM_SECONDS = 0.5  # untimed steps before each measurement
MIN_SECONDS = 0.3  # each measurement times steps for at least this long
MIN_STEPS = 3


@dataclass(frozen=True)
class Choice:
    """Models per stack and convolution mode, with the time per model step they give and that of one model alone."""

    models: int
    conv: str
    seconds: float | None  # None: nothing was measured (one option only)
    alone: float | None  # None: one model was not timed (a fixed stack size)
    cached: bool = False

    def describe(self, device: str, bound: int) -> str:
        if self.seconds is None:
            return f"stacks of {self.models} models with {self.conv} convolutions on {device} (the only option)"
        speed = f"{1e3 * self.seconds:.1f} ms per model step"
        speed += "" if self.alone is None else f" ({1e3 * self.alone:.1f} ms alone)"
        where = f"{device}, {'cached' if self.cached else 'measured'}"
        if self.models == 1 and bound > 1:
            return (
                f"stacking does not pay on {where}: stacks of 1 model, {speed}; the jobs train one after another "
                "in this process (hydra.launcher.max_models=N forces stacks of N)"
            )
        return f"stacks of {self.models} models with {self.conv} convolutions on {where}: {speed}"


def device_label(device: torch.device) -> str:
    """What the timings depend on besides the shape: the device (its CPU model and threads, or its GPU) and torch."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = cpu_model() + f", {torch.get_num_threads()} threads"
    return f"{name}, torch {torch.__version__}"


def time_per_step(step: Callable[[], None], sync: Callable[[], None]) -> float:
    """Seconds per call of ``step``: the fastest of at least :data:`MIN_STEPS` timed calls (and :data:`MIN_SECONDS`),
    after :data:`WARM_SECONDS` of untimed ones. The minimum, as a device warms up over its first steps (on a CPU the
    first steps of a process were 1.5x slower than later ones) and other work only ever slows a step."""
    t0 = time.perf_counter()
    while True:
        step()
        sync()
        if time.perf_counter() - t0 >= WARM_SECONDS:
            break
    times, t0 = [], time.perf_counter()
    while len(times) < MIN_STEPS or time.perf_counter() - t0 < MIN_SECONDS:
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return min(times)


def candidates(bound: int, fixed: int | None) -> list[int]:
    """The stack sizes to try: ``fixed`` alone (the user's hydra.launcher.max_models), else 1, 2, 4, ... up to
    ``bound`` (what fits and what the group holds), ``bound`` itself last."""
    if fixed is not None:
        return [max(1, min(fixed, bound))]
    sizes = [1]
    while sizes[-1] * 2 < bound:
        sizes.append(sizes[-1] * 2)
    return sizes + ([bound] if bound > 1 else [])


def choose(
    measure: Callable[[int, str], float],
    key: str,
    bound: int,
    fixed: int | None = None,
    conv: str = "auto",
    cache_dir: str | os.PathLike | None = None,
) -> Choice:
    """The stack size (at most ``bound``; ``fixed`` if given) and mode (``conv``, or measured for ``auto``) with the
    least time per model step. ``measure(models, mode)`` gives seconds per fused step of a stack; timings already in
    the cache under ``key`` are not measured again."""
    modes = MODES if conv == "auto" else (conv,)
    sizes = candidates(bound, fixed)
    if len(sizes) == 1 and (sizes[0] == 1 or len(modes) == 1):  # one option: nothing to measure
        return Choice(sizes[0], modes[0] if sizes[0] > 1 else "split", None, None)
    cache = ProbeCache(cache_dir)
    known = cache.get(key)
    measured = False

    def per_model(m: int, mode: str) -> float:
        nonlocal measured
        name = f"{m}/{mode}"
        if name not in known:
            known[name] = measure(m, mode) / m
            measured = True
        return known[name]

    best: tuple[float, int, str] | None = None
    for m in sizes:
        # one model: split runs exactly a single CNN32's kernels; grouped would be the same convolution
        here = None
        for mode in modes if m > 1 else ("split",):  # split first: grouped must be clearly faster
            t = per_model(m, mode)
            if here is None or t < here[0] * (1 - GAIN):
                here = (t, m, mode)
        if best is not None and here[0] >= best[0] * (1 - GAIN):
            break  # a larger stack did not pay: nor will a still larger one
        best = here
    seconds, models, mode = best
    alone = known.get("1/split")
    if fixed is None and models > 1 and "1/split again" not in known:
        # one model once more, now that the device has warmed up (it was measured first): the stack must beat it
        known["1/split again"] = measure(1, "split")
        measured = True
    if fixed is None and models > 1:
        alone = min(alone, known["1/split again"])
        if seconds >= alone * (1 - GAIN):
            seconds, models, mode = alone, 1, "split"
    if measured:
        cache.put(key, known)
    return Choice(models, mode, seconds, alone, cached=not measured)


class ProbeCache:
    """The measured timings, seconds per model step by ``"<models>/<mode>"``, per device and shape, in one JSON file;
    no folder (or an unwritable one): nothing is remembered."""

    def __init__(self, cache_dir: str | os.PathLike | None) -> None:
        self.path = Path(cache_dir) / CACHE_FILE if cache_dir else None

    def _all(self) -> dict:
        try:
            return json.loads(self.path.read_text()) if self.path else {}
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> dict[str, float]:
        return dict(self._all().get(key, {}))

    def put(self, key: str, timings: dict[str, float]) -> None:
        if self.path is None:
            return
        everything = self._all()
        everything[key] = timings
        try:
            with atomic_open(self.path) as fh:
                json.dump(everything, fh, indent=1, sort_keys=True)
        except OSError as e:
            log.debug("probe cache not written (%s): %s", self.path, e)

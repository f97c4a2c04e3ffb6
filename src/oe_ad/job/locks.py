"""Per-job lock files, so a job trains once however many sweeps (processes, SLURM arrays) share its folder.

``<job>/.lock`` is created exclusively (``O_CREAT | O_EXCL``, atomic on local file systems and NFS v3+) and
holds the owner's pid, host and start time; while the job runs, a heartbeat thread touches it every
``HEARTBEAT_S`` seconds. A lock is stale, and is taken over, when its pid is dead on this host, or when it comes
from another host and its heartbeat is older than ``OE_AD_LOCK_STALE_MINUTES`` (default 10: a job killed on one
SLURM node and requeued on another waits that long at most), or when it is still empty after a minute (its writer
died between creating and writing it). A take-over goes through a short-lived ``.lock.break`` file, so two
processes never both break one stale lock.
"""

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

LOCK_NAME = ".lock"
EMPTY_GRACE_S = 60.0
HEARTBEAT_S = 30.0
log = logging.getLogger(__name__)


def stale_after_s() -> float:
    """How long since its last heartbeat a lock of another host must be to count as abandoned."""
    return float(os.environ.get("OE_AD_LOCK_STALE_MINUTES", "10")) * 60


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _read(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


def is_stale(path: Path, info: dict[str, Any] | None) -> bool:
    """Whether the lock at ``path`` (content ``info``) belongs to nobody alive."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if info is None:
        return age > EMPTY_GRACE_S
    if info.get("host") == socket.gethostname():
        return not pid_alive(int(info.get("pid", -1)))
    return age > stale_after_s()  # the heartbeat keeps a live lock's mtime fresh


def _create_exclusive(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return True


class JobLock:
    """``lock.acquire()`` -> True if this process now owns the job folder; ``lock.release()`` gives it up."""

    def __init__(self, job_dir: str | os.PathLike) -> None:
        self.path = Path(job_dir) / LOCK_NAME
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
        self.holder: str = ""
        self.held = False
        self._stop = threading.Event()

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self.info["time"] = time.time()
            if _create_exclusive(self.path, json.dumps(self.info)):
                self.held = True
                self._stop.clear()
                threading.Thread(target=self._heartbeat, daemon=True, name="oe_ad-lock").start()
                return True
            other = _read(self.path)
            if not is_stale(self.path, other):
                self.holder = "pid {pid} on {host} since {when}".format(
                    pid=(other or {}).get("pid", "?"),
                    host=(other or {}).get("host", "?"),
                    when=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((other or {}).get("time", 0))),
                )
                return False
            self._break(other)
        return False

    def _break(self, seen: dict[str, Any] | None) -> None:
        """Remove the stale lock we saw, unless someone replaced it meanwhile."""
        guard = self.path.with_name(LOCK_NAME + ".break")
        if not _create_exclusive(guard, json.dumps(self.info)):
            if time.time() - _mtime(guard) > EMPTY_GRACE_S:  # a breaker died mid-break
                guard.unlink(missing_ok=True)
            time.sleep(0.1)
            return
        try:
            if _read(self.path) == seen:
                log.warning("taking over the stale lock %s (%s)", self.path, seen)
                self.path.unlink(missing_ok=True)
        finally:
            guard.unlink(missing_ok=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        self._stop.set()
        if self.held and _read(self.path) == self.info:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> "JobLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


class HeldLocks:
    """The locks of several jobs held together (the vectorised launcher trains them at once)."""

    def __init__(self) -> None:
        self.held: list[JobLock] = []

    def take(self, job_dir: str | os.PathLike) -> bool:
        lock = JobLock(job_dir)
        if lock.acquire():
            self.held.append(lock)
            return True
        return False

    def release_all(self) -> None:
        for lock in self.held:
            lock.release()
        self.held = []

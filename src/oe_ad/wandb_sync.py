"""Upload every offline W&B run under a folder: ``oe-ad-wandb-sync runs/fig2-cifar10 [--dry-run]``.

Without an API key each job logs offline into its own folder (``<job>/wandb/offline-run-<time>-<id>/run-<id>.wandb``)
and the report's summary run into ``runs/<experiment>/wandb/``: a sweep leaves thousands of them. This finds every
``.wandb`` file of an ``offline-run-*`` folder under DIR, leaves out those already uploaded (``wandb sync`` writes
``run-<id>.wandb.synced`` beside a file once the server has it), and hands the rest to ``wandb sync`` in batches, in
path order, so the files of a resumed run (one per resume, same id) upload oldest first. Running it again uploads
only what is still missing. See docs/wandb.md.
"""

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .cli.args import ArgumentParser
from .progress import Progress

SYNCED_SUFFIX = ".synced"
Runner = Callable[[Sequence[Path]], int]


def offline_runs(root: Path) -> list[Path]:
    """Every ``.wandb`` file of an ``offline-run-*`` folder under ``root``, sorted by path (hence by time
    within one ``wandb/`` folder)."""
    return sorted(f for d in root.rglob("offline-run-*") if d.is_dir() for f in d.glob("*.wandb") if f.is_file())


def is_synced(wandb_file: Path) -> bool:
    """Whether ``wandb sync`` has uploaded this file: its marker ``<file>.synced`` exists."""
    return wandb_file.with_name(wandb_file.name + SYNCED_SUFFIX).exists()


def wandb_sync(files: Sequence[Path]) -> int:
    """``wandb sync FILE...`` in this interpreter's environment; its exit code."""
    return subprocess.run([sys.executable, "-m", "wandb", "sync", *map(str, files)]).returncode


def batches(items: Sequence[Path], size: int) -> list[Sequence[Path]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def sync_all(pending: Sequence[Path], batch: int, runner: Runner = wandb_sync) -> tuple[int, list[Path]]:
    """Upload ``pending`` in batches of ``batch`` files; (number uploaded, files still without a marker).

    Stops after the first batch if none of it was uploaded (not logged in, no network): the other batches
    would fail the same way."""
    uploaded, failed = 0, []
    with Progress(len(pending), "wandb-sync", "runs", terminal=False) as bar:
        for part in batches(pending, batch):
            runner(part)  # its exit code says little: the markers say what reached the server
            missing = [f for f in part if not is_synced(f)]
            uploaded += len(part) - len(missing)
            failed += missing
            bar.update(len(part))
            print(f"{bar.format()} · {uploaded} uploaded, {len(failed)} failed", file=sys.stderr, flush=True)
            if uploaded == 0 and len(missing) == len(part):
                return uploaded, failed + list(pending[bar.n :])
    return uploaded, failed


def main(argv: list[str] | None = None, runner: Runner = wandb_sync) -> None:
    ap = ArgumentParser(
        prog="oe-ad-wandb-sync",
        description="Upload every offline W&B run under DIR (each job's wandb/offline-run-*, the report's "
        "summary run) that is not uploaded yet; running it again uploads only what is still missing. Needs "
        "`wandb login` or WANDB_API_KEY.",
    )
    ap.add_argument("dir", type=Path, help="an experiment folder (runs/<name>) or any folder above job folders")
    ap.add_argument("--dry-run", action="store_true", help="list the runs that would be uploaded; upload nothing")
    ap.add_argument("--batch", type=int, default=100, help="runs per `wandb sync` call (default 100)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.dir.is_dir():
        ap.error(f"{args.dir}: no such folder")
    if args.batch < 1:
        ap.error(f"--batch {args.batch}: must be at least 1")
    runs = offline_runs(args.dir)
    pending = [f for f in runs if not is_synced(f)]
    done = len(runs) - len(pending)
    print(f"{len(runs)} offline runs under {args.dir}: {done} already uploaded, {len(pending)} to upload")
    if args.dry_run or not pending:
        for f in pending if args.dry_run else ():
            print(f.parent)
        return
    uploaded, failed = sync_all(pending, args.batch, runner)
    print(f"{uploaded} uploaded, {len(failed)} not uploaded, {done} were already uploaded")
    if failed:
        print(
            f"error: {len(failed)} runs not uploaded, e.g. {failed[0].parent} (see wandb's messages above; "
            "`wandb login` or WANDB_API_KEY, network); run the same command again to retry them",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()

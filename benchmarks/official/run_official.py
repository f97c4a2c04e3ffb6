"""Run the paper's code (liznerski/eoe) under this folder's protocol and record its test AUCs with provenance.

    # a checkout you have (or --fetch DIR to clone the pinned commit)
    python benchmarks/official/run_official.py --eoe ../eoe --data data/cifar10-jpeg --oe tin32-oe-30k.npy \\
        --python ../eoe-venv/bin/python --jobs 2 --detach
    python benchmarks/official/run_official.py --list                 # status of every job
    python benchmarks/official/run_official.py --collect              # -> benchmarks/references/cifar10-12ep.json

Nothing of the paper's code is copied here: ``--eoe`` points at a checkout, ``patches.py`` patches it at import
time. See README.md in this folder for the protocol and the patches.
"""

import argparse
import dataclasses
import fcntl
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if __name__ == "__main__":  # run as a script: import this package, and oe_ad from this checkout
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(REPO), str(REPO / "src")] + [p for p in sys.path if p and Path(p).resolve() != here]

from benchmarks.official import data as data_mod  # noqa: E402
from benchmarks.official import jobs as jobs_mod  # noqa: E402
from benchmarks.official import references, runqueue  # noqa: E402

EOE_URL = "https://github.com/liznerski/eoe"
EOE_COMMIT = "11054e448223b988c26c636bedb33b4f83b94aca"  # the commit the references were measured with
DEFAULT_OUT = REPO / "benchmarks" / "references" / "cifar10-12ep.json"


class UserError(Exception):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--eoe", type=Path, help="a checkout of liznerski/eoe (its src/eoe is run)")
    src.add_argument("--fetch", type=Path, help=f"git clone {EOE_URL} into this folder at the pinned commit")
    p.add_argument("--commit", help="the eoe commit of --eoe when the checkout has no .git (40 hex digits)")
    p.add_argument("--data", type=Path, help="CIFAR-10 as an ImageFolder tree: DATA/{train,test}/<class>/*.jpg")
    p.add_argument("--oe", type=Path, help="the OE pool: an (N, 32, 32, 3) uint8 .npy")
    p.add_argument("--archive", type=Path, help="optional: the archive --data was extracted from (SHA-256 recorded)")
    p.add_argument("--work", type=Path, default=REPO / "runs" / "official", help="runs, logs, data copy")
    p.add_argument("--python", default=sys.executable, help="the interpreter with the paper's code's requirements")
    p.add_argument("--jobs", type=int, default=2, help="jobs at once, one thread each (default 2)")
    p.add_argument("--nice", type=int, default=19, help="niceness of each job (default 19; 0: no nice)")
    p.add_argument("--only", nargs="+", default=None, help="run only the cells whose id contains one of these")
    p.add_argument(
        "--max-runs",
        type=int,
        default=None,
        help="run at most this many runs of each cell now (a later call without it runs the rest)",
    )
    p.add_argument("--detach", action="store_true", help="run the queue in the background (log: WORK/queue.log)")
    p.add_argument("--quiet", action="store_true", help="progress lines only to WORK/queue.log, not stdout")
    p.add_argument("--list", action="store_true", help="print every job with its status and exit")
    p.add_argument("--collect", action="store_true", help="merge finished runs into --out and exit")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the reference file --collect writes")
    return p.parse_args(argv)


def eoe_checkout(args: argparse.Namespace) -> tuple[Path, str]:
    """The checkout to run and its commit."""
    if args.fetch is not None:
        if not (args.fetch / ".git").is_dir():
            subprocess.run(["git", "clone", "--quiet", EOE_URL, str(args.fetch)], check=True)
        subprocess.run(["git", "-C", str(args.fetch), "checkout", "--quiet", EOE_COMMIT], check=True)
        args.eoe = args.fetch
    if args.eoe is None:
        raise UserError("give --eoe DIR (a checkout of liznerski/eoe) or --fetch DIR (clone it there)")
    eoe = args.eoe.resolve()
    if not (eoe / "src" / "eoe" / "main" / "train_cifar.py").is_file():
        raise UserError(f"--eoe {eoe}: no src/eoe/main/train_cifar.py; point it at a checkout of liznerski/eoe")
    commit = args.commit
    if commit is None and (eoe / ".git").exists():
        out = subprocess.run(["git", "-C", str(eoe), "rev-parse", "HEAD"], capture_output=True, text=True)
        commit = out.stdout.strip() if out.returncode == 0 else None
    if commit is None or not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise UserError(f"--commit: {eoe} has no readable .git; give the 40-hex commit it was taken from")
    return eoe, commit


def selected_cells(pool_size: int, only: list[str] | None, max_runs: int | None = None) -> list[jobs_mod.Cell]:
    cells = jobs_mod.protocol_cells(pool_size)
    chosen = [c for c in cells if only is None or any(s in c.id for s in only)]
    if max_runs is None:
        return chosen
    return [dataclasses.replace(c, runs=min(c.runs, max_runs)) for c in chosen]


def list_jobs(work: Path, pool_size: int) -> None:
    for job in jobs_mod.protocol_jobs(selected_cells(pool_size, None)):
        path = runqueue.record_path(work, job)
        if path.is_file():
            r = json.loads(path.read_text())
            print(f"{job.id:28} done     AUC {r['auc']:6.2f}  {r['wall_s'] / 60:5.1f} min  {r['date']}")
        else:
            tries = sorted(path.parent.glob(f"run{job.run}.try*"))
            print(f"{job.id:28} {'started' if tries else 'pending'}")


def detach(argv: list[str], work: Path) -> None:
    """Start this command again without --detach in its own session, so it outlives the shell."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), *[a if a != "--detach" else "--quiet" for a in argv]]
    with open(work / "queue.out", "a") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO
        )
    print(f"queue started in the background: pid {proc.pid}; progress: {work / 'queue.log'}")


def logger(work: Path, echo: bool):
    path = work / "queue.log"

    def log(msg: str) -> None:
        line = f"{datetime.now().astimezone().isoformat(timespec='seconds')} {msg}"
        with open(path, "a") as f:
            f.write(line + "\n")
        if echo:
            print(line, flush=True)

    return log


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    work = args.work.resolve()
    if args.collect:
        order = [c.id for c in jobs_mod.protocol_cells(data_mod.check_pool(args.oe)[0])] if args.oe else None
        merged = references.collect(work, args.out, order)
        for cid, cell in merged["cells"].items():
            sd = f" sd {cell['sd']:.2f}" if cell["sd"] is not None else ""
            runs = ", ".join(f"{a:.2f}" for a in cell["runs"])
            print(f"{cid:28} n {cell['n']}  mean {cell['mean']:6.2f}{sd}  runs {runs}")
        print(f"wrote {args.out}")
        return 0
    if args.list:
        if not (work / "data" / "manifest.json").is_file():
            raise UserError(f"--work {work}: no queue has run there yet (no data/manifest.json)")
        manifest = json.loads((work / "data" / "manifest.json").read_text())
        list_jobs(work, manifest["oe"]["shape"][0])
        return 0
    if args.data is None or args.oe is None:
        raise UserError("give --data (the CIFAR-10 ImageFolder copy) and --oe (the OE pool .npy)")
    eoe, commit = eoe_checkout(args)
    if args.jobs < 1:
        raise UserError("--jobs: give 1 or more")
    if args.max_runs is not None and args.max_runs < 1:
        raise UserError("--max-runs: give 1 or more")
    if args.detach:
        detach(argv, work)
        return 0
    work.mkdir(parents=True, exist_ok=True)
    lock = open(work / "queue.lock", "a+")  # noqa: SIM115 -- held (locked) until this process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UserError(f"--work {work}: another queue is running there (see {work / 'queue.log'})") from None
    log = logger(work, echo=not args.quiet)
    manifest = data_mod.prepare(args.data, args.oe, work / "data", args.archive)
    pool_size = manifest["oe"]["shape"][0]
    data = {
        "data_folder": "<data>",  # the --data folder; its content is named by the SHA-256s
        "archive_sha256": manifest.get("archive", {}).get("sha256"),
        "cifar_batches_sha256": {name: f["sha256"] for name, f in manifest["cifar"]["files"].items()},
        "oe_file": "<oe>",  # the --oe file
        "oe_sha256": manifest["oe"]["sha256"],
        "oe_shape": manifest["oe"]["shape"],
    }
    environment = runqueue.probe_environment(args.python)
    ctx = runqueue.Context(eoe, work, args.python, commit, environment, data, nice=args.nice, log=log)
    log(f"pid {os.getpid()}: eoe {commit} at {eoe}; python {args.python} (torch {environment['torch']})")
    jobs = jobs_mod.protocol_jobs(selected_cells(pool_size, args.only, args.max_runs))
    runqueue.run_queue(jobs, ctx, args.jobs)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (UserError, data_mod.DataError, runqueue.RunError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

"""A resumable queue of paper-code runs: one process per job, N at a time, each job's record written atomically.

A job's record is ``WORK/<cell>/run<k>.json``; a job whose record exists is finished and is skipped, so the queue
can be stopped and started again at any time. A job that fails is logged and retried once; a job that failed
twice is tried again the next time the queue starts. The paper's logs of each try stay in
``WORK/<cell>/run<k>.try<n>/``.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from oe_ad.version import cpu_model

from .jobs import BATCH_SIZE, EPOCHS, MILESTONES, Job

PATCHES_SCRIPT = Path(__file__).resolve().with_name("patches.py")
CHECKOUT = PATCHES_SCRIPT.parents[2]  # this repository


def portable(text: str, roots: dict[str, str | Path]) -> str:
    """``text`` with each root path (the longest first) written as its name (``<work>``, ``<checkout>``, ...), so
    that a recorded command reads the same on any machine (the reference file's provenance)."""
    for name, root in sorted(roots.items(), key=lambda kv: -len(str(kv[1]))):
        text = text.replace(str(root), name)
    return text


TRIES = 2

# eoe's per-run line (ad_trainer.ADTrainer.eval_cls), e.g.
# Eval: class "automobile" yields 87.24% AUC and 80.12% average precision (seed 0).
EVAL_LINE = re.compile(
    r'Eval: class "(?P<cls>[^"]+)" yields (?P<auc>\d+(?:\.\d+)?)% AUC '
    r"and (?P<ap>\d+(?:\.\d+)?)% average precision \(seed (?P<seed>\d+)\)\."
)


class RunError(Exception):
    """A run whose output does not hold exactly one test result."""


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def parse_eval_lines(text: str) -> list[dict]:
    """Every per-run test result line in eoe's output: class name, AUC %, average precision %, seed."""
    return [
        {"class": m["cls"], "auc": float(m["auc"]), "ap": float(m["ap"]), "seed": int(m["seed"])}
        for m in EVAL_LINE.finditer(text)
    ]


def read_result(job_dir: Path, normal_class: int) -> dict:
    """Test AUC and AP (%) of the one run in ``job_dir``: full precision from eoe's ``results.json``, checked
    against the rounded line in its ``logtxt.txt``."""
    log_dirs = sorted((job_dir / "eoe-data" / "results").glob("log_*"))
    if len(log_dirs) != 1:
        raise RunError(f"{job_dir}: expected one eoe log folder under eoe-data/results, found {len(log_dirs)}")
    log_dir = log_dirs[0]
    lines = parse_eval_lines((log_dir / "logtxt.txt").read_text()) if (log_dir / "logtxt.txt").is_file() else []
    if len(lines) != 1:
        raise RunError(f"{log_dir}/logtxt.txt: expected one 'Eval: class ...' line, found {len(lines)}")
    results = json.loads((log_dir / "results.json").read_text())
    aucs = results["eval_cls_rocs"][normal_class]
    if len(aucs) != 1 or aucs[0] is None:
        raise RunError(f"{log_dir}/results.json: expected one AUC for class {normal_class}, found {aucs}")
    auc, ap = 100 * aucs[0], 100 * results["eval_mean_avg_prec"]
    if abs(auc - lines[0]["auc"]) > 0.006 or abs(ap - lines[0]["ap"]) > 0.006:
        raise RunError(f"{log_dir}: results.json ({auc}, {ap}) disagrees with logtxt.txt {lines[0]}")
    return {"auc": round(auc, 6), "ap": round(ap, 6), "log_dir": str(log_dir)}


def record_path(work: Path, job: Job) -> Path:
    return work / job.cell.id / f"run{job.run}.json"


def pending(jobs: list[Job], work: Path) -> list[Job]:
    """The jobs without a record, in order."""
    return [job for job in jobs if not record_path(work, job).is_file()]


def write_json_atomic(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


@dataclass
class Context:
    """What every job of one queue shares: paths, the paper's commit and the environment it runs in."""

    eoe: Path
    work: Path
    python: str
    eoe_commit: str
    environment: dict
    data: dict
    nice: int = 19
    log: Callable[[str], None] = print
    counts: dict = field(default_factory=lambda: {"done": 0, "failed": 0})

    def roots(self) -> dict[str, str | Path]:
        """The paths a recorded command names by role: the interpreter, the paper's code, the work folder, this
        checkout."""
        return {"<python>": self.python, "<eoe>": self.eoe, "<work>": self.work, "<checkout>": CHECKOUT}

    def command(self, job: Job, out: Path) -> list[str]:
        cmd = ["nice", "-n", str(self.nice)] if self.nice else []
        cmd += [self.python, str(PATCHES_SCRIPT), "--eoe", str(self.eoe), "--data", str(self.work / "data")]
        cmd += ["--out", str(out)]
        if job.cell.oe_index is not None:
            cmd += ["--oe-index", str(job.cell.oe_index)]
        return cmd + ["--", *job.cell.eoe_args()]


def child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return env


def run_job(job: Job, ctx: Context) -> dict | None:
    """Run one job (up to TRIES times); write and return its record, or None when every try failed."""
    for attempt in range(1, TRIES + 1):
        out = ctx.work / job.cell.id / f"run{job.run}.try{attempt}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        cmd = ctx.command(job, out)
        started, t0 = now_iso(), time.monotonic()
        with open(out / "output.log", "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env())
        wall = time.monotonic() - t0
        try:
            if proc.returncode != 0:
                raise RunError(f"exit code {proc.returncode}")
            result = read_result(out, job.cell.normal_class)
        except (RunError, OSError, KeyError, ValueError) as e:
            tail = (out / "output.log").read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-3:]
            ctx.log(f"FAILED {job.id} try {attempt}/{TRIES} after {wall / 60:.1f} min: {e} | {' | '.join(tail)}")
            continue
        indices_file = out / "oe_indices.json"
        record = {
            "job": job.id,
            "cell": job.cell.id,
            "run": job.run,
            "method": job.cell.method,
            "oe": job.cell.oe,
            "oe_size": job.cell.oe_size,
            "oe_index": job.cell.oe_index,
            "normal_class": job.cell.normal_class,
            "epochs": EPOCHS,
            "milestones": list(MILESTONES),
            "batch_size": BATCH_SIZE,
            "auc": result["auc"],
            "ap": result["ap"],
            "date": started,
            "finished": now_iso(),
            "wall_s": round(wall, 1),
            "attempt": attempt,
            "command": portable(shlex.join(cmd), ctx.roots()),
            "eoe_args": job.cell.eoe_args(),
            "eoe_commit": ctx.eoe_commit,
            "oe_indices": json.loads(indices_file.read_text())["draws"] if indices_file.is_file() else None,
            "environment": ctx.environment,
            "data": ctx.data,
            "output_log": str(out / "output.log"),
            "eoe_log_dir": result["log_dir"],
        }
        write_json_atomic(record_path(ctx.work, job), record)
        return record
    return None


def run_queue(jobs: list[Job], ctx: Context, parallel: int, runner: Callable[[Job, Context], dict | None] = run_job):
    """Run the pending jobs, ``parallel`` at a time, logging one line per finished or failed job."""
    todo = pending(jobs, ctx.work)
    total, lock = len(jobs), threading.Lock()
    ctx.log(f"queue: {total - len(todo)} of {total} jobs already done; {len(todo)} to run, {parallel} at a time")

    def one(job: Job) -> None:
        ctx.log(f"start {job.id}")
        try:
            record = runner(job, ctx)
        except Exception as e:  # one job's surprise must not stop the others
            ctx.log(f"FAILED {job.id}: {e.__class__.__name__}: {e}")
            record = None
        with lock:
            ctx.counts["done" if record else "failed"] += 1
            done_now = total - len(pending(jobs, ctx.work))
        if record:
            ctx.log(
                f"done {job.id}: AUC {record['auc']:.2f} AP {record['ap']:.2f} in {record['wall_s'] / 60:.1f} min "
                f"[{done_now}/{total} done, {ctx.counts['failed']} failed this session]"
            )
        else:
            ctx.log(f"gave up on {job.id} for this session after {TRIES} tries [{done_now}/{total} done]")

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, todo))
    ctx.log(f"queue finished: {ctx.counts['done']} done, {ctx.counts['failed']} failed in this session")


def probe_environment(python: str) -> dict:
    """Versions of the interpreter that runs the paper's code, the CPU model and the threads per job."""
    code = (
        "import json, platform, sys, numpy, torch, torchvision; print(json.dumps({'python': platform.python_version(),"
        " 'torch': torch.__version__, 'torchvision': torchvision.__version__, 'numpy': numpy.__version__}))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=child_env())
    if out.returncode != 0:
        raise RunError(f"{python} cannot import numpy/torch/torchvision: {out.stderr.strip().splitlines()[-1:]}")
    env = json.loads(out.stdout.strip().splitlines()[-1])
    env.update(threads=1, cpu=cpu_model(), cores=os.cpu_count(), platform=sys.platform)
    return env

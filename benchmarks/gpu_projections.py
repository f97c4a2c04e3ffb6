"""Section 6 of gpu_check.py: the cost of the paper's CIFAR-10 sweeps and of one evolutionary search, from the
measured rates, each printed with its formula. Job counts and epochs are read from the experiment configs."""

import math
from pathlib import Path

from gpu_sections import STEPS_PER_EPOCH, Context, Section
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "src" / "oe_ad" / "conf"
IMAGES_PER_EPOCH = STEPS_PER_EPOCH * 256  # CIFAR-10 one vs. rest: 40 steps of 128 normal + 128 OE
PAPER_SEARCH_DAYS = 9  # the paper: its evolutionary search (Algorithm 1) took 9 days per class on a DGX A100


def _load(path: Path) -> dict:
    """A YAML file as plain data (interpolations left unresolved)."""
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def _count(value) -> int:
    """Jobs a sweeper value expands to: ``range(a,b)``, ``a,b,c`` or a single value."""
    text = str(value).replace(" ", "")
    if text.startswith("range("):
        lo, hi = (int(v) for v in text[6:-1].split(",")[:2])
        return hi - lo
    return len(text.split(","))


def sweep(experiment: str) -> tuple[int, int]:
    """(jobs, epochs per job) of conf/experiment/<experiment>.yaml over the base config's classes and seeds."""
    base = _load(CONF / "config.yaml")
    exp = _load(CONF / "experiment" / f"{experiment}.yaml")
    params = {**base["hydra"]["sweeper"]["params"], **exp.get("hydra", {}).get("sweeper", {}).get("params", {})}
    epochs = exp.get("epochs", _load(CONF / "data" / "cifar10.yaml")["epochs"])
    return math.prod(_count(v) for v in params.values()), epochs


def versus_paper(seconds: float) -> str:
    return f"9 days / this = {PAPER_SEARCH_DAYS * 86400 / seconds:.2f}"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds < 72 * 3600 else f"{seconds / 86400:,.1f} days"


def projections(sec: Section, ctx: Context) -> None:
    e2e, vec = ctx.results.get(1), ctx.results.get(3)
    if e2e is None or "job_img_s" not in e2e.data:
        raise RuntimeError("section 1 gave no job rate")
    rate, fixed = e2e.data["job_img_s"], e2e.data["fixed_s"]
    where = "CPU smoke figures" if ctx.s.smoke else "this GPU"
    sec.data = {"images_per_epoch": IMAGES_PER_EPOCH, "job_img_s": rate, "fixed_s_per_job": fixed, "basis": where}
    sec.add("fixed s per job: start-up, data, test (§1, first JPEG decoding included: upper bound)", f"{fixed:.0f} s")
    for experiment, label in (("table1-cifar10", "Table 1 CIFAR-10 row"), ("fig2-cifar10", "Figure 2 CIFAR-10")):
        jobs, epochs = sweep(experiment)
        total = jobs * (epochs * IMAGES_PER_EPOCH / rate + fixed)
        sec.data[experiment] = {"jobs": jobs, "epochs": epochs, "seconds": total}
        formula = f"{jobs:,} jobs x ({epochs} ep x {IMAGES_PER_EPOCH:,} img / {rate:,.0f} img/s + {fixed:.0f} s)"
        sec.add(f"{label}, one GPU: {formula}", hours(total))

    search = _load(CONF / "search.yaml")["search"]
    individuals, generations, seeds = search["generation_size"], search["generations"], len(search["seeds"])
    _, epochs = sweep("table3-cifar10")
    models = individuals * generations * seeds
    plain = models * epochs * IMAGES_PER_EPOCH / rate
    sec.data["search"] = {"models": models, "epochs": epochs, "sequential_s": plain}
    formula = f"{individuals} x {generations} gen x {seeds} seeds x {epochs} ep"
    formula += f" x {IMAGES_PER_EPOCH:,} img / {rate:,.0f} img/s"
    sec.add(f"one search, one model at a time: {formula}", f"{hours(plain)} ({versus_paper(plain)})")
    epoch_s = (vec.data.get("epoch_s") or {}) if vec is not None else {}
    if epoch_s:
        m = max(epoch_s)
        stacks = math.ceil(individuals * seeds / m)
        stacked = generations * stacks * epochs * epoch_s[m]
        sec.data["search"] |= {"stack": m, "vectorised_s": stacked}
        formula = f"{generations} gen x {stacks} stacks of {m} x {epochs} ep x {epoch_s[m]:.2f} s/epoch"
        sec.add(f"one search, vectorised: {formula}", f"{hours(stacked)} ({versus_paper(stacked)})")
    else:
        sec.add("one search, vectorised", "", check="skipped: section 3 gave no epoch times")
    sec.add("paper: one search (one class) on a DGX A100", f"{PAPER_SEARCH_DAYS} days (basis here: {where})")

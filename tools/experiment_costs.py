"""Job counts and estimated GPU hours of every experiment config: the table of docs/experiments.md.

``python tools/experiment_costs.py`` prints it as markdown. The hours are an ESTIMATE from the per-image
costs below (assumed for one A100-class GPU, not measured): seconds per epoch = images per epoch (normal
training images, doubled when OE fills the other half of each batch) x the network's cost per image, plus a
fixed start-up/test cost per training run. A search evaluates ``generation_size x (generations + 1)`` images,
each trained with ``len(search.seeds)`` seeds.
"""

import sys
from collections import Counter
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import get_class

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from oe_ad.config import CONF_DIR  # noqa: E402
from oe_ad.sweep import expand  # noqa: E402

SECONDS_PER_IMAGE = {"cnn32": 1e-4, "resnet18_cbam": 5e-4, "clip": 7e-4}  # forward + backward + augmentation
NORMAL_IMAGES = {  # normal training images per epoch: one vs. rest / leave-one-class-out (MVTec: mean category)
    ("cifar10", "ovr"): 5000,
    ("cifar10", "loo"): 45000,
    ("imagenet30", "ovr"): 1300,
    ("imagenet30", "loo"): 37700,
    ("mvtec", "ovr"): 242,
}
OVERHEAD_S = 20  # start-up, data loading and the test pass of one training run


def run_hours(cfg, net: str) -> float:
    """Estimated GPU hours of one training run of the composed job config."""
    method = get_class(cfg.method._target_)
    if not method.needs_training:
        return OVERHEAD_S / 3600
    images = NORMAL_IMAGES[(cfg.data.name, cfg.benchmark)] * (2 if method.oe_use != "none" else 1)
    return (cfg.epochs * images * SECONDS_PER_IMAGE[net] + OVERHEAD_S) / 3600


def experiment_cost(name: str) -> tuple[int, float, bool]:
    """(jobs, estimated GPU hours, is a search) of ``experiment=name``."""
    search = (CONF_DIR / "experiment" / f"{name}.yaml").read_text().count("search:") > 0
    config = "search" if search else "config"
    jobs = expand([f"experiment={name}"], config)
    hours = 0.0
    methods = Counter(next((o for o in job if o.startswith("method=")), None) for job in jobs)
    for method, count in methods.items():
        overrides = [f"experiment={name}"] + ([method] if method else [])
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose(config, overrides=overrides, return_hydra_config=True)
        runs = len(cfg.search.seeds) * cfg.search.generation_size * (cfg.search.generations + 1) if search else 1
        hours += count * runs * run_hours(cfg, cfg.hydra.runtime.choices.net)
    return len(jobs), hours, search


def main() -> None:
    print("| experiment | jobs | est. GPU hours |")
    print("|---|---|---|")
    for path in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        jobs, hours, search = experiment_cost(path.stem)
        print(f"| `{path.stem}` | {jobs}{' searches' if search else ''} | {hours:,.0f} |")


if __name__ == "__main__":
    main()

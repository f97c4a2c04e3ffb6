"""Every experiment config composes and its sweep expands to the expected number of jobs (nothing trains).

Configs that use a data/oe/net/method option that is not in conf/ yet are skipped with the option named, so
they are checked as soon as that option lands.
"""

import re

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from oe_ad.run import CONF_DIR
from oe_ad.sweep import expand

SEARCHES = {
    "table3-cifar10",
    "table3-imagenet30",
    "table4-lpf-cifar10",
    "table4-hpf-cifar10",
    "table4-lpf-imagenet30",
    "table4-hpf-imagenet30",
    "table5-cifar10",
    "table5-imagenet30",
}
JOBS = {
    "table1-cifar10": 4 * 10 * 10,
    "table1-imagenet30": 4 * 30 * 10,
    "fig2-cifar10": 2 * 19 * 10 * 10,
    "fig2-imagenet30": 2 * 22 * 30 * 5,
    "fig3-cifar10": 4 * 19 * 10 * 2,
    "fig3-cifar10-baselines": 3 * 10 * 2,
    "fig3-imagenet30": 2 * 22 * 30 * 2,
    "fig3-imagenet30-baselines": 2 * 30 * 2,
    "fig4-mvtec": 4 * 16 * 15 * 2,
    "fig4-mvtec-baselines": 3 * 15 * 2,
    "table2-cifar10": 2 * 10 * 10,
    "table2-imagenet30": 2 * 30 * 10,
    "fig6-cifar100": 2 * 100 * 10 * 2,
    "table6-hsc": 4 * 2 * 10 * 10,
    "fig13-focal": 6 * 10 * 10,
    "freq-lpf-cifar10": 2 * 16 * 6 * 10 * 2,
    "freq-hpf-cifar10": 2 * 16 * 6 * 10 * 2,
    "freq-lpf-imagenet30": 2 * 12 * 6 * 30 * 2,
    "freq-hpf-imagenet30": 2 * 12 * 6 * 30 * 2,
    **{name: 2 * 2 * 10 for name in SEARCHES if "table5" not in name},
    "table5-cifar10": 2 * 2 * 10,
    "table5-imagenet30": 2 * 2 * 10,
}
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
GROUPS = ("data", "oe", "net", "method", "filter", "logger", "trainer")


def missing_options(name: str) -> list[str]:
    """``group/option`` names an experiment uses that have no YAML in conf/ (yet)."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "experiment" / f"{name}.yaml"))
    wanted = []
    for entry in cfg.get("defaults", []):
        for key, value in (entry.items() if isinstance(entry, dict) else []):
            wanted.append((key.removeprefix("override ").strip("/"), value))
    for key, values in cfg["hydra"]["sweeper"]["params"].items():
        if key in GROUPS:
            wanted += [(key, v) for v in str(values).split(",")]
    return [f"{g}/{o}" for g, o in wanted if not (CONF_DIR / g / f"{o}.yaml").exists()]


def test_every_experiment_has_an_expected_job_count():
    assert set(EXPERIMENTS) == set(JOBS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_expands(name):
    missing = missing_options(name)
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (not in conf/ yet)")
    config_name = "search" if name in SEARCHES else "config"
    jobs = expand([f"experiment={name}"], config_name)
    assert len(jobs) == JOBS[name]
    assert len({" ".join(sorted(j)) for j in jobs}) == len(jobs)  # no duplicate jobs
    first = dict(j.split("=", 1) for j in jobs[0])
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=[f"{k}={v}" for k, v in first.items()])
    expected_name = re.sub(r"-baselines$", "", name)
    assert cfg.name == expected_name  # records land in runs/<name>/, where the report looks
    if name in SEARCHES:
        assert cfg.search.algorithm == ("random" if name.startswith("table5") else "evolution")
        assert (cfg.epochs, list(cfg.milestones)) == (30, [25])


def test_the_command_line_narrows_an_experiment():
    jobs = expand(["experiment=fig2-cifar10", "normal_class=1,3", "seed=0", "oe_size=1,4,16,64,256,null"])
    assert len(jobs) == 2 * 2 * 6
    assert {j for job in jobs for j in job if j.startswith("method=")} == {"method=hsc", "method=bce"}
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=fig3-cifar10", "method=hsc", "epochs=3"])
    assert (cfg.benchmark, cfg.epochs, list(cfg.milestones), cfg.augment) == ("loo", 3, [25], False)


def test_experiment_settings_reach_the_job_config():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        t6 = compose("config", overrides=["experiment=table6-hsc", "method.radial=l1"])
        freq = compose("config", overrides=["experiment=freq-hpf-cifar10", "filter.magnitude=7"])
        t4 = compose("search", overrides=["experiment=table4-lpf-cifar10", "search.direction=min"])
    assert (t6.method.name, t6.method.radial) == ("hsc", "l1")
    assert (freq.filter.kind, freq.filter.magnitude, list(freq.filter.parts)) == (
        "hpf",
        7,
        ["train_normal", "train_oe", "test"],
    )
    assert (t4.filter.kind, t4.filter.magnitude, t4.search.direction, t4.search.generation_size) == ("lpf", 14, "min", 64)

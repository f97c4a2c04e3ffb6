import pytest
from hydra import compose, initialize_config_dir

from oe_ad.config import CONF_DIR
from oe_ad.sweep import expand


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("method", options("method"))
def test_every_method_composes(method):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"method={method}"])
    assert cfg.method.name == method and cfg.method._target_.startswith("oe_ad.methods.")


@pytest.mark.parametrize("group", ["data", "oe", "logger", "net", "trainer"])
def test_every_option_of_every_group_composes(group):
    for option in options(group):
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            compose("config", overrides=[f"{group}={option}"])


def test_defaults_are_the_paper_cifar10_protocol():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
    assert (cfg.data.name, cfg.method.name, cfg.net._target_) == ("cifar10", "bce", "oe_ad.nets.cnn32.CNN32")
    assert (cfg.epochs, list(cfg.milestones), cfg.lr, cfg.batch_size) == (200, [100, 150], 1e-3, 128)
    assert (cfg.normal_class, cfg.seed, cfg.logger._target_) == (0, 0, "oe_ad.loggers.wandb_logger")


def test_default_sweep_is_10_classes_by_10_seeds_and_the_command_line_narrows_it():
    jobs = expand(["method=bce", "oe_size=256"])
    assert len(jobs) == 100
    assert {j for job in jobs for j in job if j.startswith("normal_class=")} == {f"normal_class={i}" for i in range(10)}
    narrowed = expand(["method=bce", "normal_class=3", "seed=0,1"])
    assert sorted(" ".join(sorted(j)) for j in narrowed) == [
        "method=bce normal_class=3 seed=0",
        "method=bce normal_class=3 seed=1",
    ]

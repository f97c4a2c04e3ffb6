"""``python -m oe_ad.search experiment=table3-cifar10 [-m] [overrides]``: one search per (method, class, direction).

Rerunning the same command continues an interrupted search from its last saved generation.
"""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ..cli.entrance import cli, quiet_third_party, run_task
from ..config import CONF_DIR
from ..job.locks import JobLock


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="search")
def _task(cfg: DictConfig) -> float | None:
    quiet_third_party()
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)

    def work() -> float | None:
        from .job import run_search  # heavy imports once the config has passed the schema

        lock = JobLock(out_dir)
        if not lock.acquire():  # another sweep runs this search: it writes the outputs
            logging.getLogger("oe_ad").info("skip: %s is running elsewhere (%s)", out_dir, lock.holder)
            return None
        try:
            return run_search(cfg, out_dir, validated=True)["best_fitness"]
        finally:
            lock.release()

    def rerun() -> str:
        saved = (out_dir / "state.json").is_file()
        return "continue from the last saved generation (state.json)" if saved else "start the search again"

    return run_task(cfg, out_dir, hc.mode == RunMode.MULTIRUN, work, rerun)


def main() -> None:
    cli(_task)


if __name__ == "__main__":
    main()

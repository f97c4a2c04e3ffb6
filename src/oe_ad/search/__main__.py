"""``python -m oe_ad.search experiment=table3-cifar10 [-m] [overrides]``: one search per (method, class, direction).

Rerunning the same command continues an interrupted search from its last saved generation.
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..config import CONF_DIR
from ..errors import OEADError
from ..locks import JobLock
from ..run import cli, quiet_third_party


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="search")
def _task(cfg: DictConfig) -> float | None:
    from .job import run_search  # heavy imports after Hydra has parsed the command line

    quiet_third_party()
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    lock = JobLock(out_dir)
    if not lock.acquire():  # another sweep runs this search: it writes the outputs
        logging.getLogger("oe_ad").info("skip: %s is running elsewhere (%s)", out_dir, lock.holder)
        return None
    try:
        return run_search(cfg, out_dir)["best_fitness"]
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        lock.release()


def main() -> None:
    cli(_task, config_name="search")


if __name__ == "__main__":
    main()

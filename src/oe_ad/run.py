"""Hydra entry point: ``python -m oe_ad.run method=bce oe_size=256 [-m]``.

Without ``-m`` one job runs (normal_class=0, seed=0 by default); with ``-m`` the sweep in
``hydra.sweeper.params`` runs, narrowed by the command line (``normal_class=3 seed=0,1``).
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .cli.entrance import cli, quiet_third_party, run_task
from .config import CONF_DIR

log = logging.getLogger("oe_ad")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _task(cfg: DictConfig) -> float | None:
    quiet_third_party()
    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    loading = "" if "pytorch_lightning" in sys.modules else " (loading torch and Lightning)"
    log.info("job %s%s", job_dir, loading)  # the first word, before seconds of imports

    def work() -> float | None:
        from .job.lightning import run_job  # heavy imports once the config has passed the schema

        record = run_job(cfg, job_dir, validated=True)
        return None if record is None else record["test_auroc"]

    def rerun() -> str:
        resume = "resume from last.ckpt" if (job_dir / "last.ckpt").is_file() else "start it again"
        return f"{resume}{' (finished jobs are skipped)' if multirun else ''}"

    return run_task(cfg, job_dir, multirun, work, rerun)


def main() -> None:
    cli(_task)


if __name__ == "__main__":
    main()

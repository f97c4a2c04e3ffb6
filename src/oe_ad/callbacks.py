"""Hydra callback: after a multirun, list the jobs that failed and exit non-zero."""

import json
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.time() - 1

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = []
        for path in sorted(sweep_dir.rglob("error.json")):
            if path.stat().st_mtime >= getattr(self, "start", 0):
                failed.append((path.parent, json.loads(path.read_text())["error"]))
        if failed:
            print(f"{len(failed)} job(s) failed:", file=sys.stderr)
            for job_dir, err in failed:
                print(f"  {job_dir}: {err}", file=sys.stderr)
            sys.exit(1)

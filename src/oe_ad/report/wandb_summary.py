"""``--wandb``: the experiment's paper table and figures as one W&B summary run (the records stay the truth)."""

import os
import sys
from pathlib import Path

import pandas as pd


def log_to_wandb(name: str, root: Path, table: pd.DataFrame, figures: list[Path], project: str = "oe_ad") -> None:
    """One W&B summary run per experiment (group = name): the paper table and the figures. Never raises."""
    try:
        import wandb

        from ..loggers import wandb_credentials_available

        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_credentials_available() else "offline")
        run = wandb.init(
            project=project,
            group=name,
            job_type="summary",
            name=f"{name}-summary",
            dir=str(root),
            mode=mode,
            config={"experiment": name},
            settings=wandb.Settings(init_timeout=30, silent=True),
        )
        run.log(
            {"paper_table": wandb.Table(dataframe=table.astype(str)), **{p.stem: wandb.Image(str(p)) for p in figures}}
        )
        means = table[(table["row"] == "mean") & table["mean"].notna()]
        run.summary.update({f"auc/{c}": float(m) for c, m in zip(means["column"], means["mean"])})
        run.finish()
        print(f"W&B: summary run {name}-summary logged ({mode})")
    except Exception as e:  # the report on disk is what matters
        print(f"warning: W&B summary not logged ({e.__class__.__name__}: {e})", file=sys.stderr)

"""One W&B run per experiment (``python -m oe_ad.report DIR --wandb``): numeric tables with the report's
statistics (n, sd, 95 % t-interval, completeness, whether the paper's setting matches; the paired comparison
and its bootstrapped crossover), the curve as a native line plot per method, the report's figures as images.
Calling it again updates the same run.

Where it goes comes from the records: ``logger.project``/``logger.entity`` of the jobs' configs (the W&B
logger's defaults when the jobs logged elsewhere). Records stay the source of truth; nothing here reads W&B.
"""

import hashlib
import math
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from ..job.records import iter_records
from .lightning import announce, one_line, wandb_mode

if TYPE_CHECKING:
    from ..report.compare import Comparison

WANDB_DEFAULTS = Path(__file__).resolve().parents[1] / "conf" / "logger" / "wandb.yaml"


def _most_common(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return Counter(values).most_common(1)[0][0] if values else None


def destination(records: list[dict[str, Any]]) -> tuple[str, str | None, str]:
    """(project, entity, output folder) of an experiment's jobs, as their configs name them."""
    defaults = OmegaConf.load(WANDB_DEFAULTS)
    loggers = [(r.get("config") or {}).get("logger") or {} for r in records]
    project = _most_common([lg.get("project") for lg in loggers]) or defaults.project
    entity = _most_common([lg.get("entity") for lg in loggers])
    out = _most_common([((r.get("config") or {}).get("paths") or {}).get("output_dir") for r in records])
    return project, entity, str(out or "")


def summary_run_id(name: str, output_dir: str) -> str:
    """Stable per (experiment, its runs' output folder): a second call, also after more jobs finished, updates
    the same run; the same experiment run into another ``paths.output_dir`` gets its own summary run."""
    return "summary-" + hashlib.sha256(f"{name}|{output_dir}".encode()).hexdigest()[:12]


def numeric_table(df: pd.DataFrame) -> Any:
    """A ``wandb.Table`` whose number columns hold numbers (NaN -> empty cell), so W&B can chart them."""
    import wandb

    def cell(v: Any) -> Any:
        if v is pd.NA:
            return None
        if isinstance(v, (np.integer, np.floating, np.bool_)):
            v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v

    df = df[[c for c in df.columns if not str(c).startswith("_")]]  # not the records' configs
    return wandb.Table(
        columns=[str(c) for c in df.columns], data=[[cell(v) for v in row] for row in df.itertuples(index=False)]
    )


def full_oe_position(records: list[dict[str, Any]]) -> float | None:
    """Where ``full`` sits on the OE-size axis: the pool size (``oe_count`` of the full-OE jobs)."""
    counts = [r["oe_count"] for r in records if r.get("oe_size") is None and r.get("oe_count")]
    return float(max(counts)) if counts else None


def curve_points(table: pd.DataFrame, full_at: float | None) -> pd.DataFrame:
    """The paper table's (column, row) means with a numeric x: the swept value, ``full`` at the pool size
    (rows ``none`` and ``mean``, and non-numeric rows, have no place on the axis); with sd, interval and n."""
    rows = []
    for t in table.dropna(subset=["mean"]).itertuples():
        x = full_at if t.row == "full" else pd.to_numeric(t.row, errors="coerce")
        if x is not None and not pd.isna(x):
            rows.append(
                {
                    "method": t.column,
                    "x": float(x),
                    "log2_x": math.log2(x) if x > 0 else None,
                    "mean": t.mean,
                    "std": t.std,
                    "ci_low": t.ci_low,
                    "ci_high": t.ci_high,
                    "n": int(t.n),
                }
            )
    columns = ["method", "x", "log2_x", "mean", "std", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=columns).sort_values(["method", "x"])


def log_experiment(
    name: str,
    root: Path,
    table: pd.DataFrame,
    figures: list[Path],
    curve_of: str | None = None,
    details: pd.DataFrame | None = None,
    comparison: "Comparison | None" = None,
) -> str | None:
    """Log (or update) the experiment's summary run; its id, or None when W&B failed (one warning line).

    ``table``: one row per cell (mean, std, 95 % t-interval, n, completeness, paper, diff, whether the paper's
    setting matches); ``curve_of``: the swept key of the experiment's curve (``oe_size`` for Figure 2), None
    without one; ``details``: the per-class table, logged as well; ``comparison``: the paired comparison of the
    crossover columns (table ``comparison``, summary ``crossover/*``)."""
    try:
        return _log(name, Path(root), table, figures, curve_of, details, comparison)
    except Exception as e:  # the report on disk is what matters
        print(f"warning: W&B summary not logged ({one_line(e)})", file=sys.stderr)
        return None


def crossover_summary(comparison: "Comparison") -> dict[str, Any]:
    """Summary keys of the crossover: where, its bootstrap interval and how it was made, or why there is none."""
    c = comparison.crossover
    if c is None:
        return {"crossover/missing": comparison.missing}
    return {
        "crossover/at": c.at,
        "crossover/low": c.low,
        "crossover/high": c.high,
        "crossover/never_share": c.never_share,
        "crossover/paired_seeds": c.seeds,
        "crossover/resamples": c.resamples,
        "crossover/pair": f"{comparison.b} vs {comparison.a}",
        "crossover/paper": comparison.paper_at,
    }


def _log(name, root: Path, table, figures: list[Path], curve_of: str | None, details, comparison) -> str:
    import os

    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    records = list(iter_records(root))
    project, entity, output_dir = destination(records)
    mode, chosen = wandb_mode()
    run_id = summary_run_id(name, output_dir)
    run = wandb.init(
        project=project,
        entity=entity,
        id=run_id,
        resume="allow",
        group=name,
        job_type="summary",
        name=f"{name} · summary",
        tags=["summary", f"experiment:{name}"[:64]],
        dir=str(root),
        mode=mode,
        config={"experiment": name, "records": len(records), "full_oe_at": full_oe_position(records)},
        settings=wandb.Settings(init_timeout=30, silent=True),
    )
    announce(run, mode, chosen)
    logged: dict[str, Any] = {"table": numeric_table(table)}
    if details is not None and not details.empty:
        logged["per_class"] = numeric_table(details)
    if comparison is not None:
        logged["comparison"] = numeric_table(comparison.rows)
    if curve_of:
        points = curve_points(table, full_oe_position(records) if curve_of == "oe_size" else None)
        logged[f"{name}/points"] = numeric_table(points)
        methods = list(dict.fromkeys(points["method"]))
        x_key = "log2_x" if curve_of == "oe_size" else "x"
        logged[f"{name}/curve"] = wandb.plot.line_series(
            xs=[points[points.method == m][x_key].tolist() for m in methods],
            ys=[points[points.method == m]["mean"].tolist() for m in methods],
            keys=methods,
            title=f"{name}: AUC % vs {curve_of}" + (" (log2; full = log2 pool size)" if curve_of == "oe_size" else ""),
            xname=f"log2 {curve_of}" if curve_of == "oe_size" else curve_of,
        )
    logged.update({f"figure/{p.stem}": wandb.Image(str(p)) for p in figures})
    run.log(logged)
    means = table[(table["row"] == "mean") & table["mean"].notna()]
    run.summary.update({f"auc/{c}": float(m) for c, m in zip(means["column"], means["mean"])})
    if comparison is not None:
        run.summary.update(crossover_summary(comparison))
    run.finish()
    print(f"W&B: summary run {run_id} of {name} logged ({mode}, project {project})")
    return run_id

"""Records as data frames: one row per finished job (``result.json``) or search (``search.json``)."""

import json
from collections import Counter
from pathlib import Path

import pandas as pd
from pandas.core.groupby import DataFrameGroupBy

from ..results import SEARCH_RECORD_NAME, iter_records

# What makes two job records one setting (repeats of it differ only in their seed), besides the normal class.
SETTING = ["data", "benchmark", "method", "oe_size"]


def group_by_setting(df: pd.DataFrame, within: tuple[str, ...] = ()) -> DataFrameGroupBy:
    """Records grouped so that each group holds the seeds of one setting (split further by ``within``)."""
    return df.groupby([*SETTING, *within], dropna=False)


def config_value(config: dict, dotted: str):
    """``config["a"]["b"]`` for ``"a.b"``; None where the path is missing."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def load_records(root: Path, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per record; ``extra`` adds columns read from the record's config by dotted key."""
    rows = [
        {
            **{k: r.get(k) for k in (*SETTING, "normal_class", "class_name", "seed", "test_auroc", "oe")},
            **{k: config_value(r.get("config", {}), k) for k in extra},
        }
        for r in iter_records(root)
    ]
    df = pd.DataFrame(rows)
    if not df.empty:
        full = df["oe_size"].map(lambda v: "full" if v is None or pd.isna(v) else str(int(v)))
        df["oe_size"] = full.where(df["oe"] != "none", "none")
        df["auc"] = 100 * df["test_auroc"]
    return df


def _search_records(root: Path) -> list[tuple[Path, dict]]:
    return [(path, json.loads(path.read_text())) for path in sorted(Path(root).rglob(SEARCH_RECORD_NAME))]


def load_search_records(root: Path) -> pd.DataFrame:
    """One row per finished search: the AUC of the fittest image of its final generation."""
    rows = []
    for path, r in _search_records(root):
        found = "best" if r["direction"] == "max" else "worst"
        rows.append({**{k: r.get(k) for k in ("method", "normal_class", "class_name", "seed", "data")}, "found": found})
        rows[-1].update(auc=100 * r["best_fitness"], oe="search", _dir=str(path.parent))
    return pd.DataFrame(rows)


def experiment_names(root: Path) -> Counter:
    """How many records (jobs and searches) under ``root`` carry each experiment ``name``."""
    names = Counter(r.get("config", {}).get("name") for r in iter_records(root))
    for _, r in _search_records(root):
        names[r.get("config", {}).get("name")] += 1
    return names

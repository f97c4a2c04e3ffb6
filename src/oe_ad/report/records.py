"""Records as data frames: one row per finished job (``result.json``) or search (``search.json``)."""

from collections import Counter
from pathlib import Path

import pandas as pd
from pandas.core.groupby import DataFrameGroupBy

from ..job.records import SEARCH_RECORD_NAME, iter_records, read_record
from .groups import annotate

# What makes two job records one setting (repeats of it differ only in their seed), besides the normal class:
# the shown fields, and ``config_group`` (the full effective config minus the seed, ``report`` and ``name``;
# ``variant`` labels the keys that vary within the folder), so records of different configs are never pooled.
SHOWN = ["data", "benchmark", "method", "oe_size"]
CONFIG = ["variant", "config_group"]
SETTING = [*SHOWN, *CONFIG]


def group_by_setting(df: pd.DataFrame, within: tuple[str, ...] = ()) -> DataFrameGroupBy:
    """Records grouped so that each group holds the seeds of one setting (split further by ``within``)."""
    return df.groupby([*SHOWN, *within, *CONFIG], dropna=False)


def config_value(config: dict, dotted: str):
    """``config["a"]["b"]`` for ``"a.b"``; None where the path is missing."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def load_records(root: Path, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per record; ``extra`` adds columns read from the record's config by dotted key; ``_config`` holds
    the record's whole config (to compare its data, OE set and schedule with the paper's)."""
    records = list(iter_records(root))
    rows = [
        {
            **{k: r.get(k) for k in (*SHOWN, "normal_class", "class_name", "seed", "test_auroc", "oe")},
            **{k: config_value(r.get("config", {}), k) for k in extra},
            **groups,  # never pool records of different configs: variant (a column label) + config_group
            "_config": r.get("config") or {},
        }
        for r, groups in zip(records, annotate(records, shown=extra))
    ]
    df = pd.DataFrame(rows)
    if not df.empty:
        full = df["oe_size"].map(lambda v: "full" if v is None or pd.isna(v) else str(int(v)))
        df["oe_size"] = full.where(df["oe"] != "none", "none")
        df["auc"] = 100 * df["test_auroc"]
    return df


def _search_records(root: Path) -> list[tuple[Path, dict]]:
    found = ((path, read_record(path)) for path in sorted(Path(root).rglob(SEARCH_RECORD_NAME)))
    return [(path, r) for path, r in found if r is not None]  # an unreadable one is named in a warning


def load_search_records(root: Path) -> pd.DataFrame:
    """One row per finished search: the AUC of the fittest image of its final generation."""
    rows = []
    for path, r in _search_records(root):
        found = "best" if r["direction"] == "max" else "worst"
        rows.append({**{k: r.get(k) for k in ("method", "normal_class", "class_name", "seed", "data")}, "found": found})
        rows[-1].update(auc=100 * r["best_fitness"], oe="search", _dir=str(path.parent), _config=r.get("config") or {})
    return pd.DataFrame(rows)


def search_folders(root: Path) -> list[Path]:
    """The folders of the finished searches under ``root`` (each holds ``search.json`` and its images)."""
    return [path.parent for path, _ in _search_records(root)]


def experiment_names(root: Path) -> Counter:
    """How many records (jobs and searches) under ``root`` carry each experiment ``name``."""
    names = Counter(r.get("config", {}).get("name") for r in iter_records(root))
    for _, r in _search_records(root):
        names[r.get("config", {}).get("name")] += 1
    return names

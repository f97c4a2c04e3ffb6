"""Records as data frames: one row per finished job (``result.json``) or search (``search.json``).

The value a report summarises is in the column ``value``: the chosen metric (:mod:`.metric`, AUROC by default)
in %, NaN where a record lacks it.
"""

from collections import Counter
from pathlib import Path

import pandas as pd
from pandas.core.groupby import DataFrameGroupBy

from ..job.records import SEARCH_RECORD_NAME, iter_records, read_record
from .groups import annotate
from .metric import DEFAULT, METRICS

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


def load_records(
    root: Path, extra: tuple[str, ...] = (), metric: str = DEFAULT, along: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One row per record; ``extra`` adds columns read from the record's config by dotted key; ``_config`` holds
    the record's whole config (to compare its data, OE set and schedule with the paper's), ``_classes`` the
    dataset's class names the record lists. ``value``: ``metric`` in %, NaN where the record lacks it.
    ``along``: the keys a figure draws along (its x), which do not stand for a configuration (``groups.annotate``)."""
    field = METRICS[metric].field
    records = list(iter_records(root))
    rows = [
        {
            **{k: r.get(k) for k in (*SHOWN, "normal_class", "class_name", "seed", "oe")},
            **{k: config_value(r.get("config", {}), k) for k in extra},
            **groups,  # never pool records of different configs: variant (a column label) + config_group
            "value": r.get(field),
            "_config": r.get("config") or {},
            "_classes": tuple(r.get("classes") or ()),
        }
        for r, groups in zip(records, annotate(records, shown=extra, along=along))
    ]
    df = pd.DataFrame(rows)
    if not df.empty:
        full = df["oe_size"].map(lambda v: "full" if v is None or pd.isna(v) else str(int(v)))
        df["oe_size"] = full.where(df["oe"] != "none", "none")
        df["value"] = 100 * pd.to_numeric(df["value"], errors="coerce")
    return df


def _search_records(root: Path) -> list[tuple[Path, dict]]:
    found = ((path, read_record(path)) for path in sorted(Path(root).rglob(SEARCH_RECORD_NAME)))
    return [(path, r) for path, r in found if r is not None]  # an unreadable one is named in a warning


def load_search_records(root: Path, metric: str = DEFAULT) -> pd.DataFrame:
    """One row per finished search: the AUROC of the fittest image of its final generation (a search's fitness is
    AUROC: another ``metric`` is missing)."""
    rows = []
    for path, r in _search_records(root):
        found = "best" if r["direction"] == "max" else "worst"
        rows.append({**{k: r.get(k) for k in ("method", "normal_class", "class_name", "seed", "data")}, "found": found})
        value = 100 * r["best_fitness"] if metric == "auroc" else float("nan")
        rows[-1].update(value=value, oe="search", _dir=str(path.parent), _config=r.get("config") or {})
        rows[-1]["_classes"] = tuple(r.get("classes") or ())
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

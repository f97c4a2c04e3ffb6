"""The paper's reported numbers (from its tables and figures) as data, and how each experiment's report lays them out.

Each experiment (a folder ``runs/<name>/`` filled by ``oe_ad/conf/experiment/<name>.yaml``) has a :class:`Layout`:
what the rows and columns of its table are and which cells the paper reports. Values are AUC in %.
Row labels: a class name or ``mean`` (``rows="class"``), else the label of the swept value (``oe_size`` labels
are ``1``, ``2``, …, ``full``, and ``none`` for methods without OE). Column labels join the column keys' values
(``hsc``, ``hsc best``, ``augment=True``, ``bce oe_size=16``).
"""

from dataclasses import dataclass, field

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _per_class(values: list[float], mean: float) -> dict[str, float]:
    return {**dict(zip(CIFAR10, values, strict=True)), "mean": mean}


@dataclass(frozen=True)
class Layout:
    """How one experiment's records become the paper's table (and figure)."""

    title: str
    rows: str = "class"  # "class": one row per normal class plus "mean"; else a record column, mean over classes
    columns: tuple[str, ...] = ("method",)
    paper: dict[str, dict[str, float]] = field(default_factory=dict)  # column label -> row label -> AUC %
    plot: str | None = None  # "curve": AUC vs `rows` with ±std bands and per-class panels; "grid": image grid
    log2: bool = False  # x axis in powers of two (OE sizes)
    crossover: tuple[str, str, float] | None = None  # (a, b, paper's x): the first x where b >= a
    source: str = "jobs"  # "jobs": result.json records; "search": search.json records (python -m oe_ad.search)
    note: str = ""


def _table1(hsc_bce: tuple[dict, dict] | None, means: dict[str, float], title: str) -> Layout:
    paper = {m: {"mean": v} for m, v in means.items()}
    if hsc_bce:
        paper["hsc"], paper["bce"] = hsc_bce
    return Layout(title, paper=paper)


_CIFAR_HSC = _per_class([96.3, 98.7, 92.7, 89.8, 96.6, 94.2, 97.9, 97.6, 98.2, 97.4], 95.9)
_CIFAR_BCE = _per_class([96.4, 98.8, 93.0, 90.0, 97.1, 94.2, 98.0, 97.6, 98.1, 97.7], 96.1)
_CURVE = dict(rows="oe_size", plot="curve", log2=True)
_FREQ_NOTE = "Figures 8-11: curves only in the paper (HSC robust to LPF, hurt by HPF); no numbers to compare."
_SEARCH = ("method", "found")

EXPERIMENTS: dict[str, Layout] = {
    "table1-cifar10": _table1(
        (_CIFAR_HSC, _CIFAR_BCE),
        {"deep_sad": 94.5, "focal": 95.8},
        "Table 1, CIFAR-10: full OE, one vs. rest, mean AUC % (10 seeds)",
    ),
    "table1-imagenet30": _table1(
        None,
        {"deep_sad": 96.7, "hsc": 97.3, "focal": 97.5, "bce": 97.7},
        "Table 1, ImageNet-30: full OE, one vs. rest, mean AUC % (10 seeds)",
    ),
    "table2-cifar10": Layout(
        "Table 2, CIFAR-10: CLIP zero-shot and BCE-CL",
        paper={
            "clip_zero_shot": _per_class([99.40, 99.37, 97.37, 96.99, 98.05, 97.36, 98.05, 98.99, 99.71, 99.30], 98.5),
            "clip_bce": {"mean": 99.6},
        },
    ),
    "table2-imagenet30": Layout(
        "Table 2, ImageNet-30: CLIP zero-shot and BCE-CL",
        paper={"clip_zero_shot": {"mean": 99.88}, "clip_bce": {"mean": 99.90}},
    ),
    "fig2-cifar10": Layout(
        "Figure 2, CIFAR-10: mean AUC % over classes vs OE size",
        paper={"hsc": {"full": 95.9}, "bce": {"full": 96.1}},
        crossover=("hsc", "bce", 8),
        note="Paper: HSC wins with very few OE images; BCE overtakes at about 8. Full-OE values from Table 1.",
        **_CURVE,
    ),
    "fig2-imagenet30": Layout(
        "Figure 2, ImageNet-30: mean AUC % over classes vs OE size",
        paper={"hsc": {"full": 97.3}, "bce": {"full": 97.7}},
        crossover=("hsc", "bce", 32),
        note="Paper: BCE overtakes HSC at about 32 OE images. Full-OE values from Table 1.",
        **_CURVE,
    ),
    "fig3-cifar10": Layout(
        "Figure 3, CIFAR-10 leave-one-class-out: mean AUC % vs OE size (2 seeds, reduced schedule)",
        paper={
            "deep_svdd": {"none": 52.2},
            "clip_zero_shot": {"none": 92.2},
            "deep_sad": {"full": 84.2},
            "hsc": {"full": 84.8},
            "focal": {"full": 86.4},
            "bce": {"full": 86.6},
            "clip_bce": {"full": 98.4},
        },
        **_CURVE,
    ),
    "fig3-imagenet30": Layout(
        "Figure 3, ImageNet-30 leave-one-class-out: mean AUC % vs OE size (2 seeds, reduced schedule)",
        paper={
            "deep_svdd": {"none": 49.7},
            "clip_zero_shot": {"none": 97.8},
            "hsc": {"full": 85.0},
            "bce": {"full": 86.0},
        },
        **_CURVE,
    ),
    "fig4-mvtec": Layout(
        "Figure 4 / Table 15, MVTec-AD (IN-22k OE): mean AUC % vs OE size (2 seeds)",
        paper={
            "deep_svdd": {"none": 64.0},
            "clip_zero_shot": {"none": 56.4},
            "deep_sad": {"full": 66.1},
            "hsc": {"full": 70.1},
            "focal": {"full": 65.4},
            "bce": {"full": 66.1},
            "clip_bce": {"full": 76.2},
        },
        note="Paper: the OE size barely matters on MVTec-AD.",
        **_CURVE,
    ),
    "fig6-cifar100": Layout(
        "Figure 6 / Appendix A, CIFAR-10 with OE = k CIFAR-100 classes: mean AUC % vs k",
        rows="oe.classes",
        plot="curve",
        note="Paper: AUC rises with k, k = 1 is already good, BCE beats HSC from k = 1 (curves only).",
    ),
    "table6-hsc": Layout(
        "Table 6, CIFAR-10: HSC radial function without / with augmentation, mean AUC % (10 seeds)",
        rows="method.radial",
        columns=("augment",),
        paper={
            "augment=False": {"l1": 90.6, "l2": 92.3, "l2_squared": 89.1, "pseudo_huber": 91.8},
            "augment=True": {"l1": 92.5, "l2": 94.1, "l2_squared": 94.5, "pseudo_huber": 96.1},
        },
    ),
    "fig13-focal": Layout(
        "Figure 13, CIFAR-10: focal loss, mean AUC % vs gamma (gamma = 0 is BCE)",
        rows="method.gamma",
        plot="curve",
        paper={"focal": {"0": 96.1, "2": 95.8}},
        note="Paper: insensitive to gamma. gamma = 0 and 2 are Table 1's BCE and Focal.",
    ),
    **{
        f"freq-{kind}-{data}": Layout(
            f"Figures 8-11, {label}: {kind.upper()} on all data, mean AUC % vs filter magnitude (reduced, 2 seeds)",
            rows="filter.magnitude",
            columns=("method", "oe_size"),
            plot="curve",
            note=_FREQ_NOTE,
        )
        for kind in ("lpf", "hpf")
        for data, label in (("cifar10", "CIFAR-10"), ("imagenet30", "ImageNet-30"))
    },
    "table3-cifar10": Layout(
        "Table 3, CIFAR-10: AUC % with the best / worst single OE image found by evolution",
        columns=_SEARCH,
        source="search",
        paper={
            "hsc best": {"mean": 77.7},
            "bce best": {"mean": 69.9},
            "hsc worst": {"mean": 43.3},
            "bce worst": {"mean": 31.6},
        },
        plot="grid",
    ),
    "table3-imagenet30": Layout(
        "Table 3, ImageNet-30 (first 10 classes): AUC % with the best / worst single OE image found by evolution",
        columns=_SEARCH,
        source="search",
        paper={
            "hsc best": {"mean": 79.3},
            "bce best": {"mean": 75.5},
            "hsc worst": {"mean": 39.2},
            "bce worst": {"mean": 26.3},
        },
        plot="grid",
    ),
    "table4-lpf-cifar10": Layout(
        "Table 4, CIFAR-10 with LPF (m = 14): best / worst single OE image by evolution",
        columns=_SEARCH,
        source="search",
        paper={"hsc best": {"mean": 77.5}, "hsc worst": {"mean": 44.1}},
        plot="grid",
    ),
    "table4-hpf-cifar10": Layout(
        "Table 4, CIFAR-10 with HPF (m = 14): best / worst single OE image by evolution",
        columns=_SEARCH,
        source="search",
        paper={"hsc best": {"mean": 68.8}},
        plot="grid",
    ),
    "table4-lpf-imagenet30": Layout(
        "Table 4, ImageNet-30 with LPF (m = 110): best / worst single OE image by evolution",
        columns=_SEARCH,
        source="search",
        plot="grid",
    ),
    "table4-hpf-imagenet30": Layout(
        "Table 4, ImageNet-30 with HPF (m = 110): best / worst single OE image by evolution",
        columns=_SEARCH,
        source="search",
        plot="grid",
    ),
    "table5-cifar10": Layout(
        "Table 5, CIFAR-10: best / worst single OE image by random search",
        columns=_SEARCH,
        source="search",
        paper={"hsc best": {"mean": 76.5}, "bce best": {"mean": 68.7}},
        plot="grid",
    ),
    "table5-imagenet30": Layout(
        "Table 5, ImageNet-30 (first 10 classes): best / worst single OE image by random search",
        columns=_SEARCH,
        source="search",
        paper={"hsc best": {"mean": 79.5}, "bce best": {"mean": 77.8}},
        plot="grid",
    ),
}


def paper_value(experiment: str, column: str, row: str) -> float | None:
    """The paper's AUC % for one cell, or None where the paper gives none."""
    layout = EXPERIMENTS.get(experiment)
    return None if layout is None else layout.paper.get(column, {}).get(row)

"""The report's figures drawn from a folder that mixes classes, schedules and lone points (issue 30, item 7).

The folder is the issue's: BCE on class 0 at OE size 2^8 for 1 epoch; BCE, HSC and Deep SVDD on class 3 at the full
OE set for 12 epochs (HSC only there: a lone point); BCE for 12 epochs also at OE size 16 on class 3 and at OE size
4 on class 1 only. The Figure 2 plot must join only points of one configuration holding the same classes, draw no
reference line for an OE method, give a lone point a marker and an error bar, mark what is incomplete, and give
each method one colour in every figure.
"""

import json

import numpy as np
import pytest
from matplotlib.colors import to_hex

from oe_ad.report import main, plots

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def record(root, method: str, cls: int, seed: int, auc: float, oe_size, epochs: int, **extra) -> None:
    """A result.json as a job writes it (the keys the report reads), on the offline data with a short schedule."""
    milestones = [] if epochs < 12 else [6, 9]
    config = {
        "name": "fig2-cifar10",
        "method": {"name": method},
        "data": {"name": "folder"},
        "oe": {"name": "npy", "path": "/data/tin32-oe-30k.npy"},
        "benchmark": "ovr",
        "epochs": epochs,
        "milestones": milestones,
        "trainer": {"max_epochs": epochs},
        "lr": 0.001,
        "augment": True,
        "seed": seed,
        "normal_class": cls,
        "oe_size": oe_size,
    }
    key = f"{method}-{cls}-{seed}-{oe_size}-{epochs}"
    rec = {"config_hash": key, "method": method, "data": "folder", "benchmark": "ovr", "classes": CLASSES}
    rec.update(oe="none" if method == "deep_svdd" else "npy", normal_class=cls, class_name=CLASSES[cls], seed=seed)
    rec.update(oe_size=oe_size, epochs=epochs, test_auroc=auc, config=config, **extra)
    folder = root / method / key
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(rec))


def mixed_folder(root):
    for seed in range(3):
        record(root, "bce", 0, seed, 0.78 + 0.01 * seed, 256, 1)
        record(root, "bce", 1, seed, 0.60 + 0.01 * seed, 4, 12)
        record(root, "bce", 3, seed, 0.64 + 0.01 * seed, 16, 12)
        record(root, "bce", 3, seed, 0.67 + 0.01 * seed, None, 12)
        record(root, "hsc", 3, seed, 0.66 + 0.02 * seed, None, 12)
    record(root, "deep_svdd", 3, 0, 0.55, None, 12)


@pytest.fixture
def drawn(tmp_path, monkeypatch):
    """The figures the report draws for the mixed folder, by file name (caught before they are saved)."""
    figures = {}
    save = plots.save

    def keep(fig, path, dpi=120):
        figures[path.name] = fig
        return save(fig, path, dpi)

    monkeypatch.setattr(plots, "save", keep)
    root = tmp_path / "fig2-cifar10"
    mixed_folder(root)
    assert main([str(root), "--experiment", "fig2-cifar10"]) == 0
    return figures, root


def _positions():
    pos, _ = plots.x_positions(["4", "16", "256", "full"], log2=True)
    return dict(zip(["4", "16", "256", "full"], pos))


def _joined(ax) -> list:
    """The lines that join two or more points (not the reference lines across the axis)."""
    return [line for line in ax.lines if len(line.get_xdata()) >= 2 and not _is_reference(line)]


def _is_reference(line) -> bool:
    return list(line.get_xdata()) == [0, 1] and len(set(line.get_ydata())) == 1


def test_lines_join_only_points_of_one_configuration_and_the_same_classes(drawn):
    figures, _ = drawn
    ax = figures["fig2-cifar10.png"].axes[0]
    joined = _joined(ax)
    assert len(joined) == 1  # bce, 12 epochs, class 3: OE size 16 to full; nothing else has two such points
    (line,) = joined
    x = _positions()
    xs = line.get_xdata()
    assert line.get_label() == "bce epochs=12" and len(xs) == 2
    assert xs[0] == pytest.approx(x["16"], abs=0.3) and xs[1] == pytest.approx(x["full"], abs=0.3)
    # BCE at 2^8 (1 epoch) and at 2^2 (class 1 only) stay unjoined points
    assert all(min(abs(v - x["256"]), abs(v - x["4"])) > 0.3 for v in xs)


def test_a_reference_line_only_for_a_method_without_oe_and_a_lone_point_has_an_error_bar(drawn):
    figures, _ = drawn
    ax = figures["fig2-cifar10.png"].axes[0]
    references = [line.get_label() for line in ax.lines if _is_reference(line)]
    assert references == ["deep_svdd epochs=12 (no OE)"]  # HSC, only at full, is a point, not a line
    hsc = [c for c in ax.containers if c.get_label() == "hsc epochs=12"]
    assert len(hsc) == 1 and hsc[0].has_yerr  # marker and error bar (3 seeds)
    (marker,) = [m for m in [hsc[0].lines[0]] if m.get_marker() not in (None, "None", "")]
    assert marker.get_markersize() > 0
    segments = hsc[0].lines[2][0].get_segments()
    assert len(segments) == 1 and segments[0][1][1] - segments[0][0][1] > 0  # the bar spans ± sd


def test_incompleteness_and_mixed_schedules_are_marked_on_the_figure(drawn):
    figures, _ = drawn
    ax = figures["fig2-cifar10.png"].axes[0]
    notes = " ".join(t.get_text() for t in ax.texts)
    assert "incomplete (hollow markers)" in notes and "fewest classes 1 of 10" in notes
    assert "several configurations" in notes
    faces = {to_hex(c.lines[0].get_markerfacecolor()) for c in ax.containers}
    assert faces == {"#ffffff"}  # every point lacks seeds and classes of the sweep: hollow


def labelled_colours(ax) -> dict[str, str]:
    """Label -> colour of what a panel draws (the first line or point of a column carries its label)."""
    out = {line.get_label(): to_hex(line.get_color()) for line in ax.lines if not line.get_label().startswith("_")}
    out.update({c.get_label(): to_hex(c.lines[0].get_color()) for c in ax.containers if c.get_label()[:1] != "_"})
    return out


def test_one_colour_per_method_in_every_figure(drawn):
    figures, _ = drawn
    main_ax = figures["fig2-cifar10.png"].axes[0]
    per_class = figures["fig2-cifar10-per-class.png"]
    colour = labelled_colours(main_ax)
    assert colour["hsc epochs=12"] == plots.METHOD_COLOURS["hsc"]
    assert colour["bce epochs=1"] == plots.METHOD_COLOURS["bce"]  # the first bce column: bce's own colour
    assert colour["bce epochs=12"] != colour["bce epochs=1"]  # another configuration: a shade of it
    for ax in per_class.axes:
        for label, c in labelled_colours(ax).items():
            assert c == colour[label], (ax.get_title(), label)
    panel = per_class.axes[0]
    assert panel.get_ylabel() and panel.get_xlabel() == "OE size"  # axis labels, a readable size
    width, height = per_class.get_size_inches() * 110
    assert width >= 800 and height >= 400


def test_the_figures_are_saved(drawn):
    _, root = drawn
    for name in ("fig2-cifar10.png", "fig2-cifar10-per-class.png"):
        assert (root / name).stat().st_size > 5000


def test_roc_figure_gives_each_job_its_own_colour_and_a_mean_curve(tmp_path):
    rng = np.random.default_rng(0)
    curves = []
    for k in range(14):  # more jobs than a 10-colour cycle
        fpr = np.sort(np.r_[0, rng.uniform(0, 1, 20), 1])
        curves.append({"method": "hsc", "label": f"class {k} · 2 ep · s0", "auc": 70.0, "fpr": fpr, "tpr": fpr**0.5})
    fig_path = plots.roc_figure(curves, tmp_path / "roc.png", "t", legend_max=20)
    assert fig_path.stat().st_size > 5000
    grid = np.linspace(0, 1, 201)
    mean, sd = plots.mean_roc(curves, grid)
    assert mean.shape == grid.shape and (sd >= 0).all()
    colours = plots._job_colours(14)
    assert len({to_hex(c) for c in colours}) == 14

"""The report on synthetic records: statistics per cell, paired comparisons, the paper column (issue 19)."""

import json

import numpy as np
import pandas as pd
import pytest

from oe_ad.report import build_report, main
from oe_ad.report.expected import Expected, differences, expected, resolve_milestones, setting_of
from oe_ad.report.stats import bootstrap_crossover, fmt_cell, paired_seed_differences, summarise

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# the setting of fig2-cifar10's paper numbers: its config with the paper's OE set (80MTI, its report.deviations)
PAPER = {"data": "cifar10", "oe": "tiny_images", "epochs": 200, "milestones": [100, 150]}
LOCAL = {"data": "folder", "oe": "npy", "epochs": 10, "milestones": [8]}  # the offline copy, a short schedule


def write(root, i, **rec):
    d = root / f"job{i}"
    d.mkdir(parents=True)
    base = {"data": "cifar10", "benchmark": "ovr", "oe": "tiny300k", "config_hash": f"h{i}"}
    (d / "result.json").write_text(json.dumps({**base, **rec}))


def record(root, method: str, cls: int, seed: int, auc: float, oe_size=None, setting=PAPER, name="fig2-cifar10"):
    """A result.json as a job writes it (the keys the report reads), with its config's setting."""
    config = {
        "name": name,
        "method": {"name": method},
        "data": {"name": setting["data"]},
        "oe": {"name": setting["oe"]},
        "benchmark": "ovr",
        "epochs": setting["epochs"],
        "milestones": setting["milestones"],
        "lr": 0.001,
        "augment": True,
        "seed": seed,
        "normal_class": cls,
        "oe_size": oe_size,
    }
    key = f"{method}-{cls}-{seed}-{oe_size}-{setting['data']}"
    rec = {"config_hash": key, "method": method, "data": setting["data"], "oe": setting["oe"], "benchmark": "ovr"}
    rec.update(normal_class=cls, class_name=CLASSES[cls], seed=seed, oe_size=oe_size, test_auroc=auc, config=config)
    folder = root / method / key
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(rec))


def report(root) -> tuple[str, pd.DataFrame]:
    assert main([str(root)]) == 0
    return (root / "paper.md").read_text(), pd.read_csv(root / "paper.csv", dtype={"row": str})


# -- cells -----------------------------------------------------------------------------------------------------
def test_a_cell_has_n_and_a_t_interval_only_from_two_seeds_on():
    s = summarise([90.0, 92.0, 94.0])
    # sd 2; t(0.975, 2 df) = 4.302653; half-width 4.302653 * 2 / sqrt(3) = 4.968275
    assert (s.mean, s.std, s.n) == (92.0, pytest.approx(2.0), 3)
    assert (s.ci_low, s.ci_high) == (pytest.approx(87.031725, abs=1e-6), pytest.approx(96.968275, abs=1e-6))
    assert fmt_cell(s) == "92.0 ± 2.0 [87.0, 97.0] (n=3)"
    one = summarise([72.4])
    assert one.n == 1 and np.isnan(one.std) and np.isnan(one.ci_low) and fmt_cell(one) == "72.4 (n=1)"
    assert fmt_cell(summarise([])) == "–"
    short = {**one.as_dict(), "seeds_expected": 10, "classes": 2, "classes_expected": 10}
    assert fmt_cell(short) == "72.4 (n=1 of 10, 2 of 10 classes: *incomplete*)"


def test_generic_report_shows_n_in_every_cell_and_orders_classes_and_oe_sizes(tmp_path):
    write(tmp_path, 0, method="hsc", oe_size=None, normal_class=1, class_name="automobile", seed=0, test_auroc=0.90)
    write(tmp_path, 1, method="hsc", oe_size=None, normal_class=1, class_name="automobile", seed=1, test_auroc=0.94)
    write(tmp_path, 2, method="hsc", oe_size=16, normal_class=1, class_name="automobile", seed=0, test_auroc=0.80)
    write(tmp_path, 3, method="hsc", oe_size=4, normal_class=0, class_name="airplane", seed=0, test_auroc=0.70)
    svdd = dict(method="deep_svdd", oe="none", oe_size=None, normal_class=1, class_name="automobile", seed=0)
    write(tmp_path, 4, **svdd, test_auroc=0.6)
    long, md = build_report(tmp_path)
    # 90 and 94: sd 2.83; t(0.975, 1 df) = 12.706205, half-width 12.706205 * 2 = 25.41
    assert "92.0 ± 2.8 [66.6, 117.4] (n=2)" in md and "80.0 (n=1)" in md and "± 0.0" not in md
    header = next(line for line in md.splitlines() if line.startswith("| class |"))
    assert header.index("deep_svdd (OE none)") < header.index("hsc (OE 4)") < header.index("hsc (OE 16)")
    assert header.index("hsc (OE 16)") < header.index("hsc (OE full)")
    assert md.index("| 0: airplane |") < md.index("| 1: automobile |")
    mean = next(line for line in md.splitlines() if line.startswith("| **mean** |"))
    assert "**80.0 (n=1)** over 1 of the 2 classes" in mean
    assert len(long) == 4 and list(long.columns[-5:]) == ["mean", "std", "ci_low", "ci_high", "n"]


def test_a_complete_cell_is_not_marked(tmp_path):
    root = tmp_path / "table1-cifar10"
    for cls in range(10):
        for seed in range(10):
            record(root, "bce", cls, seed, 0.90 + 0.001 * seed, name="table1-cifar10")
    md, table = report(root)
    cell = table.set_index(["column", "row"])
    assert cell.loc[("bce", "mean"), "n"] == 10 and cell.loc[("bce", "mean"), "complete"]
    assert cell.loc[("bce", "mean"), "diff"] == pytest.approx(90.45 - 96.1)
    assert "incomplete" not in next(line for line in md.splitlines() if line.startswith("| **mean** |"))


# -- the folder: only BCE, one seed, the offline data ----------------------------------------------------
def test_one_method_one_seed_other_data_no_conclusion_no_std_no_delta(tmp_path):
    root = tmp_path / "fig2-cifar10"
    for oe_size, auc in ((None, 0.724), (16, 0.70), (1, 0.60)):
        for cls in (1, 3):
            record(root, "bce", cls, 0, auc, oe_size, setting=LOCAL)
    md, table = report(root)
    assert "catches up" not in md and "never" not in md
    assert "No crossover is computed: no records of `hsc` (held: `bce`: 6 records)" in md
    assert "72.4 (n=1 of 10, 2 of 10 classes: *incomplete*)" in md and "72.4 ±" not in md
    header = next(line for line in md.splitlines() if line.startswith("| oe_size |"))
    assert header.endswith("| bce (ours, AUROC) | paper (AUROC) |")  # no Δ column for bce
    assert "-23.7" not in md
    assert (
        "- `bce`: data.name=folder (paper: cifar10), oe.name=npy (paper: tiny_images), epochs=10 (paper: 200), "
        "milestones=[8] (paper: [100, 150])"
    ) in md
    rows = [line.split(" | ")[0].strip("| ") for line in md.splitlines()[md.splitlines().index(header) + 3 :]]
    assert rows[:3] == ["1", "16", "full"]  # numerically, full last (hsc's paper-only `full` cell came first)
    bce_full = table.set_index(["column", "row"]).loc[("bce", "full")]
    assert bce_full["paper"] == 96.1 and np.isnan(bce_full["diff"]) and not bce_full["paper_comparable"]


def test_unpaired_seeds_give_no_comparison(tmp_path):
    root = tmp_path / "fig2-cifar10"
    for oe_size in (1, None):
        for seed in (0, 1):
            record(root, "hsc", 0, seed, 0.8, oe_size)
            record(root, "bce", 0, seed + 2, 0.9, oe_size)
    md, _ = report(root)
    assert (
        "No crossover is computed: fewer than 2 paired seeds at every OE size (`hsc` seeds: 0, 1; `bce` seeds: 2, 3; "
        "paired: none) (paper: about 8, in AUROC)."
    ) in md
    rows = pd.read_csv(root / "comparison.csv", dtype={"row": str})
    assert rows["row"].tolist() == ["1", "full"] and rows["n"].tolist() == [0, 0]
    assert rows["unpaired"].tolist() == [4, 4] and "ahead" not in " ".join(rows["verdict"])


# -- paired differences and the crossover --------------------------------------------------------------------------
def test_paired_differences_average_the_shared_classes_of_each_seed():
    a = pd.DataFrame({"normal_class": [0, 1, 0, 1], "seed": [0, 0, 1, 1], "value": [80.0, 70.0, 82.0, 72.0]})
    b = pd.DataFrame({"normal_class": [0, 1, 0, 2], "seed": [0, 0, 1, 1], "value": [90.0, 74.0, 83.0, 99.0]})
    diffs, unpaired = paired_seed_differences(a, b)
    # seed 0: classes 0 and 1: mean(10, 4) = 7; seed 1: class 0 only: 1 (a's class 1, b's class 2 unpaired)
    assert diffs.to_dict() == {0: 7.0, 1: 1.0} and unpaired == 2


def test_crossover_with_a_known_bootstrap_interval(tmp_path):
    # bce − hsc per seed at OE sizes 1, 4, 16, 64, full: seed 0 catches up at 16, seed 1 at 4; their mean at 16.
    # Resampling 2 seeds: {0, 0} -> 16, {1, 1} -> 4, {0, 1} -> 16, so the 95 % interval is 4 – 16.
    gaps = {0: [-10, -10, 5, 5, 5], 1: [-10, 5, 5, 5, 5]}
    root = tmp_path / "fig2-cifar10"
    for k, oe_size in enumerate((1, 4, 16, 64, None)):
        for seed, gap in gaps.items():
            for cls in (0, 1):
                record(root, "hsc", cls, seed, 0.80, oe_size)
                record(root, "bce", cls, seed, 0.80 + gap[k] / 100, oe_size)
    md, _ = report(root)
    assert (
        "`bce` catches up with `hsc` at OE size **16**, the first where its mean is at least `hsc`'s (paper: about 8, "
        "in AUROC); 95 % bootstrap interval 4 – 16 (2 paired seeds resampled 2000 times, generator seed 0; in 0% of "
        "the resamples `bce` does not catch up within the OE sizes compared)."
    ) in md
    rows = pd.read_csv(root / "comparison.csv", dtype={"row": str}).set_index("row")
    assert rows.loc["1", "mean"] == pytest.approx(-10) and rows.loc["1", "verdict"] == "hsc ahead"  # both seeds -10
    # OE size 4: differences -10 and +5: mean -2.5, sd 10.607, half-width 12.706205 * 10.607 / sqrt(2) = 95.30
    assert rows.loc["4", "mean"] == pytest.approx(-2.5) and rows.loc["4", "ci_high"] == pytest.approx(92.80, abs=0.01)
    assert rows.loc["4", "verdict"] == "no clear difference (the interval holds 0)"
    assert rows.loc["full", "verdict"] == "bce ahead" and rows["n"].tolist() == [2] * 5
    assert main([str(root)]) == 0 and (root / "paper.md").read_text() == md  # seeded: the same interval again


def test_bootstrap_crossover_never_and_its_share():
    diffs = pd.DataFrame({"1": [-5.0, -6.0, -4.0], "8": [-1.0, 2.0, -2.0]}, index=[0, 1, 2])
    c = bootstrap_crossover(diffs, ["1", "8"])
    # mean at 8 is -1/3 < 0: never. A resample of the 3 seeds catches up at 8 when its sum at 8 is >= 0:
    # 10 of the 27 equally likely draws, so it never catches up with probability 17/27 = 0.630
    assert (c.at, c.low, c.high, c.seeds, c.resamples) == ("never", "8", "never", 3, 2000)
    assert c.never_share == pytest.approx(17 / 27, abs=0.03)


# -- the paper's setting -----------------------------------------------------------------------------------------
def test_expectations_come_from_the_experiments_sweep_and_config():
    fig2 = expected("fig2-cifar10", "bce")
    assert (fig2.stem, fig2.seeds, fig2.classes) == ("fig2-cifar10", 10, 10)
    assert fig2.setting == {
        "data.name": "cifar10",
        "oe.name": "tiny300k",
        "benchmark": "ovr",
        "epochs": 200,
        "milestones": [100, 150],
        "lr": 0.001,
        "augment": True,
    }
    clip = expected("fig3-cifar10", "clip_zero_shot")  # swept by fig3-cifar10-baselines, same folder
    assert (clip.stem, clip.seeds, clip.setting["epochs"], clip.setting["benchmark"]) == (
        "fig3-cifar10-baselines",
        2,
        30,
        "loo",
    )
    assert "augment" not in expected("table6-hsc", "hsc").setting  # Table 6 sweeps it: its columns
    assert expected("table3-cifar10", "hsc").seeds == 1  # a search: one search seed per (class, direction)


def test_milestone_fractions_compare_as_the_epochs_they_resolve_to():
    assert resolve_milestones([0.5, 0.75], 200) == [100, 150] and resolve_milestones([100, 150], 200) == [100, 150]
    paper = Expected(
        "x", "bce", 10, 10, setting_of({"epochs": 200, "milestones": [0.5, 0.75]}, ("epochs", "milestones"))
    )
    assert differences({"epochs": 200, "milestones": [100, 150]}, paper) == []
    assert differences({"epochs": 10, "milestones": [8]}, paper) == [
        ("epochs", "10", "200"),
        ("milestones", "[8]", "[100, 150]"),
    ]
    assert differences({}, paper) == [("epochs", "missing", "200"), ("milestones", "missing", "[100, 150]")]


# -- issue 30: the paper's setting beside the paper column, class names, text ----------------------------------
TINY300K = {**PAPER, "oe": "tiny300k"}  # fig2/table1-cifar10's own config: the substitute for the paper's 80MTI


def with_classes(root) -> None:
    """Give every record under root the dataset's class list (as jobs write it)."""
    for path in root.rglob("result.json"):
        rec = json.loads(path.read_text())
        rec["classes"] = CLASSES
        path.write_text(json.dumps(rec))


def test_the_substitute_oe_set_is_shown_beside_the_paper_column_without_a_delta(tmp_path):
    root = tmp_path / "table1-cifar10"
    for seed in range(2):
        record(root, "bce", 3, seed, 0.90, setting=TINY300K, name="table1-cifar10")
    with_classes(root)
    md, table = report(root)
    cat = table.set_index(["column", "row"]).loc[("bce", "cat")]
    assert cat["paper"] == 90.0 and np.isnan(cat["diff"]) and not cat["paper_comparable"]
    setting = next(line for line in md.splitlines() if line.startswith("| *setting* |"))
    assert "OE 300K random images (`tiny300k`)" in setting  # ours
    assert "OE 80 Million Tiny Images (`tiny_images`)" in setting  # the paper's
    assert "oe.name=tiny300k (paper: tiny_images) [the experiment's own choice: The paper's CIFAR-10 OE" in md
    assert "a difference between them is not a reproduction gap" in md
    # rows are named from the records' class list, not "class 0"
    rows = [line.split(" | ")[0].strip("| ") for line in md.splitlines() if line.startswith("| ")]
    assert "airplane" in rows and "class 0" not in rows


def test_the_mean_row_gives_the_papers_spread_over_classes(tmp_path):
    root = tmp_path / "table1-cifar10"
    for cls, auc in ((0, 0.90), (1, 0.94)):
        for seed in range(2):
            record(root, "hsc", cls, seed, auc + 0.01 * seed, name="table1-cifar10")
    md, table = report(root)
    mean = table.set_index(["column", "row"]).loc[("hsc", "mean")]
    # class values 90.5 and 94.5: np.std (population, as the paper's code) = 2.0
    assert mean["spread"] == pytest.approx(2.0)
    assert "; over classes ± 2.00" in md


def test_one_oe_size_gives_no_crossover_and_the_csv_names_its_difference(tmp_path):
    root = tmp_path / "fig2-cifar10"
    for seed in range(3):
        record(root, "hsc", 3, seed, 0.66 + 0.02 * seed)
        record(root, "bce", 3, seed, 0.67 + 0.01 * seed)
    md, _ = report(root)
    assert "catches up" not in md and "full – full" not in md
    assert "No crossover is computed: only one OE size (full) has 2 paired seeds" in md
    rows = pd.read_csv(root / "comparison.csv", dtype={"row": str})
    assert rows["difference"].tolist() == ["bce − hsc"] and rows["metric"].tolist() == ["auroc"]


def test_configurations_are_never_paired(tmp_path):
    root = tmp_path / "fig2-cifar10"
    for seed in range(2):
        record(root, "hsc", 3, seed, 0.66, setting={**LOCAL, "epochs": 12, "milestones": [6, 9]})
        record(root, "bce", 3, seed, 0.70, setting={**LOCAL, "epochs": 1, "milestones": []})
    md, table = report(root)
    assert "`hsc` and `bce` were run with different settings (epochs: 12 vs 1; milestones: [6, 9] vs [])" in md
    assert "never paired" in md and "catches up" not in md


def test_an_empty_folder_is_an_error_and_writes_nothing(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no result records" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_one_record_is_one_record(tmp_path):
    record(tmp_path / "x", "bce", 0, 0, 0.8, name="my-own")
    assert main([str(tmp_path / "x")]) == 0
    assert "\n1 record. " in (tmp_path / "x" / "report.md").read_text()


# -- --metric (issue 27): any per-job metric, its convention stated, missing never 0 -------------------------
def metric_folder(root) -> None:
    for seed in range(2):
        record(root, "bce", 0, seed, 0.9, name="fig2-cifar10")
        record(root, "hsc", 0, seed, 0.8, name="fig2-cifar10")
    for path in root.rglob("result.json"):  # FPR95 in all records but one; AUPR-In in none
        rec = json.loads(path.read_text())
        if not (rec["method"] == "hsc" and rec["seed"] == 1):
            rec["test_fpr95"] = 0.2 if rec["method"] == "bce" else 0.4
        rec["test_aupr"] = 0.5
        path.write_text(json.dumps(rec))


@pytest.mark.parametrize(
    "metric, words",
    [
        ("auroc", "AUROC in % (area under the ROC curve"),
        ("aupr", "AUPR in % (area under the precision-recall curve (average precision) with the anomalies as the "),
        ("aupr_in", "AUPR-In in % (area under the precision-recall curve with the normal images as the positive"),
        ("aupr_out", "AUPR-Out in % (area under the precision-recall curve with the anomalies as the positive"),
        ("fpr95", "FPR95 in % (share of the anomalous test images scored as normal at the threshold that keeps 95 %"),
    ],
)
def test_every_table_header_states_the_metric_and_its_convention(tmp_path, metric, words):
    root = tmp_path / "fig2-cifar10"
    metric_folder(root)
    assert main([str(root), "--metric", metric]) == 0
    for name in ("paper.md", "report.md"):
        assert words in (root / name).read_text(), name


def test_a_metric_a_record_lacks_is_missing_not_zero_and_never_set_against_the_paper(tmp_path):
    root = tmp_path / "fig2-cifar10"
    metric_folder(root)
    assert main([str(root), "--metric", "fpr95"]) == 0
    table = pd.read_csv(root / "paper.csv", dtype={"row": str}).set_index(["column", "row"])
    hsc, bce = table.loc[("hsc", "full")], table.loc[("bce", "full")]
    assert (hsc["mean"], hsc["n"]) == (pytest.approx(40.0), 1)  # the record without FPR95 is not a 0
    assert bce["mean"] == pytest.approx(20.0) and np.isnan(bce["paper"]) and np.isnan(bce["diff"])
    assert bce["paper_status"] == "AUROC only"
    md = (root / "paper.md").read_text()
    assert "| paper (AUROC only) |" in md and "*AUROC only*" in md and "| Δ |" not in md
    generic = (root / "report.md").read_text()
    assert "1 record lack FPR95 (shown as missing)" in generic
    assert main([str(root), "--metric", "aupr_in"]) == 0  # no record has it: every cell missing
    table = pd.read_csv(root / "paper.csv", dtype={"row": str}).set_index(["column", "row"])
    assert table.loc[("bce", "full"), "n"] == 0 and np.isnan(table.loc[("bce", "full"), "mean"])
    # lower is better for FPR95: bce (20) is ahead of hsc (40) where a seed pairs
    rows = pd.read_csv(root / "comparison.csv", dtype={"row": str})
    assert rows["metric"].tolist() == ["aupr_in"]


def test_fpr95_comparison_counts_lower_as_better(tmp_path):
    root = tmp_path / "fig2-cifar10"
    for seed in range(3):
        for oe_size, (h, b) in ((1, (0.3, 0.5)), (None, (0.4, 0.2 + 0.01 * seed))):
            record(root, "hsc", 0, seed, 0.8, oe_size)
            record(root, "bce", 0, seed, 0.8, oe_size)
            for method, v in (("hsc", h), ("bce", b)):
                path = next((root / method).glob(f"{method}-0-{seed}-{oe_size}-*/result.json"))
                rec = json.loads(path.read_text())
                rec["test_fpr95"] = v
                path.write_text(json.dumps(rec))
    assert main([str(root), "--metric", "fpr95"]) == 0
    md = (root / "paper.md").read_text()
    assert "`bce` catches up with `hsc` at OE size **full**" in md
    rows = pd.read_csv(root / "comparison.csv", dtype={"row": str}).set_index("row")
    assert rows.loc["1", "verdict"] == "hsc ahead" and rows.loc["full", "verdict"] == "bce ahead"

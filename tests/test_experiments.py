"""Every experiment config composes and its sweep expands to the expected number of jobs (nothing trains).

Configs that use a data/oe/net/method option that is not in conf/ yet are skipped with the option named, so
they are checked as soon as that option lands.
"""

import itertools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from oe_ad.config import CONF_DIR
from oe_ad.data.sources import CIFAR10
from oe_ad.errors import OEADError
from oe_ad.experiments import Experiment, experiments
from oe_ad.job.records import config_hash
from oe_ad.report.expected import Expected, expected
from oe_ad.report.layout import paper_layouts, parse_layout
from oe_ad.report.paper import check_paper_classes, paper_values
from oe_ad.sweep import expand

EXPERIMENTS = experiments()
JOB_COUNT = re.compile(r"\((\d+) (?:jobs|searches)\b")  # every help line states the size of its sweep
GROUPS = ("data", "oe", "net", "method", "filter", "logger", "trainer")


def missing_options(name: str) -> list[str]:
    """``group/option`` names an experiment uses that have no YAML in conf/ (yet)."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "experiment" / f"{name}.yaml"))
    wanted = []
    for entry in cfg.get("defaults", []):
        for key, value in entry.items() if isinstance(entry, dict) else []:
            wanted.append((key.removeprefix("override ").strip("/"), value))
    for key, values in cfg["hydra"]["sweeper"]["params"].items():
        if key in GROUPS:
            wanted += [(key, v) for v in str(values).split(",")]
    return [f"{g}/{o}" for g, o in wanted if not (CONF_DIR / g / f"{o}.yaml").exists()]


def test_every_experiment_yaml_is_listed():
    assert set(EXPERIMENTS) == {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
    assert all(JOB_COUNT.search(exp.help) for exp in EXPERIMENTS.values())


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_expands(name):
    missing = missing_options(name)
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (not in conf/ yet)")
    exp = EXPERIMENTS[name]
    config_name = "search" if exp.kind == "search" else "config"
    jobs = expand([f"experiment={name}"], config_name)
    assert len(jobs) == int(JOB_COUNT.search(exp.help).group(1))
    assert len({" ".join(sorted(j)) for j in jobs}) == len(jobs)  # no duplicate jobs
    first = dict(j.split("=", 1) for j in jobs[0])
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=[f"{k}={v}" for k, v in first.items()])
    expected_name = re.sub(r"-(baselines|bce-cl)$", "", name)  # a figure's extra sweeps write into its folder
    assert cfg.name == expected_name == exp.name  # records land in runs/<name>/, where the report looks
    assert cfg.data.name == exp.data  # the class order of per-class paper values
    if exp.kind == "search":
        assert cfg.search.algorithm == ("random" if name.startswith("table5") else "evolution")
        assert (cfg.epochs, list(cfg.milestones)) == (30, [25])


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_report_layout_parses(name):
    exp = EXPERIMENTS[name]
    if exp.stem != exp.name:  # a -baselines sweep: its jobs and report are its main experiment's
        assert exp.report == {} and exp.name in paper_layouts()
        return
    layout = paper_layouts()[name]
    assert layout.title and layout.source == ("search" if exp.kind == "search" else "jobs")
    values = [v for rows in layout.paper.values() for v in rows.values()]
    values += [v for per_class in layout.paper_classes.values() for v in per_class or ()]
    assert all(v is None or isinstance(v, float) for v in values)  # a number, or null: not transcribed
    for column in layout.paper_classes:  # one paper value per class the experiment's sweep runs
        method = column.split(" ")[0]
        found = expected(name, method)
        assert found is not None, f"{name}: the experiment does not compose for method {method}"
        check_paper_classes(name, layout, found)


# -- the paper's values: every method, class and table the paper reports for an experiment ----------------------
# The paper's tables this package reproduces, and the experiments whose report.tables must name them (the per-class
# appendix tables included: Table 8 is Table 1's CIFAR-10 per class, Tables 13 and 14 leave-one-class-out
# ImageNet-30 and CIFAR-10, Table 15 MVTec-AD).
PAPER_TABLES = {
    "Table 1": ("table1-cifar10", "table1-imagenet30", "fig2-cifar10", "fig2-imagenet30", "fig13-focal"),
    "Table 2": ("table2-cifar10", "table2-imagenet30"),
    "Table 3": ("table3-cifar10", "table3-imagenet30"),
    "Table 4": ("table4-lpf-cifar10", "table4-hpf-cifar10", "table4-lpf-imagenet30", "table4-hpf-imagenet30"),
    "Table 5": (
        *("table5-cifar10", "table5-imagenet30", "table5-lpf-cifar10", "table5-hpf-cifar10"),
        *("table5-lpf-imagenet30", "table5-hpf-imagenet30"),
    ),
    "Table 6": ("table6-hsc",),
    "Table 8": ("table1-cifar10",),
    "Table 9": ("table1-imagenet30",),
    "Table 11": ("table2-cifar10",),
    "Table 12": ("table2-imagenet30",),
    "Table 13": ("fig3-imagenet30",),
    "Table 14": ("fig3-cifar10",),
    "Table 15": ("fig4-mvtec",),
}
WITH_TABLES = sorted({n for names in PAPER_TABLES.values() for n in names})


def sweep_columns(name: str) -> set[str]:
    """The column labels the sweeps writing into runs/<name>/ produce: the layout's column keys' swept values."""
    from oe_ad.report.expected import sweep_values
    from oe_ad.report.paper import BARE
    from oe_ad.report.tables import value_label

    layout = paper_layouts()[name]
    labels = set()
    for exp in (e for e in EXPERIMENTS.values() if e.name == name):
        config_name = "search" if exp.kind == "search" else "config"
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name, overrides=[f"experiment={exp.stem}"], return_hydra_config=True)
        params = {str(k): v for k, v in (OmegaConf.to_container(cfg.hydra.sweeper.params) or {}).items()}
        per_key = []
        for key in layout.columns:
            if key == "found":
                per_key.append([{"max": "best", "min": "worst"}[d] for d in sweep_values(params["search.direction"])])
            elif key in params:
                per_key.append(sweep_values(params[key]))
            else:
                per_key.append([str(OmegaConf.select(cfg, "method.name" if key == "method" else key))])
        for combo in itertools.product(*per_key):
            labels.add(
                " ".join(
                    value_label(v) if k in BARE else f"{k}={value_label(yaml_value(v))}"
                    for k, v in zip(layout.columns, combo)
                )
            )
    return labels


def yaml_value(text: str):
    """A swept value as the records hold it (``false`` -> False)."""
    return OmegaConf.create({"v": text})["v"] if isinstance(text, str) else text


@pytest.mark.parametrize("table", PAPER_TABLES)
def test_every_paper_table_is_named_by_its_experiments(table):
    for name in PAPER_TABLES[table]:
        tables = paper_layouts()[name].tables
        assert re.search(rf"\b{table}\b", tables), f"{name}: report.tables does not name {table} ({tables!r})"


@pytest.mark.parametrize("name", WITH_TABLES)
def test_paper_values_have_every_method_and_class(name):
    """Every column the experiment's sweeps produce has the paper's value (a number, or null where the paper gives
    one that is not transcribed) or is listed as not in the paper; per-class values cover every class; each
    column's line in the YAML names its table."""
    layout = paper_layouts()[name]
    columns = sweep_columns(name)
    missing = columns - set(layout.paper) - set(layout.not_in_paper)
    assert not missing, f"{name}: no paper value for {sorted(missing)}: add it (null: not transcribed) or not_in_paper"
    assert not set(layout.paper) - columns, f"{name}: paper values for columns no sweep runs"
    for column, rows in layout.paper.items():
        assert rows, f"{name}: report.paper.{column} holds no row"
        per_class = layout.paper_classes.get(column)
        if per_class is not None:
            found = expected(name, column.split(" ")[0])
            assert len(per_class) == found.classes, f"{name}: {column} per-class values != {found.classes} classes"
    lines = (CONF_DIR / "experiment" / f"{name}.yaml").read_text().splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("  paper:"))
    for line in lines[start + 1 :]:
        if re.match(r"^  \S", line):  # the next key of report:
            break
        if re.match(r"^    \S", line):  # a column's first line
            assert re.search(r"#.*\bTables? \d+", line), f"{name}: no comment naming the paper's table: {line!r}"


def test_the_paper_values_test_fails_on_a_missing_method_or_class(tmp_path):
    """The check above with a method and a class taken out of table1-cifar10's values."""
    layout = paper_layouts()["table1-cifar10"]
    short = dict(layout.paper)
    short.pop("focal")
    assert sweep_columns("table1-cifar10") - set(short) == {"focal"}
    report = {"title": "t", "paper": {"hsc": {"classes": [90.0] * 9}}}
    bad = parse_layout(Experiment("table1-cifar10", "table1-cifar10", "run", "x (1 job)", "cifar10", report))
    with pytest.raises(OEADError, match="needs one value per class"):
        check_paper_classes("table1-cifar10", bad, expected("table1-cifar10", "hsc"))


def test_per_class_paper_values_take_their_class_names_from_the_records():
    layout = paper_layouts()["table1-cifar10"]
    assert layout.paper_classes["hsc"][3] == 89.8 and layout.paper["hsc"] == {"mean": 95.9}
    records = pd.DataFrame({"normal_class": [3, 9], "class_name": ["cat", "truck"]})
    hsc = paper_values(records, layout)["hsc"]
    assert (hsc["cat"], hsc["truck"], hsc["mean"]) == (89.8, 97.4, 95.9)
    assert hsc["class 0"] == 96.3  # no record names class 0: the report does not ask the data code
    assert len(hsc) == len(CIFAR10.classes) + 1


def test_a_bad_report_layout_is_one_error_naming_the_key():
    def layout(report: dict) -> Experiment:
        return Experiment("new-fig", "new-fig", "run", "New figure (1 jobs)", "cifar10", report)

    with pytest.raises(OEADError, match=r"new-fig\.yaml: report\.colums: unknown key"):
        parse_layout(layout({"title": "t", "colums": ["method"]}))
    two = parse_layout(layout({"title": "t", "paper": {"hsc": {"classes": [90.0, 91.0]}}}))
    with pytest.raises(OEADError, match=r"new-fig\.yaml: report\.paper\.hsc\.classes: needs one value per class"):
        check_paper_classes("new-fig", two, Expected("new-fig", "hsc", 10, 10, {}))
    with pytest.raises(OEADError, match=r"report\.paper\.hsc\.classes: needs a list of numbers"):
        parse_layout(layout({"title": "t", "paper": {"hsc": {"classes": "90"}}}))
    with pytest.raises(OEADError, match=r"report\.title: missing"):
        parse_layout(layout({"rows": "oe_size"}))


def test_the_report_node_changes_neither_the_config_hash_nor_the_job_folder():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=table1-cifar10", "method=hsc"], return_hydra_config=True)
    assert "report" in cfg.hydra.job.config.override_dirname.exclude_keys
    full = OmegaConf.to_container(cfg, resolve=False)
    full.pop("hydra")
    assert full["report"]["title"].startswith("Table 1")
    without = {k: v for k, v in full.items() if k != "report"}
    assert config_hash(full) == config_hash(without)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_every_experiment_yaml_is_a_make_target_with_its_help_line():
    """`make help` lists each experiment with its report.help; `make <experiment>` runs oe_ad.search for a
    YAML that sets `search:`, oe_ad.run otherwise, then reports its records' folder runs/<name>."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    run = dict(cwd=root, env=env, capture_output=True, text=True, check=True)
    shown = subprocess.run(["make", "-s", "help", f"PY={sys.executable}"], **run).stdout
    helps = dict(line.strip().split(maxsplit=1) for line in shown.splitlines())
    assert {name: helps.get(name) for name in EXPERIMENTS} == {name: e.help for name, e in EXPERIMENTS.items()}
    dry = subprocess.run(["make", "-n", *EXPERIMENTS, "PY=py", "RUNS=R", "WANDB=", "ARGS="], **run).stdout
    steps = re.findall(r"py -m oe_ad\.(run|search) -m experiment=(\S+) .*\n.*py -m oe_ad\.report R/(\S+) ", dry)
    assert {name: (kind, folder) for kind, name, folder in steps} == {
        name: (e.kind, e.name) for name, e in EXPERIMENTS.items()
    }


def test_the_command_line_narrows_an_experiment():
    jobs = expand(["experiment=fig2-cifar10", "normal_class=1,3", "seed=0", "oe_size=1,4,16,64,256,null"])
    assert len(jobs) == 2 * 2 * 6
    assert {j for job in jobs for j in job if j.startswith("method=")} == {"method=hsc", "method=bce"}
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=fig3-cifar10", "method=hsc", "epochs=3"])
    assert (cfg.benchmark, cfg.epochs, list(cfg.milestones), cfg.augment) == ("loo", 3, [25], False)


def test_experiment_settings_reach_the_job_config():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        t6 = compose("config", overrides=["experiment=table6-hsc", "method.radial=l1"])
        freq = compose("config", overrides=["experiment=freq-hpf-cifar10", "filter.magnitude=7"])
        t4 = compose("search", overrides=["experiment=table4-lpf-cifar10", "search.direction=min"])
    assert (t6.method.name, t6.method.radial) == ("hsc", "l1")
    assert (freq.filter.kind, freq.filter.magnitude, list(freq.filter.parts)) == (
        "hpf",
        7,
        ["train_normal", "train_oe", "test"],
    )
    assert (t4.filter.kind, t4.filter.magnitude, t4.search.direction, t4.search.generation_size) == (
        "lpf",
        14,
        "min",
        64,
    )


# -- reports in the paper's layout, from synthetic records -------------------------------------------------

CLASSES = CIFAR10.classes


# the setting of the paper's CIFAR-10 numbers (the experiments' configs with the paper's OE, 80MTI: their
# report.deviations): records in it get the paper's Δ
PAPER_SETTING = {
    "data": {"name": "cifar10"},
    "oe": {"name": "tiny_images"},
    "benchmark": "ovr",
    "epochs": 200,
    "milestones": [100, 150],
    "lr": 0.001,
    "augment": True,
}


def fake_record(root, name: str, method: str, cls: int, seed: int, auc: float, oe_size=None, **config) -> None:
    """A result.json as a job writes it (only the keys the report reads), in the paper's setting."""
    from oe_ad.job.records import write_record

    cfg = {"name": name, **PAPER_SETTING, "method": {"name": method, **config.pop("method_cfg", {})}, **config}
    record = {
        "config_hash": f"{method}-{cls}-{seed}-{oe_size}-{cfg}",
        "method": method,
        "data": "cifar10",
        "oe": "none" if method == "deep_svdd" else cfg["oe"]["name"],
        "benchmark": "ovr",
        "normal_class": cls,
        "class_name": CLASSES[cls],
        "seed": seed,
        "oe_size": oe_size,
        "test_auroc": auc,
        "config": cfg,
    }
    write_record(root / method / str(abs(hash(record["config_hash"]))), record)


def test_table1_report_puts_the_paper_values_in_the_right_cells(tmp_path):
    from oe_ad.report import main

    root = tmp_path / "table1-cifar10"
    for method, base in (("hsc", 0.90), ("bce", 0.92)):
        for cls in range(10):
            for seed in range(2):
                fake_record(root, "table1-cifar10", method, cls, seed, base + 0.005 * cls + 0.01 * seed)
    assert main([str(root)]) == 0
    table = pd.read_csv(root / "paper.csv")
    cell = table.set_index(["column", "row"])
    assert cell.loc[("bce", "cat"), "paper"] == 90.0 and cell.loc[("hsc", "deer"), "paper"] == 96.6
    assert cell.loc[("hsc", "mean"), "paper"] == 95.9 and cell.loc[("deep_sad", "mean"), "paper"] == 94.5
    assert np.isnan(cell.loc[("deep_sad", "mean"), "mean"])  # the paper's column is shown even without our runs
    # ours: cat (class 3) of BCE = mean over seeds of 92 + 1.5 + {0, 1}
    assert cell.loc[("bce", "cat"), "mean"] == pytest.approx(94.0)
    assert cell.loc[("bce", "cat"), "std"] == pytest.approx(0.5**0.5)  # sample sd of 93.5, 94.5
    # 95 % t-interval, 1 degree of freedom: t = 12.7062, half-width = 12.7062 * 0.7071 / sqrt(2) = 6.353
    assert cell.loc[("bce", "cat"), "ci_low"] == pytest.approx(94.0 - 6.3531, abs=1e-3)
    assert cell.loc[("bce", "cat"), "diff"] == pytest.approx(4.0)
    assert cell.loc[("bce", "cat"), "n"] == 2 and cell.loc[("bce", "cat"), "seeds_expected"] == 10
    assert not cell.loc[("bce", "cat"), "complete"] and cell.loc[("bce", "cat"), "paper_comparable"]
    assert cell.loc[("hsc", "mean"), "mean"] == pytest.approx(90 + 2.25 + 0.5)
    md = (root / "paper.md").read_text()
    header = next(line for line in md.split("\n") if line.startswith("| class |"))
    assert header.index("deep_sad (ours") < header.index("hsc (ours") < header.index("focal") < header.index("bce")
    cat = next(line for line in md.split("\n") if line.startswith("| cat |"))
    assert "| 92.0 ± 0.7 [85.6, 98.4] (n=2 of 10: *incomplete*) | 89.8 | +2.2 |" in cat
    assert cat.endswith("| 94.0 ± 0.7 [87.6, 100.4] (n=2 of 10: *incomplete*) | 90.0 | +4.0 |")
    assert "Not the paper's setting" not in md
    assert (root / "report.md").read_text().startswith("## Table 1, CIFAR-10")


def test_curve_report_finds_the_crossover_and_draws_the_figures(tmp_path):
    from oe_ad.report import main

    root = tmp_path / "fig2-cifar10"
    for oe_size in (1, 4, 16, None):
        for cls in (1, 3):
            for seed in (0, 1):
                # HSC is flat, BCE rises past it from 16 images on, in both seeds
                fake_record(root, "fig2-cifar10", "hsc", cls, seed, 0.80 + 0.01 * seed, oe_size=oe_size)
                auc = {1: 0.6, 4: 0.7, 16: 0.85, None: 0.9}[oe_size] + 0.02 * seed
                fake_record(root, "fig2-cifar10", "bce", cls, seed, auc, oe_size)
    assert main([str(root)]) == 0
    table = pd.read_csv(root / "paper.csv", dtype={"row": str}).set_index(["column", "row"])
    assert list(table.loc["hsc"].index) == ["1", "4", "16", "full"]
    assert table.loc[("bce", "full"), "paper"] == 96.1 and table.loc[("bce", "full"), "mean"] == pytest.approx(91)
    md = (root / "paper.md").read_text()
    assert (
        "`bce` catches up with `hsc` at OE size **16**, the first where its mean is at least `hsc`'s (paper: about 8"
        in md
    )
    assert "95 % bootstrap interval 16 – 16" in md
    for png in ("fig2-cifar10.png", "fig2-cifar10-per-class.png"):
        assert (root / png).stat().st_size > 5000


def test_grid_report_table6_rows_and_columns(tmp_path):
    from oe_ad.report import main

    root = tmp_path / "t6"
    for radial in ("l1", "pseudo_huber"):
        for augment in (False, True):
            fake_record(root, "table6-hsc", "hsc", 0, 0, 0.9, augment=augment, method_cfg={"radial": radial})
    assert main([str(root)]) == 0  # detected from the records' name, not the folder
    table = pd.read_csv(root / "paper.csv").set_index(["column", "row"])
    assert table.loc[("augment=True", "pseudo_huber"), "paper"] == 96.1
    assert table.loc[("augment=False", "l1"), "paper"] == 90.6
    assert table.loc[("augment=False", "l1"), "diff"] == pytest.approx(90 - 90.6)


def test_plain_folder_report_is_unchanged(tmp_path):
    from oe_ad.report import main

    fake_record(tmp_path, "my-own", "bce", 0, 0, 0.9, oe_size=8)
    fake_record(tmp_path, "my-own", "deep_svdd", 0, 0, 0.6)  # no OE: its OE size is "none"
    assert main([str(tmp_path)]) == 0
    assert not (tmp_path / "paper.md").exists()
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# Results under") and "deep_svdd (OE none)" in md and "bce (OE 8)" in md


def _run_notebook(runs: Path, monkeypatch) -> list:
    """Execute notebooks/results.ipynb on the records under ``runs``; its code cells' outputs."""
    import os
    import sys

    import nbformat
    from nbclient import NotebookClient

    src = Path(__file__).resolve().parents[1] / "src"
    monkeypatch.setenv("OE_AD_RUNS", str(runs))
    monkeypatch.setenv("PYTHONPATH", f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # the venv's kernel
    path = Path(__file__).resolve().parents[1] / "notebooks" / "results.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


def _text(outputs: list) -> str:
    return "".join(
        str(o.get("text", ""))
        + str(o.get("data", {}).get("text/markdown", ""))
        + str(o.get("data", {}).get("text/plain", ""))
        for o in outputs
    )


@pytest.mark.slow
def test_results_notebook_runs_on_synthetic_records(tmp_path, monkeypatch):
    """notebooks/results.ipynb executes top to bottom on made-up fig2 and fig6 records and a plain sweep's folder,
    shows the report's figures and saves them."""
    for oe_size in (1, 8, None):
        for cls in (0, 1):
            for seed in (0, 1):
                for method, auc in (("hsc", 0.8), ("bce", 0.7 if oe_size == 1 else 0.9)):
                    fake_record(
                        tmp_path / "fig2-cifar10", "fig2-cifar10", method, cls, seed, auc + 0.01 * seed, oe_size
                    )
                    fake_record(tmp_path / "default", "default", method, cls, seed, auc, oe_size)  # oe-ad-run -m
    for k in (1, 2, 5):
        for cls in (0, 1):
            for method in ("hsc", "bce"):
                oe = {"name": "cifar100", "classes": k}
                fake_record(tmp_path / "fig6-cifar100", "fig6-cifar100", method, cls, 0, 0.8 + 0.01 * k, oe=oe)
    outputs = _run_notebook(tmp_path, monkeypatch)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 6  # curve + per-class panels of each folder
    for folder in ("fig2-cifar10", "fig6-cifar100", "default"):
        assert len(list((tmp_path / "notebook-figures" / folder).glob("*.png"))) == 2, folder
    text = _text(outputs)
    assert "| full | 80.5 ± 0.7 [74.1, 86.9] (n=2 of 10, 2 of 10 classes: *incomplete*) | 95.9 |" in text
    assert "`bce` catches up with `hsc` at OE size **8**" in text  # 2 paired seeds
    assert "No crossover is computed: fewer than 2 paired seeds" in text  # Figure 6: one seed
    assert "# Results under" in text and "bce (OE 8)" in text  # the plain sweep: the generic per-class tables


@pytest.mark.slow
def test_results_notebook_on_a_figure_2_only_folder_says_what_is_missing(tmp_path, monkeypatch):
    """Only BCE records of Figure 2, one seed (issue 20): every cell runs, the missing parts are named; the
    folder itself as OE_AD_RUNS works too; an empty folder gives messages, no figure, no error."""
    for oe_size in (1, None):
        for cls in (0, 1):
            fake_record(tmp_path / "fig2-cifar10", "fig2-cifar10", "bce", cls, 0, 0.9, oe_size)
    for runs in (tmp_path, tmp_path / "fig2-cifar10"):
        outputs = _run_notebook(runs, monkeypatch)
        assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # Figure 2 and its per-class panels
        text = _text(outputs)
        assert "No crossover is computed: no records of `hsc` (held: `bce`: 4 records)" in text
        assert "90.0 (n=1 of 10, 2 of 10 classes: *incomplete*)" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    outputs = _run_notebook(empty, monkeypatch)
    text = _text(outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 0
    assert f"No result records under {empty}" in text and "No figure saved." in text


def test_reduced_imagenet_runs_crop_only():
    """The paper's reduced runs use only random cropping on ImageNet: no jitter, no noise, no flip (issue 30)."""
    import torch

    from oe_ad.data.augment import Augmenter, random_crop

    reduced = [e for e in EXPERIMENTS.values() if e.data == "imagenet30" and "epochs: 30" in _yaml(e.stem)]
    assert len(reduced) >= 10
    for exp in reduced:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("search" if exp.kind == "search" else "config", overrides=[f"experiment={exp.stem}"])
        aug = cfg.augmentation
        assert (aug.jitter, aug.noise, aug.flip, aug.crop) == (0, 0, False, 224), exp.stem
    x = torch.randint(0, 256, (8, 3, 12, 12), dtype=torch.uint8)
    plain = dict(mean=torch.zeros(3), std=torch.ones(3), crop=8, padding=0, jitter=0.0, noise=0.0)
    crop_only = Augmenter(**plain, flip=False).train(x, torch.Generator().manual_seed(0))
    assert torch.equal(crop_only, random_crop(x.float() / 255, 8, 0, torch.Generator().manual_seed(0)))
    flipped = Augmenter(**plain, flip=True).train(x, torch.Generator().manual_seed(0))
    assert not torch.equal(flipped, crop_only)


def _yaml(stem: str) -> str:
    return (CONF_DIR / "experiment" / f"{stem}.yaml").read_text()

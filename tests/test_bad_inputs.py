"""Bad inputs a careful user tries: each is one ``error:`` line naming the key or file, exit code 2, no record.

The command lines run in this process (the Hydra app's ``main`` with a patched ``sys.argv``): a subprocess per
case would cost seconds each. The tiny data of ``conftest.py`` (3 classes, 64 OE images, epochs=3, milestones=[2]).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import merged, tiny_overrides
from oe_ad import predict, run
from oe_ad.config import CONF_DIR, GROUPS
from oe_ad.config.schema import validate_config
from oe_ad.job.checkpoint import save_model
from oe_ad.search import __main__ as search_main

# (command-line arguments after the tiny-data overrides, text the error line must contain)
RUN_CASES = [
    (["augment=maybe"], "augment=maybe"),
    (["augment=2"], "augment=2"),
    (["augment=[1]"], "augment="),
    (["force=perhaps"], "force=perhaps"),
    (["normal_class=true"], "normal_class=true"),
    (["normal_class=abc"], "normal_class=abc"),
    (["normal_class=1.5"], "normal_class=1.5"),
    (["normal_class=-1"], "normal_class=-1"),
    (["normal_class=3"], "normal_class=3"),  # the data have 3 classes: 0..2
    (["normal_class=7"], "normal_class=7"),
    (["milestones=[abc]"], "milestones="),
    (["milestones=abc"], "milestones=abc"),
    (["milestones=[4]"], "milestones=[4]"),  # beyond epochs=3
    (["milestones=[0]"], "milestones=0"),
    (["milestones=[2,1]"], "milestones=[2,1]"),
    (["milestones=[1.5]"], "milestones=1.5"),
    (["epochs=0"], "epochs=0"),
    (["epochs=-1"], "epochs=-1"),
    (["epochs=1.5"], "epochs=1.5"),
    (["epochs=abc"], "epochs=abc"),
    (["oe_size=1.5"], "oe_size=1.5"),
    (["oe_size=abc"], "oe_size=abc"),
    (["oe_size=0"], "oe_size=0"),
    (["oe_size=-3"], "oe_size=-3"),
    (["oe_size=100000"], "oe_size=100000"),
    (["method=deep_svdd", "oe_size=4"], "oe_size=4"),
    (["seed=-1"], "seed=-1"),
    (["seed=abc"], "seed=abc"),
    (["seed=1.5"], "seed=1.5"),
    (["batch_size=abc"], "batch_size=abc"),
    (["batch_size=1.5"], "batch_size=1.5"),
    (["batch_size=0"], "batch_size=0"),
    (["lr=-1"], "lr=-1"),
    (["lr=0"], "lr=0"),
    (["lr=abc"], "lr=abc"),
    (["threads=0"], "threads=0"),
    (["benchmark=xyz"], "benchmark=xyz"),
    (["epoch=3"], "'epoch' (did you mean 'epochs'?)"),
    (["normal_clas=1"], "'normal_clas' (did you mean 'normal_class'?)"),
    (["+epoch=3"], "'epoch' (did you mean 'epochs'?)"),
    (["+normal_clas=1"], "'normal_clas' (did you mean 'normal_class'?)"),
    (["checkpoint.every_n_epoch=1"], "'checkpoint.every_n_epoch' (did you mean 'checkpoint.every_n_epochs'?)"),
    (["+checkpoint.kep=true"], "'checkpoint.kep' (did you mean 'checkpoint.keep'?)"),
    (["+augmentation.paddin=2"], "'augmentation.paddin' (did you mean 'augmentation.padding'?)"),
    (["checkpoint.every_n_epochs=-1"], "checkpoint.every_n_epochs=-1"),
    (["checkpoint.keep=maybe"], "checkpoint.keep=maybe"),
    (["augmentation.padding=-1"], "augmentation.padding=-1"),
    (["augmentation.noise=abc"], "augmentation.noise=abc"),
    (["epochs=1", "epochs=0"], "epochs given twice"),
    (["seed=0", "seed=1"], "seed given twice"),
    (["oe.path=EMPTY"], "empty.npy"),
    (["oe.path=TEXT"], "text.npy: not a NumPy array"),
    (["oe.path=WRONG"], "wrong.npy"),
    (["oe.path=/no/such/pool.npy"], "/no/such/pool.npy"),
    (["data.root=/no/such/dir"], "data.root=/no/such/dir"),
    (["method=nope"], "unknown method 'nope'"),
    (["hydra.run.dir=elsewhere"], "hydra.run.dir"),
    (["hydra.sweep.dir=elsewhere"], "hydra.sweep.dir"),
    # issue 19: silently wrong before
    (["method=bce", "oe=none"], "method=bce needs OE but oe=none"),
    (["method=focal", "oe=none"], "method=focal needs OE but oe=none"),
    (["method=deep_sad", "oe=none"], "method=deep_sad needs OE but oe=none"),
    (["method=hsc", "oe=none"], "method=hsc needs OE but oe=none"),
    (["method=focal", "+method.gama=5.0"], "unknown key 'method.gama' (did you mean 'method.gamma'?)"),
    (["method=focal", "method.gama=5.0"], "unknown key 'method.gama' (did you mean 'method.gamma'?)"),
    (["+method.radiall=l1"], "unknown key 'method.radiall' (did you mean 'method.radial'?)"),
    (["+method.lr=0.1"], "method.lr=0.1: not a key of method: it is set by the top-level lr"),
    (["+net.out_dims=8"], "unknown key 'net.out_dims' (did you mean 'net.out_dim'?)"),
    (["+data.image_sise=8"], "unknown key 'data.image_sise' (did you mean 'data.image_size'?)"),
    (["+oe.paht=x"], "unknown key 'oe.paht' (did you mean 'oe.path'?)"),
    (
        ["+method.optimizer.weight_decy=1"],
        "'method.optimizer.weight_decy' (did you mean 'method.optimizer.weight_decay'?)",
    ),
    (["+trainer.max_epoch=3"], "'trainer.max_epoch' (did you mean 'trainer.max_epochs'?)"),
    # issue 19: a traceback or a misleading message before
    (["data.image_size=0"], "data.image_size=0: must be >= 1"),
    (["data.image_size=abc"], "data.image_size=abc"),
    (["data.root=???"], "data.root is not set: give it on the command line (data.root=PATH)"),
    (["oe.path=???"], "oe.path is not set: give it on the command line (oe.path=PATH)"),
    (["data.root=/tmp/dätä"], "a value with non-ASCII characters must be quoted for Hydra: data.root='/tmp/dätä'"),
    (["data.root='/no/such/dätä'"], "data.root=/no/such/dätä: no such folder"),  # quoted: read as it should be
    (["paths.output_dir=AFILE"], "is a file, not a folder"),
    (["name=AFILE_NAME"], "is a file, not a folder"),
    # folder layouts and a class's own anomalies as OE (docs/datasets.md)
    (["data.layout=flat"], "data.layout=flat: choose from auto, classes, normal_anomalous"),
    (["+data.layot=classes"], "unknown key 'data.layot' (did you mean 'data.layout'?)"),
    (["oe=anomalies", "oe.layout=flat"], "oe.layout=flat: choose from auto, normal_anomalous, mvtec"),
    (["oe=anomalies", "oe.normal_class=2"], "oe.normal_class=2: the OE is the job's own class's"),
    (["oe=anomalies", "+oe.normal_clas=1"], "unknown key 'oe.normal_clas' (did you mean 'oe.normal_class'?)"),
    (["data=cifar10", "data.download=maybe"], "data.download=maybe: not a boolean"),
    # the one-vs-rest benchmarks of the paper's code's other runners: refused before anything is downloaded
    (["data=mnist", "data.download=maybe"], "data.download=maybe: not a boolean"),
    (["data=fmnist", "normal_class=10"], "normal_class=10: must be <= 9"),
    (["data=dtd", "data.partition=11"], "data.partition=11: choose from 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"),
    (["data=dtd", "data.partition=true"], "data.partition=true: choose from"),
    (["data=cub200", "normal_class=200"], "normal_class=200: must be <= 199"),
    (["data=cub200", "+data.partition=1"], "unknown key 'data.partition'"),
    (["data=mnist", "oe=emnist", "oe.letters=z"], "oe.letters=z: choose from paper, all"),
    # the schedule: fractions of epochs or epochs, not both
    (["milestones=[0.5,2]"], "milestones=[0.5,2]: mixes fractions of epochs with epochs"),
    (["milestones=[0.75,0.5]"], "milestones=[0.75,0.5]: must be increasing"),
    (["milestones=[-0.5]"], "milestones=-0.5"),
    # your own network (nets/custom.py): its keys are typed by their annotations, its files must exist
    (["net=resnet18", "net.freeze=maybe"], "net.freeze=maybe: must be bool | list[str]"),
    (["net=resnet18", "net.head=3"], "net.head=3: not a boolean"),
    (["net=resnet18", "net.snapshot=/no/such.pt"], "net.snapshot=/no/such.pt: no such file"),
    (["net=resnet18", "+net.heads=true"], "unknown key 'net.heads' (did you mean 'net.head'?)"),
    (["net=custom"], "net.model._target_ is not set: give it on the command line"),
    (["net=resnet18", "net.out_dim=0"], "net.out_dim=0: must be >= 1"),
]
SEARCH_CASES = [
    (["search.direction=up"], "search.direction=up"),
    (["search.generation_size=0"], "search.generation_size=0"),
    (["search.mating=2"], "search.mating=2"),
    (["search.seeds=[]"], "search.seeds"),
    (["search.seeds=[a]"], "search.seeds=a"),
    (["search.generatoins=3"], "'search.generatoins' (did you mean 'search.generations'?)"),
    (["search.algorithm=genetic"], "search.algorithm=genetic: choose from evolution, random"),
    (["method=deep_svdd"], "method=deep_svdd trains without OE: a search for single OE images needs an OE method"),
    (["method=hsc", "oe=none"], "method=hsc needs OE but oe=none"),
    (["data.root=???"], "data.root is not set: give it on the command line (data.root=PATH)"),
    (["+method.gama=1"], "unknown key 'method.gama'"),
    (["+search.generatoins=3"], "'search.generatoins' (did you mean 'search.generations'?)"),
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    files = {"EMPTY": root / "empty.npy", "TEXT": root / "text.npy", "WRONG": root / "wrong.npy"}
    np.save(files["EMPTY"], np.zeros((0, 32, 32, 3), np.uint8))
    files["TEXT"].write_text("these are not images\n")
    np.save(files["WRONG"], np.zeros((3, 32, 32), np.float32))
    files["AFILE"] = root / "a-file"  # where an output folder is expected
    files["AFILE"].write_text("not a folder\n")
    return files


def _node_keys(args: list[str]) -> set[str]:
    """The keys a case sets; a group choice (``oe=none``) also replaces the keys inside its node."""
    keys = {a.lstrip("+~").partition("=")[0] for a in args}
    return keys | {f"{k}." for k in keys if k in GROUPS}


def _substitute(args: list[str], files: dict[str, Path]) -> list[str]:
    out = []
    for a in args:
        key, sep, value = a.partition("=")
        if value == "AFILE_NAME":  # name=<a file's name>, with paths.output_dir its folder
            out += [f"{key}={files['AFILE'].name}", f"paths.output_dir={files['AFILE'].parent}"]
            continue
        out.append(f"{key}={files[value]}" if sep and value in files else a)
    return out


def call_main(main, argv: list[str], monkeypatch, capsys) -> tuple[int, list[str]]:
    """Run an entry point in this process; (exit code, the ``error:`` lines of stderr)."""
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["oe_ad", *argv])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.startswith("error:")]


def assert_rejected(code: int, errors: list[str], expected: str, out: Path) -> None:
    """Exit code 2, one ``error:`` line with ``expected`` in it, and nothing at all written under ``out`` (no
    record, and no job folder with Hydra's ``.hydra/`` and an empty log either)."""
    assert code == 2, errors
    assert len(errors) == 1 and expected in errors[0], errors
    assert sorted(out.rglob("*")) == []


def _without(base: list[str], case: list[str]) -> list[str]:
    keys = _node_keys(case)
    key = lambda a: a.lstrip("+~").partition("=")[0]  # noqa: E731
    return [a for a in base if not any(key(a) == k or (k.endswith(".") and key(a).startswith(k)) for k in keys)]


@pytest.mark.parametrize("args, expected", RUN_CASES, ids=[" ".join(a) for a, _ in RUN_CASES])
def test_run_rejects(args, expected, folder_root, oe_npy, bad_files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    case = _substitute(args, bad_files)
    argv = _without(merged([*tiny_overrides(folder_root, oe_npy, out), "method=hsc"]), case) + case
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(run.main, argv, monkeypatch, capsys)
    assert_rejected(code, errors, expected, tmp_path)


@pytest.mark.parametrize("args, expected", SEARCH_CASES, ids=[" ".join(a) for a, _ in SEARCH_CASES])
def test_search_rejects(args, expected, folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    argv = _without(merged([*tiny_overrides(folder_root, oe_npy, out), "method=hsc"]), args) + args
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(search_main.main, argv, monkeypatch, capsys)
    assert_rejected(code, errors, expected, tmp_path)


# -- predict -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nan_model(tmp_path_factory, folder_root, oe_npy) -> Path:
    """A model.pt whose weights are NaN (what a diverged run would leave)."""
    from oe_ad.config.factory import build_method

    out = tmp_path_factory.mktemp("nan")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*tiny_overrides(folder_root, oe_npy, out), "method=hsc"])
    method = build_method(cfg)
    with torch.no_grad():
        for p in method.parameters():
            p.fill_(float("nan"))
    prep = {"mean": [0.5] * 3, "std": [0.25] * 3, "image_size": 32, "input_size": 32}
    path = out / "model.pt"
    save_model(path, method, OmegaConf.to_container(cfg, resolve=True), prep, {"normal_names": ["class0"]})
    return path


PREDICT_CASES = [  # (positional replacements by name, extra options, expected text of the error)
    ({}, ["--batch-size", "0"], "--batch-size 0"),
    ({}, ["--batch-size", "abc"], "'abc'"),
    ({"output": "OUTDIR"}, [], "is a directory"),
    ({"input": "TEXT"}, [], "text.npy: not a NumPy array"),
    ({"checkpoint": "/no/such/model.pt"}, [], "/no/such/model.pt"),
    ({}, [], "as NaN"),  # the model scores NaN: an error, not rows labelled 'normal'
    ({}, ["--bogus", "1"], "--bogus"),
]


@pytest.mark.parametrize(
    "replace, extra, expected", PREDICT_CASES, ids=[" ".join([*r.values(), *x]) or "nan" for r, x, _ in PREDICT_CASES]
)
def test_predict_rejects(replace, extra, expected, nan_model, folder_root, bad_files, tmp_path, monkeypatch, capsys):
    files = {**bad_files, "OUTDIR": tmp_path}
    opts = {"checkpoint": str(nan_model), "input": str(folder_root / "test"), "output": str(tmp_path / "s.csv")}
    opts.update({k: str(files.get(v, v)) for k, v in replace.items()})
    argv = [opts["checkpoint"], opts["input"], "-o", opts["output"], "--threshold", "0.5", *extra]
    with pytest.raises(SystemExit) as e:
        predict.main(argv)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert e.value.code == 2 and len(errors) == 1 and expected in errors[0], errors
    assert not (tmp_path / "s.csv").exists()


def test_predict_says_when_it_creates_the_output_folder(trained_model, folder_root, tmp_path, capsys):
    target = tmp_path / "new" / "deeper" / "scores.csv"
    predict.main([str(trained_model), str(folder_root / "test"), "-o", str(target)])
    assert target.exists() and f"created the folder {target.parent}" in capsys.readouterr().out


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, folder_root, oe_npy) -> Path:
    from oe_ad.job.lightning import run_job

    out = tmp_path_factory.mktemp("model")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config", overrides=[*tiny_overrides(folder_root, oe_npy, out), "method=hsc", "epochs=1", "milestones=[]"]
        )
    run_job(cfg, out / "job")
    return out / "job" / "model.pt"


# -- values that are fine are normalised, not kept as text ----------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [("no", False), ("OFF", False), ("0", False), ("false", False), ("Yes", True), ("on", True), ("1", True)],
)
def test_booleans_are_normalised_before_they_reach_the_record(value, expected, make_cfg):
    cfg = validate_config(make_cfg(f"augment={value}"))
    assert cfg.augment is expected


def test_the_count_of_bad_inputs_covers_the_issue():
    assert len(RUN_CASES) + len(SEARCH_CASES) + len(PREDICT_CASES) >= 40


# -- keys of a method from a config folder of one's own (--config-dir) ----------------------------------------
FOCAL_YAML = """name: {name}
_target_: oe_ad.methods.focal.Focal
{gamma}
optimizer:
  _target_: torch.optim.Adam
  _partial_: true
"""


@pytest.mark.parametrize(
    "yaml_gamma, extra, folder_flag",
    [
        ("gama: 5.0", [], "--config-dir"),
        ("gama: 5.0", [], "hydra.searchpath"),
        ("gamma: 2.0", ["method.gama=2"], "--config-dir"),
        ("gamma: 2.0", ["+method.gama=2"], "--config-dir"),
    ],
    ids=["misspelt in the file", "misspelt in the file, searchpath", "misspelt on the command line", "added"],
)
def test_unknown_method_keys_are_refused_whatever_route_they_came_by(
    yaml_gamma, extra, folder_flag, folder_root, oe_npy, tmp_path, monkeypatch, capsys
):
    conf = tmp_path / "my_conf" / "method"
    conf.mkdir(parents=True)
    (conf / "myfocal.yaml").write_text(FOCAL_YAML.format(name="myfocal", gamma=yaml_gamma))
    folder = tmp_path / "my_conf"
    flag = ["--config-dir", str(folder)] if folder_flag == "--config-dir" else [f"hydra.searchpath=[file://{folder}]"]
    argv = [*flag, *tiny_overrides(folder_root, oe_npy, tmp_path / "runs")]
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(run.main, [*argv, "method=myfocal", *extra], monkeypatch, capsys)
    assert_rejected(code, errors, "unknown key 'method.gama' (did you mean 'method.gamma'?)", tmp_path / "runs")


def test_a_python_caller_gets_a_type_error_for_an_unknown_method_key():
    from oe_ad.methods.focal import Focal
    from oe_ad.nets.cnn32 import CNN32

    with pytest.raises(TypeError, match="gama"):
        Focal(CNN32(), optimizer=torch.optim.Adam, gama=5.0)


# -- the machine: a GPU asked for, an output folder that cannot be written ------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_a_gpu_asked_for_on_a_machine_without_one(folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    argv = [*tiny_overrides(folder_root, oe_npy, tmp_path / "runs"), "method=hsc", "trainer.accelerator=gpu"]
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(run.main, argv, monkeypatch, capsys)
    assert_rejected(code, errors, "trainer.accelerator=gpu: no GPU is visible", tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder(folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    argv = [*merged([*tiny_overrides(folder_root, oe_npy, ro / "runs"), "method=hsc"])]
    monkeypatch.chdir(tmp_path)
    try:
        code, errors = call_main(run.main, argv, monkeypatch, capsys)
    finally:
        ro.chmod(0o755)
    assert_rejected(code, errors, f"paths.output_dir={ro / 'runs'}: cannot write in {ro}", ro)


@pytest.mark.parametrize("multirun", [False, True], ids=["single", "sweep"])
def test_an_output_folder_that_refuses_writes(multirun, folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    """What a read-only mount does (as root too): creating anything in the folder fails."""
    from oe_ad.config import schema

    ro = tmp_path / "ro"
    ro.mkdir()

    def refuse(*args, dir=None, **kwargs):
        if Path(dir) == ro:
            raise PermissionError(13, "Read-only file system")
        return tempfile_mkdtemp(*args, dir=dir, **kwargs)

    tempfile_mkdtemp = schema.tempfile.mkdtemp
    monkeypatch.setattr(schema.tempfile, "mkdtemp", refuse)
    monkeypatch.setattr(schema, "_checked_dirs", set())
    argv = [*merged([*tiny_overrides(folder_root, oe_npy, ro / "runs"), "method=hsc"])]
    argv = ["-m", *argv, "seed=0,1"] if multirun else argv
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(run.main, argv, monkeypatch, capsys)
    assert_rejected(code, errors, f"paths.output_dir={ro / 'runs'}: cannot write in {ro} (Read-only file system)", ro)


@pytest.mark.parametrize(
    "option, expected",
    [
        ("hydra.launcher.conv=fast", "hydra.launcher.conv=fast: must be one of auto, split, grouped"),
        ("hydra.launcher.max_models=0", "hydra.launcher.max_models=0: must be at least 1"),
    ],
)
def test_a_bad_vectorised_launcher_option(option, expected, folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    argv = ["-m", *tiny_overrides(folder_root, oe_npy, out), "launcher=vectorised", option, "seed=0,1"]
    code, errors = call_main(run.main, argv, monkeypatch, capsys)
    assert_rejected(code, errors, expected, out)


# -- sweeps: every job refused -> exit 2 and nothing left; some refused -> exit 1 ------------------------------
def _sweep_leftovers(out: Path) -> list[str]:
    """What a sweep left besides Hydra's multirun.yaml: job folders, records, errors."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name != "multirun.yaml" and p != out / "sweep")


@pytest.mark.parametrize("launcher", ["local", "vectorised"])
def test_a_sweep_whose_jobs_are_all_refused_exits_2_and_leaves_no_job_folder(
    launcher, folder_root, oe_npy, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "runs"
    base = _without(merged([*tiny_overrides(folder_root, oe_npy, out), "name=sweep"]), ["oe=none"])
    argv = ["-m", *base, f"launcher={launcher}", "method=bce", "oe=none", "normal_class=0", "seed=0,1"]
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(run.main, argv, monkeypatch, capsys)
    assert code == 2, errors
    assert len(errors) == 2 and all("method=bce needs OE but oe=none" in e for e in errors), errors
    assert _sweep_leftovers(out) == []


def test_a_sweep_with_some_refused_jobs_exits_1_and_keeps_only_the_finished_ones(
    folder_root, oe_npy, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "runs"
    base = merged([*tiny_overrides(folder_root, oe_npy, out), "method=hsc", "epochs=1", "milestones=[]", "name=sweep"])
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(run.main, ["-m", *base, "normal_class=0,7", "seed=0"], monkeypatch, capsys)
    assert code == 1, errors
    assert len(errors) == 1 and "normal_class=7: must be <= 2" in errors[0], errors
    (record,) = out.rglob("result.json")
    assert json.loads(record.read_text())["normal_class"] == 0
    assert not [p for p in out.rglob("*") if "normal_class=7" in str(p)]  # the refused job's folder is gone


# -- divergence: a wrong number must not be recorded ------------------------------------------------------------
def _diverging_run(launcher: str, folder_root, oe_npy, tmp_path, monkeypatch, capsys) -> tuple[int, list[str]]:
    out = tmp_path / "runs"
    base = merged([*tiny_overrides(folder_root, oe_npy, out), "method=bce", "epochs=2", "milestones=[]", "lr=1e30"])
    argv = ["-m", *base, "launcher=vectorised", "normal_class=0", "seed=0,1"] if launcher == "vectorised" else base
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(run.main, argv, monkeypatch, capsys)
    assert not list(out.rglob("result.json")) and not list(out.rglob("model.pt"))
    return code, errors


def test_a_diverged_single_job_is_one_error_and_no_record(folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    code, errors = _diverging_run("local", folder_root, oe_npy, tmp_path, monkeypatch, capsys)
    assert code == 2 and len(errors) == 1 and "training diverged" in errors[0], errors


def test_diverged_vectorised_members_are_errors_not_records(folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    code, errors = _diverging_run("vectorised", folder_root, oe_npy, tmp_path, monkeypatch, capsys)
    assert code == 2 and len(errors) == 2 and all("training diverged" in e for e in errors), errors


# -- the entrance: one composition and one validation per job ------------------------------------------------------
def test_a_job_is_composed_once_and_validated_once(folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    """Hydra composes the job's config once (no composition of ours before it) and the schema's one validation
    runs once (Hydra's callback before the folder exists; the task does not validate again), single or swept.
    (Hydra 1.3's ``hydra.main`` also composes the config once, in multirun mode, to read ``hydra.mode`` before it
    runs anything (``Hydra.get_mode``): a probe of Hydra's own, not counted.)"""
    from hydra._internal.hydra import Hydra
    from hydra.types import RunMode

    from oe_ad.config import schema

    compositions, validations = [], []
    compose, declared = Hydra.compose_config, schema._declared

    def counted(self, *args, **kwargs):
        if kwargs.get("run_mode") == RunMode.RUN:  # the job's composition (the mode probe composes as MULTIRUN)
            compositions.append(kwargs.get("config_name"))
        return compose(self, *args, **kwargs)

    monkeypatch.setattr(Hydra, "compose_config", counted)

    def counted_validation(kind, node, prefix=""):  # validate_config's check of the declarations, once per call
        if kind is schema.Job:
            validations.append(1)
        return declared(kind, node, prefix)

    monkeypatch.setattr(schema, "_declared", counted_validation)
    argv = merged([*tiny_overrides(folder_root, oe_npy, tmp_path / "runs"), "method=hsc", "epochs=1", "milestones=[]"])
    code, errors = call_main(run.main, argv, monkeypatch, capsys)
    assert code == 0 and errors == [] and list((tmp_path / "runs").rglob("result.json"))
    assert (len(compositions), len(validations)) == (1, 1)
    validations.clear()
    sweep = ["-m", *argv, "launcher=vectorised", "normal_class=0", "seed=1,2", "name=v"]
    code, errors = call_main(run.main, sweep, monkeypatch, capsys)
    assert (code, errors, len(validations)) == (0, [], 2)  # once per job of the sweep

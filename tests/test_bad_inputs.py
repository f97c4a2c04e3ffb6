"""Bad inputs a careful user tries: each is one ``error:`` line naming the key or file, exit code 2, no record.

The command lines run in this process (the Hydra app's ``main`` with a patched ``sys.argv``): a subprocess per
case would cost seconds each. The tiny data of ``conftest.py`` (3 classes, 64 OE images, epochs=3, milestones=[2]).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from conftest import merged, tiny_overrides
from oe_ad import predict, run
from oe_ad.checkpointing import save_model
from oe_ad.config import CONF_DIR
from oe_ad.schema import validate_config
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
]
SEARCH_CASES = [
    (["search.direction=up"], "search.direction=up"),
    (["search.generation_size=0"], "search.generation_size=0"),
    (["search.mating=2"], "search.mating=2"),
    (["search.seeds=[]"], "search.seeds"),
    (["search.seeds=[a]"], "search.seeds=a"),
    (["search.generatoins=3"], "'search.generatoins' (did you mean 'search.generations'?)"),
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    files = {"EMPTY": root / "empty.npy", "TEXT": root / "text.npy", "WRONG": root / "wrong.npy"}
    np.save(files["EMPTY"], np.zeros((0, 32, 32, 3), np.uint8))
    files["TEXT"].write_text("these are not images\n")
    np.save(files["WRONG"], np.zeros((3, 32, 32), np.float32))
    return files


def _substitute(args: list[str], files: dict[str, Path]) -> list[str]:
    out = []
    for a in args:
        key, sep, value = a.partition("=")
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
    assert code == 2, errors
    assert len(errors) == 1 and expected in errors[0], errors
    written = [p for p in out.rglob("*") if p.name in ("result.json", "model.pt", "last.ckpt")]
    assert written == []


@pytest.mark.parametrize("args, expected", RUN_CASES, ids=[" ".join(a) for a, _ in RUN_CASES])
def test_run_rejects(args, expected, folder_root, oe_npy, bad_files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    case = _substitute(args, bad_files)
    keys = {a.lstrip("+~").partition("=")[0] for a in case}
    argv = [*merged([*tiny_overrides(folder_root, oe_npy, out), "method=hsc"])]
    argv = [a for a in argv if a.partition("=")[0] not in keys] + case  # the case's own keys, as given
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(run.main, argv, monkeypatch, capsys)
    assert_rejected(code, errors, expected, tmp_path)


@pytest.mark.parametrize("args, expected", SEARCH_CASES, ids=[" ".join(a) for a, _ in SEARCH_CASES])
def test_search_rejects(args, expected, folder_root, oe_npy, tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    argv = [*tiny_overrides(folder_root, oe_npy, out), "method=hsc", *args]
    monkeypatch.chdir(tmp_path)
    code, errors = call_main(search_main.main, argv, monkeypatch, capsys)
    assert_rejected(code, errors, expected, tmp_path)


# -- predict -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nan_model(tmp_path_factory, folder_root, oe_npy) -> Path:
    """A model.pt whose weights are NaN (what a diverged run would leave)."""
    from oe_ad.factory import build_method

    out = tmp_path_factory.mktemp("nan")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*tiny_overrides(folder_root, oe_npy, out), "method=hsc"])
    method = build_method(cfg)
    with torch.no_grad():
        for p in method.parameters():
            p.fill_(float("nan"))
    prep = {"mean": [0.5] * 3, "std": [0.25] * 3, "image_size": 32, "input_size": 32}
    path = out / "model.pt"
    save_model(path, method, run.OmegaConf.to_container(cfg, resolve=True), prep, {"normal_names": ["class0"]})
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
    from oe_ad.lightning_fitter import run_job

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

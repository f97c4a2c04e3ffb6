"""Vectorised training: model m of a stack reproduces the single job with the same config (run_job)."""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from conftest import tiny_overrides
from oe_ad.config import CONF_DIR
from oe_ad.config.factory import SourceCache, validate
from oe_ad.data.pools import NpyPool
from oe_ad.errors import OEADError
from oe_ad.job.checkpoint import MODEL_FILE
from oe_ad.job.lightning import run_job
from oe_ad.job.loop import JobSpec
from oe_ad.job.records import RECORD_NAME
from oe_ad.methods.base import AnomalyDetector
from oe_ad.methods.bce import BCE
from oe_ad.methods.hsc import HSC
from oe_ad.nets.cnn32 import CNN32
from oe_ad.predict import predict
from oe_ad.vectorised.fitness import VectorisedFitness
from oe_ad.vectorised.grouping import group
from oe_ad.vectorised.launcher import train_jobs
from oe_ad.vectorised.memory import GIB, chunks, models_per_step, step_bytes
from oe_ad.vectorised.objectives import objective
from oe_ad.vectorised.probe import CACHE_FILE, choose
from oe_ad.vectorised.stacked import StackedCNN32
from oe_ad.vectorised.trainer import StackFitter, steps
from test_cli import run_cli

CPU = torch.device("cpu")
# Models with different seeds, normal classes and OE sizes: one stack.
MODELS = [
    ("seed=0", "normal_class=0", "oe_size=1"),
    ("seed=1", "normal_class=1", "oe_size=4"),
    ("seed=2", "normal_class=2", "oe_size=null"),
]


def single_methods(cls, seeds, bias: bool = True) -> list:
    out = []
    for s in seeds:
        pl.seed_everything(s, verbose=False)
        out.append(cls(CNN32(out_dim=16, bias=bias), optimizer=torch.optim.Adam))
    return out


def stacked_and_single_step(conv: str, bias: bool, dtype: torch.dtype):
    """One forward/backward of 3 BCE models as a stack and one by one, in ``dtype``, from the same weights and
    inputs: (stack, single methods, stacked logits, single logits)."""
    methods = single_methods(BCE, [0, 1, 2], bias)
    net = StackedCNN32(3, 16, head=True, conv=conv, bias=bias)
    for i, m in enumerate(methods):
        net.load_model(i, m)
    x = torch.randn(3, 8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net, x = net.to(dtype), x.to(dtype)
    for m in methods:
        m.to(dtype)
    is_normal = torch.arange(8) < 4
    out = net(x)
    objective(methods).loss(out, is_normal).sum().backward()
    singles = []
    for i, m in enumerate(methods):
        singles.append(m(x[i]))
        m.loss(singles[-1], is_normal).backward()
    return net, methods, out.detach(), torch.stack(singles).detach()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("conv", ["grouped", "split"])
def test_stacked_gradients_and_batchnorm_equal_single_models_in_float64(conv, bias):
    """The stack computes exactly the single models' function: in float64, outputs, every gradient (weights, biases,
    BatchNorm scales) and the updated running statistics agree to rounding (measured: 1e-16 absolute)."""
    net, methods, out, singles = stacked_and_single_step(conv, bias, torch.float64)
    torch.testing.assert_close(out, singles, rtol=1e-10, atol=1e-12)
    for i, m in enumerate(methods):
        torch.testing.assert_close(net.fc1.grad[i], m.net.fc1.weight.grad, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(
            net.convs[0].grad[i * 32 : (i + 1) * 32], m.net.convs[0].weight.grad, rtol=1e-9, atol=1e-12
        )
        if bias:  # the biases and BatchNorm scales get their own model's gradient too
            torch.testing.assert_close(net.fc1_bias.grad[i], m.net.fc1.bias.grad, rtol=1e-9, atol=1e-12)
            bn_grad = net.bn_weights[0].grad[i * 32 : (i + 1) * 32]
            torch.testing.assert_close(bn_grad, m.net.bns[0].weight.grad, rtol=1e-9, atol=1e-12)
        copy = single_methods(BCE, [9], bias)[0].to(torch.float64)
        net.export_model(i, copy)  # weights and the running statistics this step updated
        for key, value in m.state_dict().items():
            if "num_batches" not in key:
                torch.testing.assert_close(copy.state_dict()[key], value, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("conv", ["grouped", "split"])
def test_stacked_float32_outputs_stay_within_float32_rounding_of_the_float64_function(conv):
    """float32 can differ from the single model by more than rounding only through a kink. Seen on an AMD EPYC with
    the inputs an earlier version of this test drew: one BatchNorm1d output of model 0 was 1.3e-6 in float64 and
    4.5e-7 in float32; the grouped convolution's other summation order (oneDNN) made it negative, so its leaky ReLU
    slope was 0.01 instead of 1 and one row of fc1's gradient differed by 0.013, while in float64 the same step's
    gradients agreed to 1e-16. So gradients are compared in float64 (test above), and in float32 the outputs
    (continuous in the weights) must stay within a few times the single model's own float32 error against the
    float64 function, whatever the CPU."""
    *_, out64, single64 = stacked_and_single_step(conv, True, torch.float64)
    *_, out32, single32 = stacked_and_single_step(conv, True, torch.float32)
    torch.testing.assert_close(out64, single64, rtol=1e-10, atol=1e-12)
    single_error = (single32.double() - single64).abs().max().item()
    stacked_error = (out32.double() - out64).abs().max().item()
    # 8x: the stack rounds in another order than the single model; a float32 error bound grows with the number of
    # summed terms (2400 per conv output), not with the order, so a constant factor covers any correct order.
    assert stacked_error <= 8 * single_error + 1e-6, (stacked_error, single_error)


def test_objective_maps_the_single_loss_over_models():
    methods = single_methods(HSC, [0, 1])
    out, is_normal = torch.randn(2, 6, 16), torch.tensor([True] * 3 + [False] * 3)
    batched = objective(methods)
    torch.testing.assert_close(batched.loss(out, is_normal), torch.stack([methods[0].loss(o, is_normal) for o in out]))
    torch.testing.assert_close(batched.score(out), torch.stack([methods[0].score(o) for o in out]))


def single_runs(make_cfg, tmp_path, monkeypatch, method, epochs, models) -> list[tuple[dict, list[float]]]:
    """run_job for each model, with the loss of every training step recorded."""
    losses: list[float] = []
    original = AnomalyDetector.training_step

    def recording(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        losses.append(loss.item())
        return loss

    monkeypatch.setattr(AnomalyDetector, "training_step", recording)
    runs = []
    for i, overrides in enumerate(models):
        losses.clear()
        record = run_job(make_cfg(f"method={method}", f"epochs={epochs}", *overrides), tmp_path / f"single{i}")
        runs.append((record, list(losses)))
    monkeypatch.undo()
    return runs


def check_equivalence(make_cfg, tmp_path, monkeypatch, method: str, epochs: int, models=MODELS) -> None:
    if get_class(make_cfg(f"method={method}").method._target_).oe_use == "none":  # one-class: no OE size
        models = [tuple(o for o in m if not o.startswith("oe_size")) for m in models]
    singles = single_runs(make_cfg, tmp_path, monkeypatch, method, epochs, models)
    specs = [JobSpec(make_cfg(f"method={method}", f"epochs={epochs}", *o)) for o in models]
    for spec in specs:
        validate(spec.cfg)
    trained = list(StackFitter(SourceCache(CPU), max_models=len(specs), conv="split").fit_and_test(specs))
    assert [t[0] for t in trained] == specs  # one stack, in input order
    for (record, losses), (_, member, outcome) in zip(singles, trained):
        oe = member.datamodule.oe_indices
        assert record["oe_indices"] == (None if oe is None else oe.tolist())
        assert len(outcome.losses) == len(losses) == epochs * steps(member)
        torch.testing.assert_close(torch.tensor(outcome.losses), torch.tensor(losses), rtol=1e-4, atol=1e-5)
        assert abs(outcome.test_auroc - record["test_auroc"]) <= 1e-3  # 0.1 AUC points
        if record["train_auroc"] is not None:
            assert abs(outcome.train_auroc - record["train_auroc"]) <= 1e-3


def test_stack_matches_single_runs(make_cfg, tmp_path, monkeypatch):
    check_equivalence(make_cfg, tmp_path, monkeypatch, "bce", epochs=4, models=MODELS[1:])


def stackable_methods() -> list[str]:
    """Every method of the package on a CNN32 (the network a stack holds), read from its configs."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        names = sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml"))
        return [n for n in names if compose("config", overrides=[f"method={n}"]).net._target_.endswith(".CNN32")]


@pytest.mark.slow
@pytest.mark.parametrize("method", stackable_methods())
def test_stack_matches_single_runs_over_hundreds_of_steps(method, make_cfg, tmp_path, monkeypatch):
    check_equivalence(make_cfg, tmp_path, monkeypatch, method, epochs=150)  # 300 steps


def test_memory_planner_chunks_and_refuses_a_model_that_does_not_fit():
    per_model = step_bytes(256)
    assert 100 * 2**20 < per_model < GIB  # CNN32 at 128 + 128 images: a few hundred MiB
    assert step_bytes(512) > per_model
    assert models_per_step(per_model, CPU, fraction=1.0, free=10 * per_model + 1) == 10
    assert models_per_step(per_model, CPU, fraction=0.5, free=10 * per_model) == 5
    with pytest.raises(OEADError, match="one model needs .* GiB"):
        models_per_step(per_model, CPU, free=per_model // 2)
    assert [len(r) for r in chunks(10, 4)] == [4, 3, 3]
    assert [list(r) for r in chunks(3, 64)] == [[0, 1, 2]]


def test_jobs_group_when_they_differ_only_in_seed_class_or_oe_size(make_cfg):
    cfgs = [make_cfg(*o) for o in MODELS] + [make_cfg("lr=0.01"), make_cfg("method=hsc", "seed=3")]
    assert group(cfgs) == [[0, 1, 2], [3], [4]]


def test_launcher_writes_the_job_folders_a_single_job_writes_and_skips_finished_ones(make_cfg, oe_npy, tmp_path):
    cfgs = [make_cfg("method=hsc", "epochs=2", *o) for o in MODELS[:2]]
    dirs = [tmp_path / "vec0", tmp_path / "vec1"]
    results = train_jobs(cfgs, dirs, device="cpu")
    # another experiment (name is not part of the hash), else the single run would reuse the stack's record
    single = run_job(make_cfg("method=hsc", "epochs=2", *MODELS[1], "name=solo"), tmp_path / "single")
    record = results[1]
    assert json.loads((dirs[1] / RECORD_NAME).read_text()) == record
    assert record.keys() == single.keys()
    for key in ("config_hash", "oe_indices", "normalisation", "class_name", "seed", "oe_count"):
        assert record[key] == single[key], key
    assert {**record["config"], "name": "solo"} == single["config"]
    assert abs(record["test_auroc"] - single["test_auroc"]) <= 1e-3
    # model.pt: the trained member, usable by predict like a single job's
    vec_scores = [s for _, s in predict(dirs[1] / MODEL_FILE, oe_npy)]
    single_scores = [s for _, s in predict(tmp_path / "single" / MODEL_FILE, oe_npy)]
    np.testing.assert_allclose(vec_scores, single_scores, rtol=1e-3, atol=1e-4)
    again = train_jobs([cfgs[0], make_cfg("normal_class=7")], [dirs[0], tmp_path / "vec2"], device="cpu")
    assert again[0] == results[0]  # finished: reused, not retrained
    assert "normal_class=7" in again[1].message  # a bad job fails alone, with its one-line error
    other = train_jobs([make_cfg("method=hsc", "epochs=1", "milestones=[]")], dirs[:1], device="cpu")
    assert "record of another config" in other[0].message  # the same claim rule as a single job


def test_fitness_is_the_mean_single_oe_auc_over_seeds_and_is_cached(make_cfg, oe_npy, tmp_path):
    cfg = make_cfg("method=bce", "epochs=2", "normal_class=1")
    fitness = VectorisedFitness(cfg, seeds=[0, 1], device="cpu")
    values = fitness([5, 5])
    assert fitness.models_trained == 2 and values[0] == values[1] and 0 <= values[0] <= 1
    assert fitness([5]) == values[:1] and fitness.models_trained == 2  # cached, not retrained
    # The same model as a single job whose whole OE pool is image 5.
    one = tmp_path / "one.npy"
    np.save(one, np.load(oe_npy)[[5]])
    aucs = [
        run_job(make_cfg("method=bce", "epochs=2", "normal_class=1", f"oe.path={one}", f"seed={s}"), tmp_path / str(s))[
            "test_auroc"
        ]
        for s in (0, 1)
    ]
    assert abs(values[0] - np.mean(aucs)) <= 1e-3


@pytest.mark.slow
def test_vectorised_multirun_writes_the_same_job_folders_and_records(folder_root, oe_npy, tmp_path):
    args = [*tiny_overrides(folder_root, oe_npy, tmp_path), "epochs=2", "seed=0,1", "normal_class=0,2", "oe_size=2"]
    for name, extra in (("basic", []), ("vec", ["launcher=vectorised"])):
        proc = run_cli("-m", f"name={name}", *extra, *args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    basic = {
        p.parent.relative_to(tmp_path / "basic"): json.loads(p.read_text())
        for p in (tmp_path / "basic").rglob("result.json")
    }
    vec = {
        p.parent.relative_to(tmp_path / "vec"): json.loads(p.read_text())
        for p in (tmp_path / "vec").rglob("result.json")
    }
    assert len(basic) == 4 and basic.keys() == vec.keys()
    for key, record in basic.items():
        assert vec[key]["config_hash"] == record["config_hash"]
        assert abs(vec[key]["test_auroc"] - record["test_auroc"]) <= 1e-3


def test_search_fitness_vectorised_equals_sequential(folder_root, oe_npy, tmp_path):
    """`search/fitness=vectorised` plugs into the search and gives the sequential fitness's AUCs (CPU)."""
    from oe_ad.data.pools import NpyPool
    from oe_ad.search.fitness import make_fitness
    from test_search import search_cfg

    pool = NpyPool(str(oe_npy))
    seq = make_fitness(search_cfg(folder_root, oe_npy, tmp_path, "search.seeds=[0,1]", "batch_size=8"), pool)
    vec = make_fitness(
        search_cfg(folder_root, oe_npy, tmp_path, "search.seeds=[0,1]", "batch_size=8", "search/fitness=vectorised"),
        pool,
    )
    expected = seq([3, 7])
    assert vec([3, 7]) == pytest.approx(expected, abs=1e-3)


TOY_CONF = Path(__file__).parent / "toy_conf"


def test_a_method_added_outside_the_package_runs_single_vectorised_and_in_the_search(
    make_cfg, folder_root, oe_npy, tmp_path
):
    """One Python file + one YAML in a config directory of its own: every path picks the method up."""
    from oe_ad.search.fitness import make_fitness
    from test_search import search_cfg

    toy = (f"hydra.searchpath=[file://{TOY_CONF}]", "method=toy", "epochs=2")
    cfgs = [make_cfg(*toy, *o) for o in MODELS[1:]]
    singles = [run_job(cfg, tmp_path / f"single{i}") for i, cfg in enumerate(cfgs)]
    assert {r["method"] for r in singles} == {"toy"}
    vec = train_jobs(cfgs, [tmp_path / "vec0", tmp_path / "vec1"], device="cpu")
    for record, single in zip(vec, singles):
        assert record["config_hash"] == single["config_hash"]
        assert abs(record["test_auroc"] - single["test_auroc"]) <= 1e-3
    search = [
        search_cfg(folder_root, oe_npy, tmp_path, *toy, f"search/fitness={f}") for f in ("sequential", "vectorised")
    ]
    pool = NpyPool(str(oe_npy))
    seq, vectorised = (make_fitness(cfg, pool) for cfg in search)
    assert vectorised([3]) == pytest.approx(seq([3]), abs=1e-3)


@pytest.mark.slow
def test_the_toy_method_runs_from_the_command_line_single_and_vectorised(folder_root, oe_npy, tmp_path):
    args = [*tiny_overrides(folder_root, oe_npy, tmp_path), f"hydra.searchpath=[file://{TOY_CONF}]", "method=toy"]
    env = {"PYTHONPATH": f"{Path(__file__).parents[1] / 'src'}{os.pathsep}{Path(__file__).parent}"}
    for name, extra in (("basic", []), ("vec", ["launcher=vectorised"])):
        line = [*args, "epochs=1", "milestones=[]", "seed=0", "normal_class=0,1"]
        proc = run_cli("-m", f"name={name}", *extra, *line, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("basic", "vec"):
        recs = list((tmp_path / name).rglob(RECORD_NAME))
        assert len(recs) == 2 and all(json.loads(p.read_text())["method"] == "toy" for p in recs)
        assert all((p.parent / MODEL_FILE).exists() for p in recs)


# -- the stack size and mode: measured, never changing a member's numbers ----------------------------------------
class Timings:
    """A stand-in for ``time_stack``: seconds per fused step by (models, mode), with the calls it answered."""

    def __init__(self, seconds) -> None:
        self.seconds, self.calls = seconds, []

    def __call__(self, models: int, conv: str) -> float:
        self.calls.append((models, conv))
        return self.seconds(models, conv)


def test_the_probe_keeps_stacks_of_one_where_stacking_does_not_pay(tmp_path):
    cpu = Timings(lambda m, conv: m * (1.0 if conv == "split" else 1.6))  # a stack costs what its models cost
    choice = choose(cpu, "cpu-like", bound=64, cache_dir=tmp_path)
    assert (choice.models, choice.conv) == (1, "split") and not choice.cached
    assert cpu.calls == [(1, "split"), (2, "split"), (2, "grouped")]  # 2 did not pay: 4 is not tried
    assert "stacking does not pay" in choice.describe("cpu", 64)


def test_the_probe_takes_the_largest_stack_that_still_pays_in_the_faster_mode(tmp_path):
    gpu = Timings(lambda m, conv: max(1.0, 0.1 * m) if conv == "grouped" else 0.9 * m)  # launch-bound up to 10
    choice = choose(gpu, "gpu-like", bound=64, cache_dir=tmp_path)
    assert (choice.models, choice.conv) == (16, "grouped")  # 0.1 s per model at 16 and at 32: 32 did not pay
    assert max(m for m, _ in gpu.calls) == 32 and choice.seconds == pytest.approx(0.1) and choice.alone == 0.9
    assert "stacks of 16 models with grouped convolutions" in choice.describe("cuda", 64)
    # within a bound (what fits in memory, what the group holds), the bound itself is tried
    assert choose(Timings(gpu.seconds), "gpu-like, 12 jobs", bound=12).models == 12


def test_a_device_that_warms_up_does_not_buy_a_stack_with_its_first_slow_steps():
    """On a CPU the first steps of a process were 1.5x slower than later ones (measured: 0.32 s falling to 0.18 s per
    step); a stack timed after that looked 20 % faster than one model. One model is timed again where a stack wins."""
    first = []

    def cpu(m: int, conv: str) -> float:
        if m == 1:
            first.append(1)
            return 0.5 if len(first) == 1 else 0.18  # cold, then warm
        return m * {2: 0.23, 4: 0.21, 8: 0.3}[m] * (1.0 if conv == "split" else 1.5)

    choice = choose(Timings(cpu), "warming cpu", bound=64)
    assert (choice.models, choice.alone) == (1, 0.18) and len(first) == 2


def test_the_probe_caches_its_timings_per_device_and_shape(tmp_path):
    first = Timings(lambda m, conv: m**0.5)
    choice = choose(first, "shape a", bound=8, cache_dir=tmp_path)
    assert json.loads((tmp_path / CACHE_FILE).read_text())["shape a"]  # seconds per model step by "models/mode"
    again = Timings(lambda m, conv: pytest.fail("measured again"))
    assert choose(again, "shape a", bound=8, cache_dir=tmp_path) == type(choice)(**{**vars(choice), "cached": True})
    other = Timings(lambda m, conv: m)
    assert choose(other, "shape b", bound=8, cache_dir=tmp_path).models == 1 and other.calls


def test_a_fixed_stack_size_or_mode_is_the_users(tmp_path):
    timings = Timings(lambda m, conv: m * (2.0 if conv == "split" else 1.0))
    choice = choose(timings, "k", bound=10, fixed=4)
    assert (choice.models, choice.conv) == (4, "grouped") and timings.calls == [(4, "split"), (4, "grouped")]
    assert choice.alone is None and "ms alone" not in choice.describe("cpu", 10)  # one model was not timed
    close = Timings(lambda m, conv: m * (1.0 if conv == "split" else 0.97))  # grouped 3 % faster: not enough
    assert choose(close, "k", bound=10, fixed=4).conv == "split"
    assert choose(timings, "k", bound=3, fixed=4).models == 3  # memory still bounds it
    assert choose(Timings(timings.seconds), "k", bound=10, fixed=4, conv="split").conv == "split"
    one_option = Timings(timings.seconds)  # a fixed size and mode, or one model: nothing to measure
    assert choose(one_option, "k", bound=10, fixed=4, conv="grouped").seconds is None and not one_option.calls
    assert choose(one_option, "k", bound=1).models == 1 and not one_option.calls
    assert "(the only option)" in choose(one_option, "k", bound=1).describe("cuda", 1)  # gpu-check section 3's line


@pytest.mark.parametrize("conv", ["split", "grouped"])
def test_a_members_numbers_are_the_same_whatever_the_stack_size(conv, make_cfg, tmp_path):
    """The same three jobs in stacks of 1, 2 (2 + 1) and 3: in split mode (what the probe keeps unless grouped
    convolutions are clearly faster, and always for one model) bit-identical AUROCs and scores.csv; grouped
    convolutions sum in another order, so there the scores agree to float32 rounding amplified by training."""
    got = {}
    for m in (1, 2, 3):  # each its own experiment: no record of another is reused
        cfgs = [make_cfg("method=hsc", "epochs=2", f"name=m{m}", *o) for o in MODELS]
        dirs = [tmp_path / f"m{m}" / str(i) for i in range(3)]
        results = train_jobs(cfgs, dirs, device="cpu", max_models=m, conv=conv)
        got[m] = [(r["test_auroc"], (d / "scores.csv").read_bytes()) for r, d in zip(results, dirs)]
    if conv == "split":
        assert got[1] == got[2] == got[3]
        return
    # grouped: the rounding differences of each step, amplified by training (as in check_equivalence)
    scores = {m: [np.loadtxt(io.BytesIO(csv), delimiter=",", skiprows=1)[:, 2] for _, csv in v] for m, v in got.items()}
    for m in (2, 3):
        for (auc_1, _), (auc_m, _), a, b in zip(got[1], got[m], scores[1], scores[m]):
            np.testing.assert_allclose(a, b, rtol=1e-2)
            assert abs(auc_1 - auc_m) <= 1e-3


def test_the_launcher_measures_its_stacks_once_per_device_and_shape_and_logs_the_choice(make_cfg, tmp_path, caplog):
    cfgs = [make_cfg("method=hsc", "epochs=1", "milestones=[]", "name=a", *o) for o in MODELS]
    with caplog.at_level("INFO", logger="oe_ad.vectorised.trainer"):
        train_jobs(cfgs, [tmp_path / "a" / str(i) for i in range(3)], device="cpu")
    (line,) = [r.getMessage() for r in caplog.records if "measured" in r.getMessage()]
    assert "stacks of" in line and "ms per model step" in line, line
    timings = json.loads((Path(cfgs[0].paths.cache_dir) / CACHE_FILE).read_text())
    (key,) = timings
    assert "HSC" in key and "batch=" in key and "1/split" in timings[key]
    caplog.clear()
    cfgs = [make_cfg("method=hsc", "epochs=1", "milestones=[]", "name=b", *o) for o in MODELS]
    with caplog.at_level("INFO", logger="oe_ad.vectorised.trainer"):
        train_jobs(cfgs, [tmp_path / "b" / str(i) for i in range(3)], device="cpu")
    assert any("cached" in r.getMessage() for r in caplog.records)

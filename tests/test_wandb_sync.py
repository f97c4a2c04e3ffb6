"""oe-ad-wandb-sync: finds every offline run under a folder, uploads only those without wandb's `.synced` marker,
in path order and in batches, and says what failed. The upload itself is a stub (no network, no account),
except in the last test, which runs the real `wandb sync` without an API key."""

import subprocess
import sys
from pathlib import Path

import pytest

from oe_ad import wandb_sync
from oe_ad.wandb_sync import is_synced, main, offline_runs

# A sweep's layout: job folders with one offline run each (job b resumed once: two files of one run id), and the
# report's summary run in the experiment folder, next to a synced run and a folder that is not a run.
LAYOUT = [
    "bce/normal_class=0,seed=0/wandb/offline-run-20261128_100000-aaa/run-aaa.wandb",
    "bce/normal_class=1,seed=0/wandb/offline-run-20261128_100100-bbb/run-bbb.wandb",
    "bce/normal_class=1,seed=0/wandb/offline-run-20261128_110000-bbb/run-bbb.wandb",
    "hsc/normal_class=0,seed=0/wandb/offline-run-20261128_100200-ccc/run-ccc.wandb",
    "hsc/normal_class=1,seed=0/wandb/offline-run-20261128_100300-ddd/run-ddd.wandb",
    "wandb/offline-run-20261128_120000-summary-1/run-summary-1.wandb",
]
SYNCED = "hsc/normal_class=1,seed=0/wandb/offline-run-20261128_100300-ddd/run-ddd.wandb"


@pytest.fixture
def experiment(tmp_path) -> Path:
    root = tmp_path / "runs" / "fig2"
    for rel in LAYOUT:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b":W&B")
    (root / (SYNCED + ".synced")).write_text("")
    (root / "bce/normal_class=0,seed=0/wandb/run-20261128_100000-eee").mkdir()  # an online run: not ours to sync
    (root / "bce/normal_class=0,seed=0/result.json").write_text("{}")
    return root


class Stub:
    """Stands in for `wandb sync`: records each call's files and writes the marker for all but `fail`."""

    def __init__(self, fail: set[str] = frozenset()) -> None:
        self.calls: list[list[Path]] = []
        self.fail = fail

    def __call__(self, files) -> int:
        self.calls.append(list(files))
        for f in files:
            if f.parent.name not in self.fail:
                f.with_name(f.name + ".synced").write_text("")
        return 0 if not self.fail else 1


def pending_of(root: Path) -> list[Path]:
    return [root / rel for rel in LAYOUT if rel != SYNCED]


def test_finds_every_offline_run_in_path_order(experiment):
    assert offline_runs(experiment) == sorted(experiment / rel for rel in LAYOUT)
    assert [is_synced(f) for f in offline_runs(experiment)].count(True) == 1


def test_marker_name_is_the_one_wandb_sync_checks(tmp_path):
    """wandb 0.31's `wandb sync` skips a file when `<file>.synced` exists (wandb.cli.beta_sync); ours must agree."""
    from wandb.cli import beta_sync

    f = tmp_path / "offline-run-1-x" / "run-x.wandb"
    f.parent.mkdir()
    f.write_bytes(b"")
    assert not is_synced(f) and not beta_sync._is_synced(f)
    f.with_name("run-x.wandb.synced").write_text("")
    assert is_synced(f) and beta_sync._is_synced(f)


def test_dry_run_lists_the_pending_runs_and_uploads_nothing(experiment, capsys):
    stub = Stub()
    main([str(experiment), "--dry-run"], runner=stub)
    out = capsys.readouterr().out.splitlines()
    assert stub.calls == []
    assert out[0] == f"6 offline runs under {experiment}: 1 already uploaded, 5 to upload"
    assert out[1:] == [str(f.parent) for f in pending_of(experiment)]
    assert not any(f.with_name(f.name + ".synced").exists() for f in pending_of(experiment))


def test_uploads_in_batches_in_path_order_then_nothing_on_a_rerun(experiment, capsys):
    stub = Stub()
    main([str(experiment), "--batch", "2"], runner=stub)
    assert stub.calls == [pending_of(experiment)[0:2], pending_of(experiment)[2:4], pending_of(experiment)[4:5]]
    resumed = stub.calls[0][1:] + stub.calls[1][:1]  # the two files of run bbb: the older one first
    assert [f.parent.name for f in resumed] == ["offline-run-20261128_100100-bbb", "offline-run-20261128_110000-bbb"]
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "5 uploaded, 0 not uploaded, 1 were already uploaded"
    progress = [line for line in captured.err.splitlines() if line.startswith("wandb-sync:")]
    assert len(progress) == 3 and progress[-1].startswith("wandb-sync: 5/5 runs (100%)")
    assert progress[-1].endswith("5 uploaded, 0 failed")

    again = Stub()
    main([str(experiment)], runner=again)
    assert again.calls == []
    summary = f"6 offline runs under {experiment}: 6 already uploaded, 0 to upload"
    assert capsys.readouterr().out.splitlines() == [summary]


def test_a_run_that_fails_is_reported_and_retried_alone(experiment, capsys):
    flaky = Stub(fail={"offline-run-20261128_100200-ccc"})
    with pytest.raises(SystemExit) as e:
        main([str(experiment), "--batch", "2"], runner=flaky)
    assert e.value.code == 1
    assert len(flaky.calls) == 3
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "4 uploaded, 1 not uploaded, 1 were already uploaded"
    error = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "offline-run-20261128_100200-ccc" in error[0] and "again" in error[0]

    retry = Stub()
    main([str(experiment)], runner=retry)
    assert [[f.parent.name for f in call] for call in retry.calls] == [["offline-run-20261128_100200-ccc"]]


def test_stops_after_a_first_batch_with_nothing_uploaded(experiment, capsys):
    """Not logged in or no network: one `wandb sync` call, not one per batch."""
    down = Stub(fail={f.parent.name for f in pending_of(experiment)})
    with pytest.raises(SystemExit) as e:
        main([str(experiment), "--batch", "2"], runner=down)
    assert e.value.code == 1 and len(down.calls) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "0 uploaded, 5 not uploaded, 1 were already uploaded"


@pytest.mark.parametrize("args", [["no/such/folder"], ["{root}", "--batch", "0"]])
def test_bad_arguments_are_one_error_line(experiment, capsys, args):
    with pytest.raises(SystemExit) as e:
        main([a.format(root=experiment) for a in args], runner=Stub())
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_real_wandb_sync_without_an_api_key_uploads_nothing(tmp_path, monkeypatch):
    """The default runner really calls `python -m wandb sync FILE...`: with no key it fails at once, before any
    network, and the run stays pending (no marker)."""
    for key in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no wandb settings
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / ".config" / "wandb"))
    root = tmp_path / "runs"
    code = (
        "import wandb; r = wandb.init(mode='offline', dir=r'{d}', project='p', id='abc123', "
        "settings=wandb.Settings(silent=True)); r.log({{'x': 1}}); r.finish()"
    )
    (root / "job").mkdir(parents=True)
    subprocess.run([sys.executable, "-c", code.format(d=root / "job")], check=True, timeout=300)
    (run,) = offline_runs(root)
    assert run.name == "run-abc123.wandb"
    assert wandb_sync.wandb_sync([run]) != 0
    assert not is_synced(run)

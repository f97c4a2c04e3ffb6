"""Every method in conf/method/ trains on trivially separable data and is deterministic on CPU.

The method list is read from the config folder, so adding a method (one .py + one .yaml) adds it here.
"""

import pytest

from oe_ad.config import CONF_DIR
from oe_ad.job.lightning import run_job

METHODS = sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml"))
END_TO_END = [m for m in METHODS if not m.startswith("clip")]


@pytest.mark.parametrize("method", END_TO_END)
def test_method_separates_trivially_separable_data(method, make_cfg, tmp_path):
    cfg = make_cfg(f"method={method}", "normal_class=0", "epochs=4")  # one-class methods ignore the OE pool
    record = run_job(cfg, tmp_path / method)
    assert record["test_auroc"] > 0.9, record["test_auroc"]
    assert (tmp_path / method / "result.json").exists()
    assert record["method"] == method


def test_same_seed_same_oe_subset_and_auc_on_cpu(make_cfg, tmp_path):
    cfg = make_cfg("method=hsc", "oe_size=5", "seed=3", "epochs=2")
    a, b = run_job(cfg, tmp_path / "a"), run_job(cfg, tmp_path / "b")
    assert a["oe_indices"] == b["oe_indices"] and len(a["oe_indices"]) == 5
    assert a["test_auroc"] == b["test_auroc"] and a["train_auroc"] == b["train_auroc"]
    c = run_job(make_cfg("method=hsc", "oe_size=5", "seed=4", "epochs=2"), tmp_path / "c")
    assert c["oe_indices"] != a["oe_indices"]


def test_deep_svdd_ignores_the_oe_pool_and_rejects_an_oe_size(make_cfg, tmp_path):
    from oe_ad.errors import OEADError

    record = run_job(make_cfg("method=deep_svdd", "epochs=1", "milestones=[]"), tmp_path / "svdd")
    assert record["oe"] == "none" and record["oe_count"] is None
    with pytest.raises(OEADError, match="oe_size"):
        run_job(make_cfg("method=deep_svdd", "oe_size=4"), tmp_path / "bad")

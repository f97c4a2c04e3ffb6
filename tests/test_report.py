import json

from oe_ad.report import build_report


def write(root, i, **rec):
    d = root / f"job{i}"
    d.mkdir(parents=True)
    base = {"data": "cifar10", "benchmark": "ovr", "oe": "tiny300k", "config_hash": f"h{i}"}
    (d / "result.json").write_text(json.dumps({**base, **rec}))


def test_report_means_stds_and_oe_columns(tmp_path):
    write(tmp_path, 0, method="hsc", oe_size=None, normal_class=1, class_name="automobile", seed=0, test_auroc=0.90)
    write(tmp_path, 1, method="hsc", oe_size=None, normal_class=1, class_name="automobile", seed=1, test_auroc=0.94)
    write(tmp_path, 2, method="hsc", oe_size=4, normal_class=1, class_name="automobile", seed=0, test_auroc=0.80)
    write(
        tmp_path,
        3,
        method="deep_svdd",
        oe="none",
        oe_size=None,
        normal_class=1,
        class_name="automobile",
        seed=0,
        test_auroc=0.6,
    )
    long, md = build_report(tmp_path)
    assert "92.0 ± 2.0 (n=2)" in md and "80.0 ± 0.0 (n=1)" in md
    assert md.index("deep_svdd (OE none)") < md.index("hsc (OE 4)") < md.index("hsc (OE full)")
    assert len(long) == 3

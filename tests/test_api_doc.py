"""docs/api.md's example runs as written, on a tiny trained job and the test data's folder."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def example() -> str:
    """The first ```python block of docs/api.md."""
    return re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)


def test_the_python_api_example_runs(trained_job, folder_root, capsys):
    code = example()
    # the two paths the doc tells the reader to replace: the job folder and the labelled images
    code, n = re.subn(r"^job = .*$", f"job = Path({str(trained_job.dir)!r})", code, count=1, flags=re.M)
    code, m = re.subn(r"^images = .*$", f"images = Path({str(folder_root / 'test')!r})", code, count=1, flags=re.M)
    assert n == m == 1, "docs/api.md's example no longer starts from `job = ...` and `images = ...`"
    exec(compile(code, str(DOC), "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("hsc ['class0'] - h(phi(x))")
    assert out[1].startswith("12 images; first: ('000.png', ")
    assert re.fullmatch(r"flagged: \d of 8 random images", out[2])
    record = trained_job.record
    assert out[3] == f"AUROC {record['test_auroc']:.4f}  AUPR {record['test_aupr']:.4f}  (12 normal, 24 anomalous)"
    assert out[4] == (
        f"FPR@95 {record['test_fpr95']:.4f}  AUPR-In {record['test_aupr_in']:.4f}  "
        f"AUPR-Out {record['test_aupr_out']:.4f}"
    )

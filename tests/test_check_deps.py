"""tools/check_deps.py, the dependency check that .ci/run runs: it passes on this checkout, and it tells the
project's own modules (files and package folders under tests/ and benchmarks/) from third-party imports."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import check_deps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_the_checkout_passes(capsys):
    assert check_deps.main() == 0, capsys.readouterr().err


@pytest.mark.parametrize("module", ["official", "fidelity_stats", "conftest", "oe_ad", "eoe"])
def test_own_modules_and_packages_are_not_third_party(module):
    assert module not in check_deps.imports(ROOT / "benchmarks") | check_deps.imports(ROOT / "tests")


def test_a_third_party_import_is_reported():
    found, unknown = check_deps.distributions({"yaml", "no_such_module_xyz"})
    assert "pyyaml" in found and unknown == {"no_such_module_xyz"}

"""Compare the imports of the code with the dependencies it declares (run by .ci/run).

Fails when ``src/`` imports a distribution that ``install_requires`` lacks (or, for the launchers' own modules such as
``oe_ad.slurm``, the ``launchers`` extra), when ``install_requires``
names a distribution nothing in ``src/`` imports, when tests/benchmarks/notebooks import one that neither
``install_requires`` nor an extra (``dev``, ``launchers``, ``notebook``) declares, or when a declared
distribution is not pinned in ``requirements.lock``. Run it in the environment made by ``make install`` (it
maps import names to distributions through the installed metadata).
"""

import ast
import configparser
import json
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the project's own packages, including benchmarks/ (imported as a package by its scripts and tests), and each
# folder's own modules (below)
LOCAL = {"oe_ad", "hydra_plugins", "benchmarks"}
# The paper's code: benchmarks/official/patches.py runs inside the reference checkout's own environment, which
# benchmarks/official/README.md sets up; nothing of ours installs it.
REFERENCE_CODE = {"eoe"}
# Declared without a direct import: a runtime plugin Hydra finds by itself, a notebook kernel and server, what
# Lightning's TensorBoardLogger and torch.onnx.export import for us.
INDIRECT = {
    *("hydra-joblib-launcher", "hydra-submitit-launcher", "ipykernel", "jupyterlab", "ruff", "pytest"),
    *("tensorboard", "onnxscript"),
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(lines: str) -> set[str]:
    return {_norm(re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0]) for line in lines.splitlines() if line.strip()}


def declared() -> tuple[set[str], set[str], set[str]]:
    """(install_requires, the dev, launchers and notebook extras, the launchers extra alone) of setup.cfg, as
    normalised distribution names."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = cfg["options.extras_require"]
    runtime = _requirement_names(cfg["options"]["install_requires"])
    launchers = _requirement_names(extras["launchers"])
    return runtime, _requirement_names("\n".join(extras[e] for e in ("dev", "launchers", "notebook"))), launchers


def _module_imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imports(folder: Path) -> set[str]:
    """Top-level third-party module names imported anywhere under ``folder`` (.py files and notebooks)."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        names |= _module_imports(path.read_text())
    for path in folder.rglob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                code = "\n".join(
                    line for line in "".join(cell["source"]).splitlines() if not line.startswith(("%", "!"))
                )
                names |= _module_imports(code)
    # tests and benchmarks import each other (and conftest) by file name, and the packages among them (such as
    # benchmarks/official) by folder name
    folders = [ROOT / d for d in ("tests", "benchmarks", "notebooks", "tools")]
    own = {p.stem for d in folders for p in d.rglob("*.py")} | {
        p.parent.name for d in folders for p in d.rglob("__init__.py")
    }
    return names - set(sys.stdlib_module_names) - LOCAL - REFERENCE_CODE - own


def distributions(modules: set[str]) -> tuple[set[str], set[str]]:
    """(distributions providing ``modules``, modules no installed distribution provides)."""
    owners = packages_distributions()
    found = {_norm(d) for m in modules for d in owners.get(m, [])}
    return found, {m for m in modules if m not in owners}


def main() -> int:
    runtime, dev, launchers = declared()
    pinned = _requirement_names((ROOT / "requirements.lock").read_text())
    src_dists, src_unknown = distributions(imports(ROOT / "src"))
    other = set().union(*(imports(ROOT / d) for d in ("tests", "benchmarks", "notebooks", "tools")))
    other_dists, other_unknown = distributions(other)
    problems = [f"src imports {m}, which no installed distribution provides" for m in sorted(src_unknown)]
    problems += [
        f"tests/benchmarks import {m}, which no installed distribution provides" for m in sorted(other_unknown)
    ]
    problems += [
        f"src imports {d}: add it to install_requires in setup.cfg" for d in sorted(src_dists - runtime - launchers)
    ]
    problems += [f"install_requires names {d}, which src never imports" for d in sorted(runtime - src_dists - INDIRECT)]
    problems += [f"tests/benchmarks import {d}: add it to the dev extra" for d in sorted(other_dists - runtime - dev)]
    unused = dev - other_dists - src_dists - runtime - INDIRECT
    problems += [f"dev extra names {d}, which nothing imports" for d in sorted(unused)]
    problems += [f"{d} is declared but not pinned in requirements.lock" for d in sorted((runtime | dev) - pinned)]
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not problems:
        print(f"dependencies ok: {len(runtime)} runtime, {len(dev)} in the extras, all imported, declared and pinned")
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# The real install, as a user gets it: build the wheel, install it (not editable) into a fresh venv, and from
# a folder outside the checkout run one tiny job on data made here, oe-ad-report on it, oe-ad-predict,
# oe-ad-eval and oe-ad-export with its model.pt. The fresh venv reuses the dependencies of an existing
# environment (torch is ~2 GB) through a .pth line naming that environment's site-packages; its .pth files are
# not run, so the checkout's editable oe_ad stays invisible and only the wheel's copy can be imported.
# Usage: tests/wheel_smoke.sh [PYTHON]   (PYTHON: the interpreter of `make install`'s .venv; default .venv/bin/python)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
BASE_PY="${1:-.venv/bin/python}"
[[ "$BASE_PY" = /* ]] || BASE_PY="$REPO/$BASE_PY"  # absolute, but not resolved: a venv's python is a symlink
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export WANDB_MODE=offline WANDB_SILENT=true HF_HUB_OFFLINE=1 PYTHONNOUSERSITE=1
unset PYTHONPATH
step() { printf '[wheel-smoke %3ss] %s\n' "$SECONDS" "$*"; }

step "build the wheel"
"$BASE_PY" -m pip wheel -q --no-deps -w "$TMP/dist" "$REPO"
WHEEL="$(ls "$TMP"/dist/oe_ad-*.whl)"
rm -rf "$REPO/build" "$REPO/src/oe_ad.egg-info"  # setuptools' scratch folders in the checkout (git-ignored)

step "fresh venv reusing $("$BASE_PY" -c 'import sys; print(sys.prefix)')"
"$BASE_PY" -m venv --without-pip "$TMP/venv"
PY="$TMP/venv/bin/python"
BASE_SITE="$("$BASE_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' | xargs -I{} sh -c "echo '$BASE_SITE' > {}/_oe_ad_base_env.pth"
# --ignore-installed: the base env may hold an editable oe_ad; pip check: every dependency is satisfied there
"$BASE_PY" -m pip --python "$PY" install -q --no-deps --ignore-installed "$WHEEL"
"$BASE_PY" -m pip --python "$PY" check >/dev/null || { "$BASE_PY" -m pip --python "$PY" check; exit 1; }

cd "$TMP" && mkdir work && cd work  # outside the checkout: nothing can come from $REPO
"$PY" -c "import oe_ad, sys; p = oe_ad.__file__; sys.exit(0 if p.startswith('$TMP/venv') else f'oe_ad from {p}')"
VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("oe_ad"))')"
for cmd in oe-ad-run oe-ad-sweep oe-ad-search oe-ad-report oe-ad-predict oe-ad-eval oe-ad-export oe-ad-wandb-sync; do
  "$TMP/venv/bin/$cmd" --help > help.txt || { echo "error: $cmd --help failed"; exit 1; }
  grep -qi "usage" help.txt || { echo "error: $cmd --help prints no usage"; exit 1; }
  "$TMP/venv/bin/$cmd" --version > version.txt || { echo "error: $cmd --version failed"; exit 1; }
  grep -q "^oe_ad $VERSION (torch " version.txt || { cat version.txt; echo "error: $cmd --version is not oe_ad's"; exit 1; }
done

step "tiny data"
"$PY" - <<'PY'
import numpy as np
from PIL import Image
from pathlib import Path

rng = np.random.default_rng(0)
for split, n in (("train", 16), ("test", 8)):
    for k, colour in enumerate([(200, 40, 40), (40, 200, 40)]):
        folder = Path("data") / split / f"class{k}"
        folder.mkdir(parents=True)
        for i in range(n):
            img = np.clip(np.array(colour) + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"{i:02d}.png")
np.save("oe.npy", rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8))
PY

"$TMP/venv/bin/oe-ad-run" --info plugins > plugins.txt
grep -q VectorisedLauncher plugins.txt || { echo "error: Hydra does not find the packaged launcher plugin"; exit 1; }

step "oe-ad-run: one job"
"$TMP/venv/bin/oe-ad-run" method=hsc data=folder data.root=data oe=npy oe.path=oe.npy oe_size=8 epochs=1 \
  milestones=[1] batch_size=8 logger=csv name=smoke paths.output_dir=runs trainer.accelerator=cpu \
  > run.log 2>&1 || { cat run.log; exit 1; }
MODEL="$(find runs/smoke -name model.pt | head -1)"
test -n "$MODEL" || { cat run.log; echo "error: no model.pt under runs/smoke"; exit 1; }

step "oe-ad-report"
"$TMP/venv/bin/oe-ad-report" runs/smoke > report.log
grep -q "hsc" runs/smoke/report.md || { cat report.log; echo "error: report.md has no hsc row"; exit 1; }

step "oe-ad-predict"
"$TMP/venv/bin/oe-ad-predict" "$MODEL" data/test --output scores.csv --threshold 0
test "$(wc -l < scores.csv)" -eq 17 || { echo "error: scores.csv should hold 16 rows and a header"; exit 1; }

step "oe-ad-eval"
"$TMP/venv/bin/oe-ad-eval" "$MODEL" data -o eval > eval.log || { cat eval.log; exit 1; }
grep -q "AUROC" eval.log && grep -q "FPR@95" eval.log \
  && test -f eval/metrics.json -a -f eval/roc.png -a -f eval/pr.png \
  || { cat eval.log; echo "error: oe-ad-eval wrote no metrics or curves"; exit 1; }

step "oe-ad-export"
"$TMP/venv/bin/oe-ad-export" "$MODEL" --format onnx -o model.onnx > export.log 2>&1 || { cat export.log; exit 1; }
test -s model.onnx -a -s model.onnx.json || { cat export.log; echo "error: oe-ad-export wrote no model.onnx"; exit 1; }
step "ok"

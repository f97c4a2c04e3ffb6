# oe_ad — `make help` lists the targets.
PY      ?= .venv/bin/python
# The interpreter `make install` builds .venv with: CPython 3.11 (setup.cfg's python_requires), e.g. PYTHON=python3.11
PYTHON  ?= python3
# An index for the torch/torchvision step only: empty = PyPI's default build (CUDA 13 on Linux x86-64);
# TORCH_INDEX=https://download.pytorch.org/whl/cpu = the CPU-only wheels (README: Installing)
TORCH_INDEX ?=
SHARED  ?= ../shared/data
ARGS    ?=
DATA    := data/cifar10-jpeg
# The real data available offline: the CIFAR-10 JPEG copy (normal data) and the 30k Tiny ImageNet OE pool.
LOCAL   := data=folder data.root=$(DATA) oe=npy oe.path=$(SHARED)/tin32-oe-30k.npy
# $(call with_args,DEFAULTS): the default key=value words minus those ARGS sets, then ARGS (a key given twice
# on the command line is an error)
arg_key = $(firstword $(subst =, ,$(1)))
with_args = $(foreach d,$(1),$(if $(filter $(call arg_key,$(d)),$(foreach a,$(ARGS),$(call arg_key,$(a)))),,$(d))) $(ARGS)

.PHONY: help install notebook run data test test-slow lint format bench bench-vectorised real-data fidelity gpu-bundle gpu-check

help: ## list the targets (the experiment targets last, from their YAMLs)
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-26s %s\n", $$1, $$2}'
	@$(PY) -m oe_ad.experiments help || echo "  (no experiment targets listed: make install first, or see the error above)"

install: ## create .venv: Python 3.11, torch 2.14.1, then requirements.lock (TORCH_INDEX=URL: CPU-only torch)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "error: $(PYTHON) is not Python 3.11 ($$($(PYTHON) --version 2>&1 | head -1)); oe_ad needs 3.11: make install PYTHON=python3.11"; exit 2; }
	$(PYTHON) -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==2.14.1 torchvision==0.29.1
	.venv/bin/pip install -q -c requirements.lock -e ".[dev,launchers]"

notebook: ## JupyterLab on notebooks/ (installs the pinned `notebook` extra into .venv first if it is missing)
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install -q -c requirements.lock -e ".[notebook]"
	OE_AD_RUNS=$(abspath $(RUNS)) $(PY) -m jupyter lab notebooks/

$(DATA):
	@test -f $(SHARED)/cifar10-jpeg.tar.gz || { echo "error: $(SHARED)/cifar10-jpeg.tar.gz not found (set SHARED=...)"; exit 2; }
	mkdir -p data && tar xzf $(SHARED)/cifar10-jpeg.tar.gz -C data

data: $(DATA) ## extract the offline CIFAR-10 copy from $(SHARED) into data/

run: $(DATA) ## the main job on the offline data: BCE, 256 OE images, class 0 (short schedule; ARGS=... to change)
	$(PY) -m oe_ad.run $(call with_args,method=bce oe_size=256 $(LOCAL) epochs=2 milestones=[1] logger=csv name=quickstart)

test: ## fast unit tests (synthetic data, no downloads)
	$(PY) -m pytest

test-slow: ## slow end-to-end tests
	$(PY) -m pytest -m slow

lint: ## ruff lint + format check
	$(PY) -m ruff check src tests benchmarks tools
	$(PY) -m ruff format --check src tests benchmarks tools

format: ## ruff autofix + format
	$(PY) -m ruff check --fix src tests benchmarks tools
	$(PY) -m ruff format src tests benchmarks tools

bench: ## throughput: raw model step vs full training pipeline (prints the ratio)
	$(PY) benchmarks/throughput.py $(ARGS)

bench-vectorised: $(DATA) ## a 64-job sweep under launcher=vectorised vs the same jobs one by one (prints the ratio)
	$(PY) benchmarks/vectorised.py --data $(DATA) --oe $(SHARED)/tin32-oe-30k.npy $(ARGS)

SUITE ?= quick
fidelity: $(DATA) ## oe_ad vs the paper's code, class 1, 12 epochs (SUITE=quick: BCE, HSC; SUITE=full: docs/fidelity.md)
	$(PY) benchmarks/fidelity.py --suite $(SUITE) --data $(DATA) --oe $(SHARED)/tin32-oe-30k.npy $(ARGS)

REAL_DATA_JOBS := method=bce,hsc normal_class=1,3 seed=0 $(LOCAL) epochs=10 milestones=[8] logger=csv name=real-data
real-data: $(DATA) ## BCE and HSC on the CIFAR-10 copy, classes 1 and 3, 10 epochs, then the report
	$(PY) -m oe_ad.run -m $(call with_args,$(REAL_DATA_JOBS))
	$(PY) -m oe_ad.report runs/real-data

# ---------------------------------------------------------------------------------------------------------
# GPU self-test (docs/gpu.md): benchmarks/gpu_check.py measures and checks every GPU path in about 5 minutes.
#   make gpu-check                                # CIFAR-10 folder + CIFAR-100 OE, prepared once in $(GPU_CHECK_DIR)
#   make gpu-check GPU_DATA=DIR GPU_OE=FILE.npy   # a 32x32 image folder and an OE .npy of your own
#   with gpu-bundle/ (below) and no GPU_DATA: the stored CPU reference data, whose AUC section 2 judges
# A GPU machine with torch but no package index or data: `make gpu-bundle` (where PyPI and $(SHARED) are at hand)
# writes the missing wheels (cp312), the CIFAR-10 copy and a 10k OE slice into $(BUNDLE)/; copy the checkout with
# it to the GPU machine and run `make gpu-check GPU_OUT=DIR` there. The script stops itself at 300 s; rerun what
# failed with GPU_ARGS="--only 3". Keep DIR/gpu_check.json as benchmarks/results/<date>-<gpu>.json.
BUNDLE     ?= gpu-bundle
GPU_OUT    ?= gpu-out
GPU_DATA   ?=
GPU_OE     ?=
GPU_CHECK_DIR ?= data/gpu-check
GPU_ARGS   ?=
GPU_PY     ?= $(if $(wildcard $(PY)),$(PY),python3)
BUNDLE_OE  := tin32-oe-10k.npy
# pinned in requirements.lock; antlr4-python3-runtime 4.9.3 exists only as an sdist: built here (pure Python)
BUNDLE_WHEELS := hydra-core omegaconf open_clip_torch ftfy wcwidth
BUNDLE_BUILT  := antlr4-python3-runtime
pin = $(shell grep -iE '^$(subst -,[-_],$(1))==' requirements.lock)
PLATFORMS  := --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any

# (team routine, see above: no help text)
gpu-bundle:
	@test -f $(SHARED)/cifar10-jpeg.tar.gz -a -f $(SHARED)/tin32-oe-30k.npy || { echo "error: $(SHARED)/cifar10-jpeg.tar.gz or tin32-oe-30k.npy not found (set SHARED=...)"; exit 2; }
	rm -rf $(BUNDLE) && mkdir -p $(BUNDLE)/wheels
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $(PLATFORMS) \
		-d $(BUNDLE)/wheels $(foreach p,$(BUNDLE_WHEELS),$(call pin,$(p)))
	$(PY) -m pip wheel -q --no-deps -w $(BUNDLE)/wheels $(foreach p,$(BUNDLE_BUILT),$(call pin,$(p)))
	cp $(SHARED)/cifar10-jpeg.tar.gz $(BUNDLE)/
	$(PY) -c "import numpy as np; np.save('$(BUNDLE)/$(BUNDLE_OE)', np.load('$(SHARED)/tin32-oe-30k.npy', mmap_mode='r')[:10000])"
	@ls $(BUNDLE)/wheels; du -sh --apparent-size $(BUNDLE) | awk '{print "bundle size: " $$1 " (limit 60M)"}'

gpu-check: ## self-test of a GPU install, ~5 min: speed, memory, every GPU path (downloads CIFAR once; docs/gpu.md)
	@set -e; tmp=$$(mktemp -d); \
	if [ -n "$(GPU_DATA)$(GPU_OE)" ]; then \
		test -d "$(GPU_DATA)" -a -f "$(GPU_OE)" || { echo "error: GPU_DATA=$(GPU_DATA) must be an image folder (train/<class>/, test/<class>/) and GPU_OE=$(GPU_OE) an OE .npy (docs/gpu.md)"; exit 2; }; \
		data="$(GPU_DATA)"; oe="$(GPU_OE)"; \
	elif [ -f $(BUNDLE)/cifar10-jpeg.tar.gz ]; then \
		if ! $(GPU_PY) -c "import hydra, omegaconf, open_clip, ftfy" 2>/dev/null; then \
			echo "installing $(BUNDLE)/wheels into $$tmp/site"; \
			$(GPU_PY) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $$tmp/site $(BUNDLE)/wheels/*.whl; \
			export PYTHONPATH=$$tmp/site; fi; \
		tar xzf $(BUNDLE)/cifar10-jpeg.tar.gz -C $$tmp; data=$$tmp/cifar10-jpeg; oe=$(BUNDLE)/$(BUNDLE_OE); \
	else $(GPU_PY) benchmarks/gpu_check_data.py $(GPU_CHECK_DIR) --cifar-root $${OE_AD_DATA:-data}; \
		data=$(GPU_CHECK_DIR)/cifar10; oe=$(GPU_CHECK_DIR)/cifar100-oe.npy; fi; \
	PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} PYTHONUNBUFFERED=1 $(GPU_PY) benchmarks/gpu_check.py $(GPU_OUT) \
		--data $$data --oe $$oe $(GPU_ARGS)

# ---------------------------------------------------------------------------------------------------------
# The paper's tables and figures, one target per src/oe_ad/conf/experiment/<experiment>.yaml (its report.help is
# its `make help` line): `make <experiment>` runs its sweep (a YAML that sets `search:` runs oe_ad.search, any
# other oe_ad.run), then its report (runs/<name>/paper.md, paper.csv, *.png, one W&B summary run);
# `make report-<experiment>` only re-aggregates. ARGS narrows or changes the sweep:
# make fig2-cifar10 ARGS="normal_class=1 seed=0 epochs=10"
RUNS    ?= $(or $(OE_AD_RUNS),runs)
WANDB   ?= --wandb
EXPERIMENT_DIR := src/oe_ad/conf/experiment
EXPERIMENTS := $(basename $(notdir $(wildcard $(EXPERIMENT_DIR)/*.yaml)))
SEARCH_EXPERIMENTS := $(basename $(notdir $(shell grep -l '^search:' $(EXPERIMENT_DIR)/*.yaml)))
RUN_EXPERIMENTS := $(filter-out $(SEARCH_EXPERIMENTS),$(EXPERIMENTS))
# The records' folder: the YAML's `name:` (a -baselines sweep writes into its main experiment's), else the target.
report_dir = $(RUNS)/$(or $(shell sed -n 's/^name: *//p' $(EXPERIMENT_DIR)/$(1).yaml 2>/dev/null),$(1))
.PHONY: $(EXPERIMENTS) experiments

experiments: ## list the experiment targets' sweeps (job counts, without running them)
	@for e in $(RUN_EXPERIMENTS); do printf "  %-26s " $$e; $(PY) -m oe_ad.sweep experiment=$$e $(ARGS) 2>&1 >/dev/null | tail -1; done

# The report runs even when some jobs failed (it tabulates what finished); the sweep's status is kept.
$(RUN_EXPERIMENTS):
	$(PY) -m oe_ad.run -m experiment=$@ $(ARGS); rc=$$?; \
	$(PY) -m oe_ad.report $(call report_dir,$@) $(WANDB); exit $$rc

$(SEARCH_EXPERIMENTS):
	$(PY) -m oe_ad.search -m experiment=$@ $(ARGS); rc=$$?; \
	$(PY) -m oe_ad.report $(call report_dir,$@) $(WANDB); exit $$rc

report-%: ## re-aggregate runs/<experiment> into its report, no training (e.g. make report-fig2-cifar10)
	$(PY) -m oe_ad.report $(call report_dir,$*) $(WANDB)

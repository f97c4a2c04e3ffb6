# oe_ad — `make help` lists the targets.
PY      ?= .venv/bin/python
SHARED  ?= ../shared/data
ARGS    ?=
DATA    := data/cifar10-jpeg
# The real data available offline: the CIFAR-10 JPEG copy (normal data) and the 30k Tiny ImageNet OE pool.
LOCAL   := data=folder data.root=$(DATA) oe=npy oe.path=$(SHARED)/tin32-oe-30k.npy

.PHONY: help install run data test test-slow lint format bench bench-vectorised real-data fidelity gpu-bundle gpu-check

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-26s %s\n", $$1, $$2}'

install: ## create .venv with the pinned stack (torch 2.14.1 first, then requirements.lock)
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
	.venv/bin/pip install -q -c requirements.lock -e ".[dev,launchers]"

$(DATA):
	@test -f $(SHARED)/cifar10-jpeg.tar.gz || { echo "error: $(SHARED)/cifar10-jpeg.tar.gz not found (set SHARED=...)"; exit 2; }
	mkdir -p data && tar xzf $(SHARED)/cifar10-jpeg.tar.gz -C data

data: $(DATA) ## extract the offline CIFAR-10 copy from $(SHARED) into data/

run: $(DATA) ## the main job on the offline data: BCE, 256 OE images, class 0 (short schedule; ARGS=... to change)
	$(PY) -m oe_ad.run method=bce oe_size=256 $(LOCAL) epochs=2 milestones=[1] logger=csv name=quickstart $(ARGS)

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

bench-vectorised: ## M models in one fused step vs M single runs, M = 1, 4, 16, 64 (prints the time ratio)
	$(PY) benchmarks/vectorised.py $(ARGS)

fidelity: $(DATA) ## BCE and HSC, class 1, 12 epochs, seeds 0-2 vs the paper's code (fails if a mean is > 1 point off)
	$(PY) benchmarks/fidelity.py --data $(DATA) --oe $(SHARED)/tin32-oe-30k.npy $(ARGS)

real-data: $(DATA) ## BCE and HSC on the CIFAR-10 copy, classes 1 and 3, 10 epochs, then the report
	$(PY) -m oe_ad.run -m method=bce,hsc normal_class=1,3 seed=0 $(LOCAL) epochs=10 milestones=[8] logger=csv name=real-data $(ARGS)
	$(PY) -m oe_ad.report runs/real-data

# ---------------------------------------------------------------------------------------------------------
# GPU evidence (docs/gpu.md). A GPU machine here has torch but not Hydra/OmegaConf/open_clip, no registry and
# no $(SHARED): `make gpu-bundle` (here, online) puts what it lacks into $(BUNDLE)/, then ONE device call
#   run(command="make gpu-check GPU_OUT=$$OUT", carry=["gpu-bundle"], timeout_s=390)
# runs every check in < 5 min (it stops itself at 300 s; a 390 s limit leaves lease time for one rerun,
# GPU_ARGS="--only 3") and returns gpu_check.json: commit it as benchmarks/results/<date>-<gpu>.json.
BUNDLE     ?= gpu-bundle
GPU_OUT    ?= gpu-out
GPU_ARGS   ?=
GPU_PY     ?= $(if $(wildcard $(PY)),$(PY),python3)
BUNDLE_OE  := tin32-oe-10k.npy
# pinned in requirements.lock; antlr4-python3-runtime 4.9.3 exists only as an sdist: built here (pure Python)
BUNDLE_WHEELS := hydra-core omegaconf open_clip_torch ftfy wcwidth
BUNDLE_BUILT  := antlr4-python3-runtime
pin = $(shell grep -iE '^$(subst -,[-_],$(1))==' requirements.lock)
PLATFORMS  := --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any

gpu-bundle: ## wheels (cp312 x86-64) + CIFAR-10 copy + 10k OE slice for a GPU machine, in $(BUNDLE)/ (< 60 MB)
	@test -f $(SHARED)/cifar10-jpeg.tar.gz -a -f $(SHARED)/tin32-oe-30k.npy || { echo "error: $(SHARED)/cifar10-jpeg.tar.gz or tin32-oe-30k.npy not found (set SHARED=...)"; exit 2; }
	rm -rf $(BUNDLE) && mkdir -p $(BUNDLE)/wheels
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $(PLATFORMS) \
		-d $(BUNDLE)/wheels $(foreach p,$(BUNDLE_WHEELS),$(call pin,$(p)))
	$(PY) -m pip wheel -q --no-deps -w $(BUNDLE)/wheels $(foreach p,$(BUNDLE_BUILT),$(call pin,$(p)))
	cp $(SHARED)/cifar10-jpeg.tar.gz $(BUNDLE)/
	$(PY) -c "import numpy as np; np.save('$(BUNDLE)/$(BUNDLE_OE)', np.load('$(SHARED)/tin32-oe-30k.npy', mmap_mode='r')[:10000])"
	@ls $(BUNDLE)/wheels; du -sh --apparent-size $(BUNDLE) | awk '{print "bundle size: " $$1 " (limit 60M)"}'

gpu-check: ## GPU session: ONE device run, command "make gpu-check GPU_OUT=$OUT", carry ["gpu-bundle"], timeout_s 390 (docs/gpu.md)
	@test -f $(BUNDLE)/cifar10-jpeg.tar.gz || { echo "error: $(BUNDLE)/ not found: run make gpu-bundle first"; exit 2; }
	@set -e; tmp=$$(mktemp -d); \
	if ! $(GPU_PY) -c "import hydra, omegaconf, open_clip, ftfy" 2>/dev/null; then \
		echo "installing $(BUNDLE)/wheels into $$tmp/site"; \
		$(GPU_PY) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $$tmp/site $(BUNDLE)/wheels/*.whl; \
		export PYTHONPATH=$$tmp/site; fi; \
	tar xzf $(BUNDLE)/cifar10-jpeg.tar.gz -C $$tmp; \
	PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} PYTHONUNBUFFERED=1 $(GPU_PY) benchmarks/gpu_check.py $(GPU_OUT) \
		--data $$tmp/cifar10-jpeg --oe $(BUNDLE)/$(BUNDLE_OE) $(GPU_ARGS)

# ---------------------------------------------------------------------------------------------------------
# The paper's tables and figures: `make <experiment>` runs the sweep of src/oe_ad/conf/experiment/<experiment>.yaml, then
# its report (runs/<experiment>/paper.md, paper.csv, *.png, one W&B summary run); `make report-<experiment>`
# only re-aggregates. ARGS narrows or changes the sweep: make fig2-cifar10 ARGS="normal_class=1 seed=0 epochs=10"
RUNS    ?= $(or $(OE_AD_RUNS),runs)
WANDB   ?= --wandb
report_dir = $(RUNS)/$(patsubst %-baselines,%,$(1))

table1-cifar10: ## Table 1 CIFAR-10: DSAD/HSC/Focal/BCE, full OE (400 jobs)
table1-imagenet30: ## Table 1 ImageNet-30: DSAD/HSC/Focal/BCE, full IN-22k OE (1200 jobs)
table2-cifar10: ## Table 2 CIFAR-10: CLIP zero-shot and BCE-CL (200 jobs)
table2-imagenet30: ## Table 2 ImageNet-30: CLIP zero-shot and BCE-CL (600 jobs)
fig2-cifar10: ## Figure 2 CIFAR-10: HSC vs BCE over OE sizes 2^0..2^17, full (3800 jobs)
fig2-imagenet30: ## Figure 2 ImageNet-30: HSC vs BCE over OE sizes 2^0..2^20, full, 5 seeds (6600 jobs)
fig3-cifar10: ## Figure 3 CIFAR-10 LOO: OE methods x OE sizes, reduced, 2 seeds (1520 jobs)
fig3-cifar10-baselines: ## Figure 3 CIFAR-10 LOO: Deep SVDD, CLIP, BCE-CL (60 jobs, same report)
fig3-imagenet30: ## Figure 3 ImageNet-30 LOO: HSC/BCE x OE sizes, reduced, 2 seeds (2640 jobs)
fig3-imagenet30-baselines: ## Figure 3 ImageNet-30 LOO: Deep SVDD, CLIP (120 jobs, same report)
fig4-mvtec: ## Figure 4 / Table 15 MVTec-AD: OE methods x OE sizes, 2 seeds (1920 jobs)
fig4-mvtec-baselines: ## Figure 4 / Table 15 MVTec-AD: Deep SVDD, CLIP, BCE-CL (90 jobs, same report)
fig6-cifar100: ## Figure 6: OE = k random CIFAR-100 classes, k = 1..100 (4000 jobs)
table6-hsc: ## Table 6: HSC radial functions x augmentation off/on (800 jobs)
fig13-focal: ## Figure 13: focal loss over gamma (600 jobs)
freq-lpf-cifar10: ## Figures 8-11 CIFAR-10: LPF magnitude 0..15 x OE sizes, reduced (3840 jobs)
freq-hpf-cifar10: ## Figures 8-11 CIFAR-10: HPF magnitude 0..15 x OE sizes, reduced (3840 jobs)
freq-lpf-imagenet30: ## Figures 8-11 ImageNet-30: LPF magnitude 0..110 x OE sizes, reduced (8640 jobs)
freq-hpf-imagenet30: ## Figures 8-11 ImageNet-30: HPF magnitude 0..110 x OE sizes, reduced (8640 jobs)
table3-cifar10: ## Table 3 CIFAR-10: best/worst single OE image by evolution, HSC/BCE (40 searches)
table3-imagenet30: ## Table 3 ImageNet-30 (first 10 classes): best/worst by evolution (40 searches)
table4-lpf-cifar10: ## Table 4 CIFAR-10, LPF m=14 on all data: best/worst by evolution (40 searches)
table4-hpf-cifar10: ## Table 4 CIFAR-10, HPF m=14 on all data: best/worst by evolution (40 searches)
table4-lpf-imagenet30: ## Table 4 ImageNet-30, LPF m=110: best/worst by evolution (40 searches)
table4-hpf-imagenet30: ## Table 4 ImageNet-30, HPF m=110: best/worst by evolution (40 searches)
table5-cifar10: ## Table 5 CIFAR-10: best/worst single OE image by random search (40 searches)
table5-imagenet30: ## Table 5 ImageNet-30: best/worst single OE image by random search (40 searches)

RUN_EXPERIMENTS := table1-cifar10 table1-imagenet30 table2-cifar10 table2-imagenet30 fig2-cifar10 fig2-imagenet30 \
	fig3-cifar10 fig3-cifar10-baselines fig3-imagenet30 fig3-imagenet30-baselines fig4-mvtec fig4-mvtec-baselines \
	fig6-cifar100 table6-hsc fig13-focal freq-lpf-cifar10 freq-hpf-cifar10 freq-lpf-imagenet30 freq-hpf-imagenet30
SEARCH_EXPERIMENTS := table3-cifar10 table3-imagenet30 table4-lpf-cifar10 table4-hpf-cifar10 \
	table4-lpf-imagenet30 table4-hpf-imagenet30 table5-cifar10 table5-imagenet30
.PHONY: $(RUN_EXPERIMENTS) $(SEARCH_EXPERIMENTS) experiments

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

# oe_ad — `make help` lists the targets.
PY      ?= .venv/bin/python
SHARED  ?= ../shared/data
ARGS    ?=
DATA    := data/cifar10-jpeg
# The real data available offline: the CIFAR-10 JPEG copy (normal data) and the 30k Tiny ImageNet OE pool.
LOCAL   := data=folder data.root=$(DATA) oe=npy oe.path=$(SHARED)/tin32-oe-30k.npy

.PHONY: help install run data test test-slow lint format bench bench-vectorised real-data

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

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
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

format: ## ruff autofix + format
	$(PY) -m ruff check --fix src tests benchmarks
	$(PY) -m ruff format src tests benchmarks

bench: ## throughput: raw model step vs full training pipeline (prints the ratio)
	$(PY) benchmarks/throughput.py $(ARGS)

bench-vectorised: ## M models in one fused step vs M single runs, M = 1, 4, 16, 64 (prints the time ratio)
	$(PY) benchmarks/vectorised.py $(ARGS)

real-data: $(DATA) ## BCE and HSC on the CIFAR-10 copy, classes 1 and 3, 10 epochs, then the report
	$(PY) -m oe_ad.run -m method=bce,hsc normal_class=1,3 seed=0 $(LOCAL) epochs=10 milestones=[8] logger=csv name=real-data $(ARGS)
	$(PY) -m oe_ad.report runs/real-data

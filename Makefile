# scmint — every command a user needs. `make help` lists them.
# TORCH_SPEC picks the torch build: the default takes the local CPU wheel; on a GPU box use e.g.
#   make install TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
SHELL := /bin/bash
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-full lint format clean report sweep bench bench-data parity-umint parity-smile

help: ## list the commands
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv: torch from TORCH_SPEC, then scmint (editable) with dev extras
	@echo "scmint installed in $(VENV) (torch: $$($(BIN)/python -c 'import torch; print(torch.__version__)'))"

run: $(STAMP) ## train the default experiment (UMINT on synthetic CITE-seq) and print its scores; ARGS="model=ae ..." to override
	$(BIN)/scmint-train $(ARGS)

report: $(STAMP) ## tables + figures of sweeps: make report DIR="<multirun dir> [...]" [OUT=<dir>, default DIR/report]
	@test -n "$(DIR)" || { echo 'usage: make report DIR="<multirun dir> [...]" [OUT=<dir>]'; exit 2; }
	$(BIN)/scmint-report $(DIR) --out $(or $(OUT),$(firstword $(DIR))/report)

# `make sweep EXP=<experiment>`: conf/experiment/<EXP>.yaml as a Hydra multirun into one known
# directory, then scmint-report on it. SMOKE=1 runs its smoke form (debug=smoke, synthetic data).
EXP ?=
SMOKE ?=
SWEEP_TIME := $(shell date +%Y-%m-%d_%H-%M-%S)
SWEEP_DIR ?= logs/$(if $(SMOKE),smoke/$(EXP),$(EXP)/multiruns)/$(SWEEP_TIME)
sweep: $(STAMP) ## run an experiment's sweep, then its report: make sweep EXP=umint_vs_autoencoders [SMOKE=1] [ARGS=...]
	@test -n "$(EXP)" || { echo "usage: make sweep EXP=<name> [SMOKE=1] [ARGS=...]; experiments: $$(ls conf/experiment | sed 's/\.yaml$$//' | tr '\n' ' ')"; exit 2; }
	$(BIN)/scmint-train -m experiment=$(EXP) $(if $(SMOKE),debug=smoke) hydra.sweep.dir=$(SWEEP_DIR) $(ARGS)
	$(BIN)/scmint-report $(SWEEP_DIR) --out $(SWEEP_DIR)/report $(if $(SMOKE),--ignore-override debug)

parity-umint: $(STAMP) ## UMINT/AE/DAE/SAE vs the authors' code on bmmc_cite_600 + bmmc_multiome_500, 10 seeds each; prints the table (ARGS="--variants cite/umint" for one row)
	$(BIN)/python -m scmint.experiments.parity_umint $(ARGS)

parity-smile: $(STAMP) ## SMILE/mpSMILE vs the authors' code on pancreas_xin_wang, snare_cellline_1047, bmmc_multiome_500, 10 seeds each; prints the table (ARGS="--cases ..." for some)
	$(BIN)/python -m scmint.experiments.parity_smile $(ARGS)

test: $(STAMP) ## run the fast test suite (what CI runs)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-full: $(STAMP) ## run every test, including slow ones (real-data parity, notebooks, DDP)
	$(BIN)/pytest -q -m "slow or not slow" $(PYTEST_ARGS)

bench: $(STAMP) ## training benchmark vs a bare PyTorch loop and the hardware limit: full grid, hours on 2 cores (ARGS="--quick" for minutes); writes benchmarks/results/
	$(BIN)/python -m benchmarks.bench_train $(ARGS)

bench-data: $(STAMP) ## data-path benchmark: cells/s and peak memory, 1e6 cells, dense/sparse/backed (ARGS="--cells 50000" for a quick look)
	$(BIN)/python benchmarks/bench_data.py $(ARGS)

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean: ## remove run outputs and caches (keeps .venv)
	rm -rf outputs multirun logs .pytest_cache .ruff_cache build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

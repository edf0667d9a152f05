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
.PHONY: help install run test test-full lint format clean

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

test: $(STAMP) ## run the fast test suite (what CI runs)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-full: $(STAMP) ## run every test, including slow ones (real-data parity, notebooks, DDP)
	$(BIN)/pytest -q -m "slow or not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean: ## remove run outputs and caches (keeps .venv)
	rm -rf outputs multirun logs .pytest_cache .ruff_cache build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

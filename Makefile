# `make train` and `make test` work on a fresh clone: they create .venv and install what is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Pinned so that pip does not pull whichever torch build is newest; on Linux from PyPI this is the
# default (CUDA) build, where a local CPU wheel of the same version exists pip takes that instead.
TORCH ?= torch==2.13.0
ARGS ?=
PYTEST_ARGS ?=
# Test files run in parallel processes (pytest-xdist); each file stays on one worker.
PYTEST_WORKERS ?= 2

.PHONY: install train test test-all lint format clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

## Train IP-CAE on the embedded digits dataset (extra Hydra overrides: make train ARGS="model=cae")
train: install
	$(PY) src/train.py $(ARGS)

## The test suite without slow tests (what CI runs)
test: install
	$(PY) -m pytest -m "not slow and not gpu" -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## Everything, slow tests included
test-all: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m ruff format --check src tests benchmarks scripts

format: install
	$(PY) -m ruff format src tests benchmarks scripts
	$(PY) -m ruff check --fix src tests benchmarks scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

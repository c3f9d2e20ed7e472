# Every target installs what it needs first (through `setup`), so a fresh clone needs only
# `make demo` and `make test`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock.txt
# Install with uv (about 40 s) unless USE_PIP=1 (minutes, same lock).
USE_PIP ?=
DAGSTER_INSTANCE ?= sqlite

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MLOPS_HOME ?= $(CURDIR)/.mlops
export PYTHONUNBUFFERED := 1

.PHONY: setup instance demo test lint format dev bench lock clean help

help:
	@echo "make setup   - create .venv and install the lock (idempotent)"
	@echo "make demo    - run the pipeline over simulator batches on the embedded default"
	@echo "make test    - the test suite"
	@echo "make lint    - ruff"
	@echo "make dev     - dagster dev on workspace.yaml (UI on http://127.0.0.1:3001)"
	@echo "make bench   - benchmarks"
	@echo "make lock    - re-resolve requirements.lock.txt from pyproject.toml"

setup: $(STAMP) instance

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ -z "$(USE_PIP)" ] && $(BIN)/pip install -q uv==0.9.5; then \
		$(BIN)/uv pip install --python $(BIN)/python -r $(LOCK) && \
		$(BIN)/uv pip install --python $(BIN)/python --no-deps -e . ; \
	else \
		$(BIN)/pip install -r $(LOCK) && $(BIN)/pip install --no-deps -e . ; \
	fi
	touch $(STAMP)

# The Dagster instance config: config/dagster/$(DAGSTER_INSTANCE).yaml -> $(DAGSTER_HOME)/dagster.yaml
instance:
	@mkdir -p "$(DAGSTER_HOME)"
	@cmp -s config/dagster/$(DAGSTER_INSTANCE).yaml "$(DAGSTER_HOME)/dagster.yaml" || \
		cp config/dagster/$(DAGSTER_INSTANCE).yaml "$(DAGSTER_HOME)/dagster.yaml"

demo: setup
	$(BIN)/python -m mlops_assets.demo --fresh

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

dev: setup
	exec $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $${DAGSTER_PORT:-3001}

bench: setup
	$(BIN)/python benchmarks/bench_warehouse_load.py

lock: $(BIN)/python
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o $(LOCK)

clean:
	rm -rf .mlops .dagster_home

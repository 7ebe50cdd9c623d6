# Each target creates the virtual environment itself, so a fresh machine needs only make.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The suite exits 0 once the report is written (the seed schedulers are expected to fail);
# `unstuck gate reports/latest` is the command that turns the verdict into an exit code.
run: $(STAMP)
	$(BIN)/unstuck suite --out reports/latest

# The tests run on every core (at most 4): the suite is CPU-bound, and no test shares a
# file, port or server with another.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n auto --maxprocesses 4

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sim.py

clean:
	rm -rf $(VENV) reports/latest

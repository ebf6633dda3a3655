# Two entry points (README): `make repro` and `make test`. Both create the
# virtual environment from the lock file first, so a fresh machine with only
# Python 3.11 needs nothing else.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup repro test lint lock bench clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==24.3.1
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Compose conf/ into params.yaml, then let DVC run what changed. The stages'
# `python -m pipeline ...` commands must find the venv's python: put it first on PATH.
repro: $(STAMP)
	$(BIN)/python -m pipeline params $(OVERRIDES)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks
	$(BIN)/sqlfluff lint sql/
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check --fix pipeline tests benchmarks
	$(BIN)/ruff format pipeline tests benchmarks

# Re-pin every dependency from pyproject.toml into requirements.lock.
lock:
	rm -rf /tmp/lock-venv && $(PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet -e '.[dev]'
	/tmp/lock-venv/bin/pip freeze --exclude-editable > requirements.lock

bench: $(STAMP)
	$(BIN)/python benchmarks/stages.py

clean:
	rm -rf $(VENV) outputs/* .pytest_cache

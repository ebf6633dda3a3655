# Two entry points (README): `make repro` and `make test`. Both create the
# virtual environment from the lock file first, so a fresh machine with only
# Python 3.11 needs nothing else.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup repro test lint lock bench clean wheelhouse

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==24.3.1
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Compose conf/ into params.yaml, then let DVC run what changed (`python -m pipeline
# repro` puts the venv's python first on PATH for the stages' commands). Both targets
# are the make-free commands of README, after the setup: Windows needs only Python.
repro: $(STAMP)
	$(BIN)/python -m pipeline repro $(OVERRIDES)

test: $(STAMP)
	$(BIN)/python -m pipeline test

lint: $(STAMP)
	$(BIN)/ruff check --fix pipeline tests benchmarks tools
	$(BIN)/ruff format pipeline tests benchmarks tools

# Every wheel of requirements.lock for CPython 3.11 on Linux and Windows, and this
# project's, in wheelhouse/<platform>/ (needs a package index; brought into MONA).
wheelhouse: $(STAMP)
	$(BIN)/python tools/wheelhouse.py --dest wheelhouse

# Re-pin every dependency from pyproject.toml into requirements.lock.
lock:
	rm -rf /tmp/lock-venv && $(PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet -e '.[dev]'
	/tmp/lock-venv/bin/pip freeze --exclude-editable > requirements.lock

bench: $(STAMP)
	$(BIN)/python benchmarks/stages.py

clean:
	rm -rf $(VENV) outputs/* .pytest_cache

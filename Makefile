# rnnflow: `make run` runs the pipeline on the default data, `make test` runs the tests.
# Both create .venv and install the locked dependencies first when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# DVC runs each stage's `python -m tasks.<stage>`: it must find the venv's python.
export PATH := $(BIN):$(PATH)

.PHONY: install run test test-fast bench lock clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# The project's modules precompiled first: where PYTHONDONTWRITEBYTECODE is set, every stage's
# process (the always-run source stage of a no-change `dvc repro` too) would compile them again.
run: install
	$(BIN)/python -m compileall -q tasks flows
	$(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python bench/compare.py

# Regenerate the lock file after changing dependencies in pyproject.toml.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean-venv:
	rm -rf $(VENV)

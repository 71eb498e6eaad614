# Two commands on a fresh machine: `make run` and `make test`.
# llama-cpp-python compiles llama.cpp the first time (about 9 minutes here); pip caches the wheel after that.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: run test check lint types clean help

help:
	@echo "make run    - create .venv, install aicy, start it on the embedded model"
	@echo "make test   - install test tools, run lint, type checks and the whole test suite"
	@echo "make check  - lint and type checks only"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(VENV)/bin/aicy serve

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check aicy tests
	$(VENV)/bin/ruff format --check aicy

types: $(VENV)/.installed-test
	$(VENV)/bin/mypy aicy

check: lint types

test: check
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

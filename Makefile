# Two commands on a fresh machine: `make run` and `make test`.
# llama-cpp-python compiles llama.cpp the first time (about 9 minutes here); pip caches the wheel after that.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

# llama.cpp is built for the CPU it finds. Some VMs advertise AMX but fault on its instructions (seen here:
# SIGILL in llama.cpp's AMX kernels on a Firecracker guest whose CPU lists amx_tile), so on x86-64 it is
# built without AMX. pip caches the built wheel: after changing these flags, `pip cache remove llama_cpp_python`.
ifeq ($(shell uname -m),x86_64)
LLAMA_CFLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif
BUILD_ENV := CFLAGS="$(LLAMA_CFLAGS) $(CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS) $(CXXFLAGS)"

.PHONY: run test test-servers test-codex check lint types clean help

help:
	@echo "make run    - create .venv, install aicy, start it on the embedded model"
	@echo "make test   - install test tools, run lint, type checks and the whole test suite"
	@echo "make check  - lint, layer contract (import-linter) and type checks only"
	@echo "make bench  - the benchmark (bench/README.md); about eight minutes"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(BUILD_ENV) $(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(BUILD_ENV) $(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(VENV)/bin/aicy serve

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check aicy tests
	$(VENV)/bin/ruff format --check aicy
	$(VENV)/bin/lint-imports

types: $(VENV)/.installed-test
	$(VENV)/bin/mypy aicy

check: lint types

test: check test-servers test-codex
	AICY_REQUIRE_CODEX=1 $(PY) -m pytest

# Independent servers the upstream client is tested against (tests/upstream/test_real_servers.py): a real HTTP
# proxy (tinyproxy), a real SOCKS5 proxy (microsocks), Nginx as a TLS and compressing upstream, with its stream
# module as an HTTPS proxy's TLS front; headless Chromium and its driver for the console's browser test
# (tests/http/test_console_browser.py). Installed once; the tests skip without them only outside `make test`.
test-servers:
	@missing=""; \
	for tool in tinyproxy microsocks nginx chromium; do \
		command -v $$tool >/dev/null || test -x /usr/sbin/$$tool || missing="$$missing $$tool"; \
	done; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	test -e /usr/lib/nginx/modules/ngx_stream_module.so || missing="$$missing libnginx-mod-stream"; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; fi

# Codex CLI (npm @openai/codex), driven end to end through aicy by tests/test_codex_cli.py; installed once into
# tests/.npm (Node.js and npm from apt when missing). The test skips without it only outside `make test`.
CODEX_VERSION := 0.171.0
CODEX_NPM := tests/.npm
test-codex:
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	@test "$$($(CODEX_NPM)/node_modules/.bin/codex --version 2>/dev/null)" = "codex-cli $(CODEX_VERSION)" || \
		npm install --silent --no-save --no-audit --no-fund --prefix $(CODEX_NPM) @openai/codex@$(CODEX_VERSION)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# `make bench`: the benchmark harness (bench/README.md), about eight minutes; never part of `make test`.
# It installs what it needs: aicy's venv, bench/.venv (mock, client, plot), bench/.venv-litellm, wrk.
BENCH_DIR := bench
BENCH_VENV := $(BENCH_DIR)/.venv
LITELLM_VENV := $(BENCH_DIR)/.venv-litellm
LITELLM_SPEC ?= litellm[proxy]==1.108.7
BENCH_ARGS ?=

.PHONY: bench bench-wrk

$(BENCH_VENV)/.installed: $(BENCH_DIR)/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r $(BENCH_DIR)/requirements.txt
	touch $@

$(LITELLM_VENV)/.installed:
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet '$(LITELLM_SPEC)'
	touch $@

bench-wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

bench: $(VENV)/.installed-run $(BENCH_VENV)/.installed $(LITELLM_VENV)/.installed bench-wrk
	cd $(BENCH_DIR) && .venv/bin/python -u -m aicybench $(BENCH_ARGS)

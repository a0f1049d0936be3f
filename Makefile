# Two commands on a fresh machine: `make run` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8000
LINTED := $(wildcard aggregator web tests bench .ci)
# The browser tests' npm tools, pinned by the lock file: axe-core (the accessibility check) and
# Lighthouse (the scores every page is held to). One `npm ci` installs both.
AXE := tests/browser/node_modules/axe-core/axe.min.js
LIGHTHOUSE := tests/browser/node_modules/.bin/lighthouse
BROWSER_TOOLS := $(AXE) $(LIGHTHOUSE)

.PHONY: run test check lint format clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

$(BROWSER_TOOLS) &: tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund
	touch $(BROWSER_TOOLS)

## run: install into .venv, then the main job (scheduler + web front) on the embedded SQLite default
run: $(STAMP)
	$(BIN)/caulbart check
	$(BIN)/caulbart run --host $(HOST) --port $(PORT)

## test: lint, types, then the whole suite on SQLite and the local PostgreSQL
test: $(TEST_STAMP) $(BROWSER_TOOLS) check
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

## bench: every speed figure in one command (ingest vs reader and feedparser on SQLite and
## PostgreSQL, workers 1/2/4 and web processes on PostgreSQL, pages and feeds at 1k/100k stories,
## the home page during a first ingest on SQLite, the start-up of the commands that do not ingest)
BENCH_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
bench: $(TEST_STAMP)
	$(BIN)/python bench/ingest_bench.py --postgres $(BENCH_POSTGRES) $(INGEST_ARGS)
	$(BIN)/python bench/startup_bench.py $(STARTUP_ARGS)
	CAULBART_BENCH_POSTGRES_URL=$(BENCH_POSTGRES) $(BIN)/python bench/scale_bench.py $(SCALE_ARGS)
	$(BIN)/python bench/web_bench.py $(WEB_ARGS)
	$(BIN)/python bench/pages_during_ingest.py $(DURING_ARGS)

## check: ruff (lint + format) and mypy, clean at every commit
check: $(TEST_STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

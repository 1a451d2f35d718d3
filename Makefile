# ConvLens: `make run` serves the app, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
BIN := $(VENV)/bin

.PHONY: run test check lint lint-js bench audit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python -m app.serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

lint: lint-js $(VENV)/.installed-test
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy

# ESLint on static/ with the Node that Debian ships; npm ci again whenever package-lock.json changes.
# Without npm it is skipped on a user's machine and fails under CI.
lint-js:
	@if ! command -v npm >/dev/null 2>&1; then \
	  if [ -n "$$CI" ]; then echo "lint-js: npm is missing (apt-get install nodejs npm)" >&2; exit 1; fi; \
	  echo "lint-js: skipped, npm is missing (apt-get install nodejs npm to lint static/)"; exit 0; \
	fi; \
	if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  npm ci --no-audit --no-fund; \
	fi; \
	npx --no-install eslint static

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: test

bench: $(VENV)/.installed
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/api.py

audit: $(VENV)/.installed-test
	$(BIN)/python scripts/audit.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

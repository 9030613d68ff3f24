# trainops: the two commands of the README.
#   make demo   set up .venv, write the real sample market data, train an example strategy on it (tracked,
#               diagnosed, evaluated) and print what happened
#   make test   set up .venv with the dev tools, then ruff, ruff format --check, mypy, pytest
# Installs follow constraints.txt: the exact versions the test suite last passed with.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first and explicitly: its CPU wheel lies on this disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo quickstart test lint typecheck pytest install lock bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/trainops data sample
	$(BIN)/trainops train strategies/mean_reversion.yaml

# The framework-agnostic quickstart: a plain PyTorch loop on scikit-learn's digits, reported through trainops.
quickstart: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# Record the versions the suite passed with (run after `make test` succeeds on an upgraded environment).
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^trainops' > constraints.txt

bench: $(STAMP)
	@echo "see bench/README.md"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

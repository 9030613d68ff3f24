# trainops: the two commands of the README.
#   make demo   set up .venv, write the real sample market data, train an example strategy on it (tracked,
#               diagnosed, evaluated) and print what happened
#   make test   set up .venv with the dev tools, then ruff, ruff format --check, mypy, pytest; then set up
#               .venv-vision and run the Ultralytics and timm tests (tests_vision/) there
# Installs follow constraints.txt (constraints-vision.txt for .venv-vision): the exact versions the tests last passed with.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first and explicitly: its CPU wheel lies on this disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed
# The vision integrations' tests need torchvision, which exists on this disk only beside torch 2.14.1 (a CUDA build
# of about 5.5 GB that runs on the CPU), so they get their own environment and .venv stays on torch 2.13.0.
VISION_VENV := .venv-vision
VISION_BIN := $(VISION_VENV)/bin
VISION_TORCH := torch==2.14.1 torchvision==0.29.1
VISION_STAMP := $(VISION_VENV)/.installed
# The dashboard's third-party browser code (uPlot, Swagger UI): installed from the npm registry by web/vendor.py as
# web/package-lock.json pins it, and copied into the package's static files (git ignores them).
VENDOR_STAMP := src/trainops/dashboard/static/vendor/.copied
# The browser the dashboard's tests drive (Debian's Chromium; Playwright's own browser builds are never downloaded).
CHROMIUM := /usr/bin/chromium

.PHONY: demo quickstart test lint typecheck pytest pytest-vision install vendor wheel lock lock-vision bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(VENDOR_STAMP): web/package.json web/package-lock.json web/vendor.py
	command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
	$(PYTHON) web/vendor.py
	touch $(VENDOR_STAMP)

$(CHROMIUM):
	command -v apt-get >/dev/null || { echo "the dashboard's tests need Chromium at $(CHROMIUM)"; exit 1; }
	apt-get update -qq && apt-get install -y -qq chromium >/dev/null

install: $(STAMP) $(VENDOR_STAMP)

vendor: $(VENDOR_STAMP)

# A wheel that carries the dashboard (hatch_build.py runs web/vendor.py when its files are missing).
wheel: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .

$(VISION_BIN)/python:
	$(PYTHON) -m venv $(VISION_VENV)

$(VISION_STAMP): pyproject.toml constraints-vision.txt | $(VISION_BIN)/python
	$(VISION_BIN)/pip install --quiet $(VISION_TORCH)
	$(VISION_BIN)/pip install --quiet -c constraints-vision.txt -e '.[vision]' pytest pytest-timeout
	touch $(VISION_STAMP)

demo: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/trainops data sample
	$(BIN)/trainops train strategies/mean_reversion.yaml

# The framework-agnostic quickstart: a plain PyTorch loop on scikit-learn's digits, reported through trainops.
quickstart: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check src tests tests_vision examples bench
	$(BIN)/ruff format --check src tests tests_vision examples bench

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP) $(VENDOR_STAMP) $(CHROMIUM)
	$(BIN)/pytest

# tests/ never collects tests_vision/: the main environment has neither timm nor Ultralytics.
pytest-vision: $(VISION_STAMP)
	$(VISION_BIN)/pytest tests_vision

test: lint typecheck pytest pytest-vision

# Record the versions the suite passed with (run after `make test` succeeds on an upgraded environment).
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^trainops' > constraints.txt

lock-vision: $(VISION_STAMP)
	$(VISION_BIN)/pip freeze --exclude-editable | grep -v '^trainops' > constraints-vision.txt

bench: $(STAMP)
	@echo "see bench/README.md"

clean:
	rm -rf $(VENV) $(VISION_VENV) .mypy_cache .ruff_cache .pytest_cache web/node_modules src/trainops/dashboard/static/vendor

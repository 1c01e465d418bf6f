# The README's two commands: `make demo` (the main job) and `make test`.
# Each does all of its own set-up in .venv on a machine with Python 3.11 and pip.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
PIP    := $(BIN)/python -m pip --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: help setup browser demo test lint typecheck pytest wheel-check fast golden clean

help:
	@echo "make demo   run the train-deploy recipe locally (sets up .venv first)"
	@echo "make test   ruff, mypy, the whole pytest suite and wheel-check (sets up .venv first)"
	@echo "make wheel-check  build the sdist and wheel, install the wheel in a fresh venv, use it"
	@echo "make fast   the test suite without the slow end-to-end tests"
	@echo "make golden regenerate the golden YAML files (on purpose only)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	# torch is an optional extra: pinned to the CPU wheel on disk, never a CUDA build.
	$(PIP) install -q --only-binary=:all: torch==2.13.0 || echo "torch==2.13.0 not installable here: distributed-training tests will be skipped"
	# The llm extra's other half (LLM endpoint tests), after torch so it never resolves torch itself.
	$(PIP) install -q -c constraints.txt transformers tokenizers safetensors huggingface_hub
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

# The dashboard's browser tests drive Debian's chromium and chromedriver. Installing
# them needs root and apt-get; elsewhere those tests skip and say why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium and chromium-driver (Debian) for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver >/dev/null) \
	  || echo "could not install chromium: the browser tests will be skipped"; \
	else echo "chromium is not installed (needs root and apt-get): the browser tests will be skipped"; fi

demo: $(STAMP)
	$(BIN)/workbench recipe run train-deploy --approve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# tests/packaging run in wheel-check, once: they build the sdist and the wheel and install
# the wheel into a fresh venv outside the checkout (about 2 minutes of the whole run).
pytest: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --ignore=tests/packaging $(PYTEST_ARGS)

# What users install: `python -m build` (the sdist, then the wheel built from it), a new
# venv without the checkout on its path, the wheel with its dependencies pinned by
# constraints.txt, then `workbench --help`, `recipe list`, `components`, a small pipeline,
# `init` + `run` + the generated test, and `recipe run sweep-register` in it.
wheel-check: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/packaging $(PYTEST_ARGS)

test: lint typecheck pytest wheel-check

fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

golden: $(STAMP)
	WORKBENCH_REGEN_GOLDEN=1 $(BIN)/python -m pytest tests -k golden $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .workbench .pytest_cache .mypy_cache .ruff_cache

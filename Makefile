# The README's commands: `make demo` (the main job on the embedded default) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser test bench gpu-check demo lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch comes first, pinned, so pip takes it from the local wheel cache instead of resolving
# a newer build; everything else is resolved from pyproject.toml.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# A Chromium the browser tests can drive: found, else installed, else `make test` stops here
# with one line saying what is missing (tests/_chromium.py).
browser: install
	@$(BIN)/python -m tests._chromium

# pytest's own exit status goes through: 5 ("no tests collected") fails like a failure.
test: install browser
	$(BIN)/python -m pytest

bench: install
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

# The CUDA path in one call (one table, < 5 min on one GPU); see benchmarks/gpu_check.py.
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py

demo: install
	$(BIN)/boundsweep demo

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

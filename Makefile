# The README's commands: `make demo` (the main job on the embedded default) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser pgbouncer optuna-oldest test bench gpu-check demo lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch comes first, pinned, so pip takes it from the local wheel cache instead of resolving
# a newer build; everything else is resolved from pyproject.toml. The example plugins
# (examples/) are installed too: the suite runs their real entry points.
$(STAMP): $(BIN)/python pyproject.toml examples/pyproject.toml
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps -e examples/
	touch $(STAMP)

install: $(STAMP)

# A Chromium the browser tests can drive: found, else installed, else `make test` stops here
# with one line saying what is missing (tests/_chromium.py).
browser: install
	@$(BIN)/python -m tests._chromium

# A PgBouncer for the pooled tests and benchmarks/bench_scale.py: found, else installed (Debian's
# package, as root), else `make test` stops here with one line saying what is missing
# (benchmarks/_pgbouncer.py).
pgbouncer: install
	@$(BIN)/python -m benchmarks._pgbouncer

# The Optuna adapter's contract suite on the oldest Optuna (and optuna-dashboard) that
# pyproject.toml admits; the main run covers the newest. The second venv is cached: it reuses
# .venv's packages through a .pth file and holds only its own optuna and optuna-dashboard.
OPTUNA_OLDEST := $(shell sed -n 's/^ *"optuna>=\([0-9.]*\),.*/\1/p' pyproject.toml)
DASHBOARD_OLDEST := $(shell sed -n 's/^ *"optuna-dashboard>=\([0-9.]*\)".*/\1/p' pyproject.toml)
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed-$(OPTUNA_OLDEST)-$(DASHBOARD_OLDEST)

$(OLDEST_STAMP): $(STAMP)
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(BIN)/python -c "import sysconfig; print('import site; site.addsitedir(%r)' % sysconfig.get_paths()['purelib'])" \
		> "$$($(OLDEST)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_boundsweep_venv.pth"
	$(OLDEST)/bin/pip install --quiet --no-deps optuna==$(OPTUNA_OLDEST) optuna-dashboard==$(DASHBOARD_OLDEST)
	touch $@

optuna-oldest: $(OLDEST_STAMP)
	$(OLDEST)/bin/python -c "import optuna, optuna_dashboard as d; \
		assert (optuna.__version__, d.__version__) == ('$(OPTUNA_OLDEST)', '$(DASHBOARD_OLDEST)'), \
		(optuna.__version__, d.__version__); print('optuna', optuna.__version__, 'optuna-dashboard', d.__version__)"
	$(OLDEST)/bin/python -m pytest -q -p no:cacheprovider tests/studies/test_optuna_contract.py tests/test_optuna_boundary.py

# pytest's own exit status goes through: 5 ("no tests collected") fails like a failure.
test: install browser pgbouncer optuna-oldest
	$(BIN)/python -m pytest

bench: install pgbouncer
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

# The CUDA path in one call (one table, < 5 min on one GPU); see benchmarks/gpu_check.py.
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py

demo: install
	$(BIN)/boundsweep demo

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(OLDEST) build *.egg-info .pytest_cache

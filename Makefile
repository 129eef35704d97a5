# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make demo   build the environment, simulate demo data, run the whole pipeline, print a summary
#   make test   build the environment, lint, check the definitions, run the test suite
#   (make test-unit runs the unit tier alone, about a minute; make test-deep the property-based
#   tests with many more examples; make bench the pre-flight checks and the benchmarks)
# The environment is built by uv from uv.lock (uv itself is installed into .tools/ by pip).

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export EQS_HOME ?= $(CURDIR)/.eqs_home
export UV_PYTHON_DOWNLOADS := never
# Python writes the bytecode of what it imports (in .venv and the git-ignored __pycache__/) even
# where PYTHONDONTWRITEBYTECODE is set, as on CI: the test workers and every process a test or a
# run starts (runs, step servers, `dg`) import Dagster, Polars and pandera, and read them
# compiled instead of compiling them again (4.5 s of imports each instead of 2).
export PYTHONDONTWRITEBYTECODE :=

# The suite runs on this many pytest-xdist workers (CI's machine has two cores). Each worker,
# and each process a test starts, keeps Polars and OpenBLAS (NumPy's and SciPy's linear
# algebra) to one thread: both size their pools to the machine's cores, so two workers ran
# twice as many threads as cores, and OpenBLAS's idle threads spin while they wait (the suite
# took a quarter longer).
TEST_WORKERS ?= 2
TEST_THREADS := POLARS_MAX_THREADS=1 OPENBLAS_NUM_THREADS=1
PYTEST := $(TEST_THREADS) .venv/bin/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

.PHONY: env demo test test-unit test-deep lint check-defs dev bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

env: .venv/.synced

demo: env
	.venv/bin/eqs demo --home $(EQS_HOME)

lint: env
	.venv/bin/ruff check eqs_pipeline eqs_pipeline_tests perf
	.venv/bin/ruff format --check eqs_pipeline eqs_pipeline_tests perf

check-defs: env
	VIRTUAL_ENV=$(CURDIR)/.venv .venv/bin/dg check defs

# Everything: the unit tier and the integration tests (pipeline runs, Dagster jobs, processes,
# servers, statistics over many simulated desks; the `integration` marker). Timed and measured
# checks are not tests: they are `make bench`'s pre-flight checks (perf/checks.py).
test: lint check-defs
	$(PYTEST)

# The unit tier alone (the tests not marked `integration`): no pipeline run, no process or
# server started.
test-unit: env
	$(PYTEST) -m "not integration"

# The property-based tests under Hypothesis' "deep" profile (eqs_pipeline_tests/conftest.py):
# 300 examples each instead of a dozen, drawn afresh every run, and the monitoring's targets on
# ten simulated desks instead of one (a few minutes).
test-deep: env
	HYPOTHESIS_PROFILE=deep EQS_MONITOR_SEEDS=10 .venv/bin/python -m pytest -q \
		eqs_pipeline_tests/ingest/test_hostile_properties.py \
		eqs_pipeline_tests/quality/test_properties.py \
		eqs_pipeline_tests/monitor/test_targets.py

dev: env
	mkdir -p $(EQS_HOME)/dagster && cp dagster.yaml $(EQS_HOME)/dagster/dagster.yaml
	DAGSTER_HOME=$(EQS_HOME)/dagster .venv/bin/dagster dev -h 127.0.0.1 -p 3000

# The pre-flight checks (perf/checks.py: the harness on a tiny data set, a case's own peak, a run
# waiting for a pool sleeping), then the benchmarks; stops if a check fails.
bench: env
	.venv/bin/python -m perf.run

# Only what the Makefile builds: EQS_HOME may be a desk's own landing directory, lake and
# warehouse, so clean never deletes it (only the default demo home inside the checkout).
clean:
	rm -rf .venv .tools $(CURDIR)/.eqs_home

"""The executor of every job: Dagster's multiprocess executor (or, by configuration, its
in-process one), with two changes that matter on a small machine.

1. **Step processes fork from a warm server.** Dagster runs each step of a run in its own
   process. Its default start method, `spawn`, starts a fresh interpreter per step that imports
   Dagster, Polars, DuckDB, pandera and every module under `defs/` again: about 4 s per step on
   two cores, more than most daily steps compute. Here the start method is `forkserver` with
   the project preloaded: the server imports all of that once per run and each step is a fork
   of it (about 0.3 s from launch to the step's first line). Only imports happen in the server:
   no module under `defs/` runs a Polars or DuckDB query at import time, so the server has no
   worker threads that a fork could leave half-copied.

2. **A run waiting for a pool sleeps.** When a step is blocked by a pool (the one-slot
   `duckdb_warehouse` pool of the loading step) and nothing else of the run is in flight,
   Dagster 1.13's run loop retries without sleeping: `get_steps_to_execute` returns nothing
   until the claim's back-off interval has passed and the loop goes round again at once
   (the in-process loop means to sleep, but `interval_to_next_pending_claim_check` returns
   `min(0, ...)`, never a positive wait). The run's coordinating process spins at 100% of a
   core until the slot frees. In a parallel backfill on two cores, every run queued behind the
   pool burned a core that the run holding the pool needed, and the parallel backfill was
   slower than a serial one. This executor's loop sleeps `IDLE_POLL_S` whenever it has nothing
   to start and nothing in flight. `make bench`'s pre-flight check (`perf/pool_wait.py`)
   measures the CPU time of a run waiting for a held slot.

**Steps in the run's own process, by configuration.** A launched run pays its process's start
(the interpreter, imports and the definitions: 6.6-8.1 s here) and then, on the multiprocess
executor, the fork server's and the step processes' start (6.3-7.1 s more), against about 5 s of
work for a 200k-fill trade date. Where partitions are that small and the machine has few cores,
a backfill of several runs at once already keeps the cores busy, and running every step in its
run's process is faster (docs/PERFORMANCE.md, "Backfill": 1.9-2.2x one multiprocess run at a
time, 1.3-1.45x two). `in_process: true` in the run's executor config, or
`EQS_EXECUTOR=in_process` in the environment of the processes that run the runs, selects
Dagster's in-process executor, with the same patient wait for a pool. Pools, retries and checks
are the same; only steps that could run side by side within one run (the quality and venue
branches) then run one after the other.
"""

import os
import pkgutil
import time
from collections.abc import Iterator, Sequence

import dagster as dg
from dagster._core.execution.plan import active
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.step import ExecutionStep
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor import multiprocess
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.executor.multiprocess import MultiprocessExecutor

import eqs_pipeline.defs

IDLE_POLL_S = 0.2
"""Sleep of a run loop that has nothing to start and nothing in flight (it waits for a pool
slot or a retry delay; Dagster re-checks a blocked claim after 1 s, growing to 15 s)."""

EXECUTOR_ENV = "EQS_EXECUTOR"
"""`in_process` runs every step of a run in the run's process; `multiprocess` (the default) forks
a process per step. A run's `in_process` executor config wins."""


def project_modules() -> list[str]:
    """Every module under `eqs_pipeline.defs`: what `load_from_defs_folder` imports."""
    return sorted(
        module.name
        for module in pkgutil.walk_packages(eqs_pipeline.defs.__path__, "eqs_pipeline.defs.")
    )


RUNTIME_MODULES = [
    # The instance's SQLite storages (SQLAlchemy, Alembic), opened by every step process.
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "alembic.command",
    # pandera's Polars backend, registered on the first validation of a step.
    "pandera.backends.polars.register",
    # The tables' pandera schemas, imported by the first check a step runs.
    "eqs_pipeline.tables.schemas",
    "pandera.backends.polars.builtin_checks",
    # Parquet datasets and paths of the lake.
    "pyarrow.dataset",
    "upath",
]
"""Modules that steps import lazily, on first use: about 2 s per step when imported there.
A name a future version no longer has is skipped by the fork server (it ignores ImportError)."""

PRELOAD_MODULES = ["dagster", *project_modules(), *RUNTIME_MODULES, "eqs_pipeline.runtime.preload"]
"""What the fork server imports before it forks a step process; the last builds the
definitions."""


class _PatientActiveExecution(ActiveExecution):
    """Dagster's plan state machine, pausing `IDLE_POLL_S` when the run has nothing to start
    and nothing in flight (a step blocked by a pool)."""

    def get_steps_to_execute(self, limit: int | None = None) -> Sequence[ExecutionStep]:
        steps = super().get_steps_to_execute(limit)
        if not steps and not self.has_in_flight_steps and not self.is_complete:
            time.sleep(IDLE_POLL_S)
        return steps


def _patiently(module, steps: Iterator[dg.DagsterEvent]) -> Iterator[dg.DagsterEvent]:
    """`steps` with `module.ActiveExecution`, the name the run loop builds its plan state from,
    swapped for the patient one while they run (a run's coordinating process runs one plan at
    a time)."""
    original = module.ActiveExecution
    module.ActiveExecution = _PatientActiveExecution
    try:
        yield from steps
    finally:
        module.ActiveExecution = original


class PatientMultiprocessExecutor(MultiprocessExecutor):
    """Dagster's multiprocess executor whose run loop sleeps while it waits for a pool."""

    def execute(self, plan_context, execution_plan) -> Iterator[dg.DagsterEvent]:
        yield from _patiently(multiprocess, super().execute(plan_context, execution_plan))


class PatientInProcessExecutor(InProcessExecutor):
    """Dagster's in-process executor whose run loop sleeps while it waits for a pool (its loop
    has the same spin; the plan builds its state from `active.ActiveExecution`)."""

    def execute(self, plan_context, execution_plan) -> Iterator[dg.DagsterEvent]:
        yield from _patiently(active, super().execute(plan_context, execution_plan))


def in_process_by_default() -> bool:
    """Whether `EQS_EXECUTOR` asks for the in-process executor (read when a run starts)."""
    value = os.environ.get(EXECUTOR_ENV, "multiprocess").strip().lower()
    if value not in ("multiprocess", "in_process"):
        raise ValueError(f"{EXECUTOR_ENV}={value!r}: expected 'multiprocess' or 'in_process'")
    return value == "in_process"


@dg.executor(
    name="eqs_multiprocess",
    config_schema={
        "max_concurrent": dg.Field(
            int,
            is_required=False,
            description="Steps of one run at once (default: the number of CPUs).",
        ),
        "retries": get_retries_config(),
        "in_process": dg.Field(
            bool,
            is_required=False,
            description="Run every step in the run's own process (faster for small partitions "
            "backfilled several runs at once on few cores). Default: EQS_EXECUTOR=in_process "
            "in the environment, else false.",
        ),
    },
    requirements=dg.multiple_process_executor_requirements(),
)
def executor(
    init_context: dg.InitExecutorContext,
) -> PatientMultiprocessExecutor | PatientInProcessExecutor:
    """Each step in its own process, forked from a server that preloaded the project, or every
    step in the run's process (`in_process`); a run waiting for a pool sleeps instead of
    spinning (eqs_pipeline/runtime/executor.py)."""
    config = init_context.executor_config
    in_process = config.get("in_process")
    if in_process if in_process is not None else in_process_by_default():
        return PatientInProcessExecutor(retries=RetryMode.from_config(config["retries"]))
    return PatientMultiprocessExecutor(
        retries=RetryMode.from_config(config["retries"]),
        max_concurrent=config.get("max_concurrent"),
        start_method="forkserver",
        explicit_forkserver_preload=PRELOAD_MODULES,
    )

"""A run waiting for a pool slot sleeps instead of spinning on a core (eqs_pipeline/runtime/
executor.py), with its steps in their own processes or in the run's.

Measured, not unit-tested: a slot of a one-slot pool is claimed by a stand-in run, a job whose
one step needs that pool is launched in a fresh process (as a run launcher starts a run), and
the process's CPU time is read from /proc over a few seconds while its step is blocked.
Dagster's own loop spins there: about one CPU second per second of waiting. `perf.checks` runs
this before the benchmark (`make bench`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from eqs_pipeline.runtime.executor import EXECUTOR_ENV, executor

ROOT = Path(__file__).parents[1]
POOL = "eqs_test_pool"
HOLDER_RUN = "holder-run"
BLOCKED_WINDOW_S = 3.0
# At most this share of one core while blocked (a spinning loop uses about all of it).
MAX_CPU_SHARE = 0.2


@dg.op(pool=POOL)
def pooled_op() -> None:
    """Stands for the warehouse load: a step that needs the pool's one slot."""


@dg.job(executor_def=executor)
def pooled_job() -> None:
    pooled_op()


# Dagster's engine event at the start of a run, by executor.
STARTED = {
    "multiprocess": "Executing steps using multiprocess executor",
    "in_process": "Executing steps in process",
}

# Runs the pooled job; exits 0 when it succeeded on the executor named in argv[1].
RUN_POOLED_JOB = f"""
import sys
import dagster as dg
from {__name__} import STARTED, pooled_job

with dg.DagsterInstance.get() as instance:
    result = dg.execute_job(dg.reconstructable(pooled_job), instance=instance)
messages = [e.message or "" for e in result.all_events]
sys.exit(0 if result.success and any(STARTED[sys.argv[1]] in m for m in messages) else 1)
"""


@dataclass(frozen=True)
class PoolWait:
    steps: str  # "multiprocess" or "in_process"
    cpu_s: float  # CPU seconds the waiting run used over the window
    window_s: float
    run_ok: bool  # the run went on once the slot was freed, and on the named executor
    output: str = ""  # the end of the run's output, where it failed

    @property
    def limit_s(self) -> float:
        return MAX_CPU_SHARE * self.window_s

    @property
    def passed(self) -> bool:
        return self.run_ok and self.cpu_s < self.limit_s


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_until_blocked(instance: dg.DagsterInstance, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in instance.get_runs():
            if any(
                "blocked by limit for pool" in (entry.user_message or "")
                for entry in instance.all_logs(run.run_id)
            ):
                return
        time.sleep(0.2)
    raise RuntimeError(f"the run did not report a step blocked by the pool {POOL}")


def measure(steps: str, window_s: float = BLOCKED_WINDOW_S) -> PoolWait:
    """The CPU a run uses while its step waits `window_s` for the pool, its steps placed by
    EQS_EXECUTOR=`steps`, in a temporary Dagster home (this repository's dagster.yaml)."""
    from perf.backfill import use_home

    saved = {k: os.environ.get(k) for k in (EXECUTOR_ENV, "EQS_HOME", "DAGSTER_HOME")}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="eqs-pool-wait-") as home,
            tempfile.TemporaryFile() as log,
        ):
            os.environ[EXECUTOR_ENV] = steps
            use_home(Path(home))
            with dg.DagsterInstance.get() as instance:
                storage = instance.event_log_storage
                storage.set_concurrency_slots(POOL, 1)
                claimed = storage.claim_concurrency_slot(POOL, HOLDER_RUN, "holder_step")
                if not claimed.is_claimed:
                    raise RuntimeError(f"could not claim the slot of {POOL}")
                child = subprocess.Popen(
                    [sys.executable, "-c", RUN_POOLED_JOB, steps],
                    cwd=ROOT,
                    env=os.environ.copy(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    _wait_until_blocked(instance)
                    before = cpu_seconds(child.pid)
                    time.sleep(window_s)
                    used = cpu_seconds(child.pid) - before
                except BaseException:
                    child.kill()
                    raise
                finally:
                    storage.free_concurrency_slots_for_run(HOLDER_RUN)
                try:
                    run_ok = child.wait(timeout=180) == 0
                except subprocess.TimeoutExpired:
                    child.kill()
                    run_ok = False
            log.seek(0)
            output = "" if run_ok else log.read().decode(errors="replace")[-2000:]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return PoolWait(steps, used, window_s, run_ok, output)

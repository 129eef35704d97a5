"""The project's executor (eqs_pipeline/runtime/executor.py): every job uses it, its fork server can
import everything it is told to preload, a run waiting for a pool slot sleeps instead of
spinning on a core (with its steps in their own processes or in the run's), and EQS_EXECUTOR or
the run's config choose where the steps run."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from eqs_pipeline.definitions import defs
from eqs_pipeline.runtime.executor import (
    EXECUTOR_ENV,
    PRELOAD_MODULES,
    executor,
    in_process_by_default,
    project_modules,
)
from perf.backfill import use_home

POOL = "eqs_test_pool"
HOLDER_RUN = "holder-run"
BLOCKED_WINDOW_S = 3.0


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


def test_every_job_runs_on_the_project_executor() -> None:
    jobs = defs().resolve_all_job_defs()
    assert jobs
    assert {job.name: job.executor_def.name for job in jobs} == {
        job.name: "eqs_multiprocess" for job in jobs
    }


def test_the_fork_server_can_import_every_preloaded_module() -> None:
    # The fork server skips a module it cannot import; a renamed module would silently make
    # every step import it again.
    assert "eqs_pipeline.defs.warehouse.assets" in project_modules()
    for name in PRELOAD_MODULES:
        importlib.import_module(name)


def _cpu_seconds(pid: int) -> float:
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
    raise AssertionError(f"the run did not report a step blocked by the pool {POOL}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("steps", ["multiprocess", "in_process"])
def test_a_run_waiting_for_a_pool_sleeps(
    steps: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its steps in their own processes or, by EQS_EXECUTOR, in the run's process."""
    monkeypatch.setenv(EXECUTOR_ENV, steps)
    monkeypatch.setenv("EQS_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    use_home(tmp_path)
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 1)
        assert storage.claim_concurrency_slot(POOL, HOLDER_RUN, "holder_step").is_claimed
        child = subprocess.Popen(
            [sys.executable, "-c", RUN_POOLED_JOB, steps], env=os.environ.copy()
        )
        try:
            _wait_until_blocked(instance)
            before = _cpu_seconds(child.pid)
            time.sleep(BLOCKED_WINDOW_S)
            used = _cpu_seconds(child.pid) - before
        finally:
            storage.free_concurrency_slots_for_run(HOLDER_RUN)
        assert child.wait(timeout=180) == 0, f"the pooled run failed, or not on {steps}"
    # Dagster's own loop spins here: about one CPU second per second of waiting.
    assert used < 0.2 * BLOCKED_WINDOW_S, f"{used:.2f} CPU s while waiting {BLOCKED_WINDOW_S} s"


def test_a_runs_config_chooses_where_its_steps_run_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "multiprocess")
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(pooled_job),
            instance=instance,
            run_config={"execution": {"config": {"in_process": True}}},
        )
        assert result.success
        assert any(STARTED["in_process"] in (e.message or "") for e in result.all_events)


def test_eqs_executor_is_read_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert not in_process_by_default()
    monkeypatch.setenv(EXECUTOR_ENV, " In_Process ")
    assert in_process_by_default()
    monkeypatch.setenv(EXECUTOR_ENV, "inprocess")  # a typo must not silently mean multiprocess
    with pytest.raises(ValueError, match="EQS_EXECUTOR='inprocess'"):
        in_process_by_default()

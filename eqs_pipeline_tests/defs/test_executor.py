"""The project's executor (eqs_pipeline/runtime/executor.py): every job uses it, its fork server can
import everything it is told to preload, and EQS_EXECUTOR or the run's config choose where the
steps run.

That a run waiting for a pool slot sleeps instead of spinning on a core is measured, not tested
here: the pre-flight check `pool wait` of `make bench` (perf/pool_wait.py)."""

from __future__ import annotations

import importlib

import dagster as dg
import pytest

from eqs_pipeline.definitions import defs
from eqs_pipeline.runtime.executor import (
    EXECUTOR_ENV,
    PRELOAD_MODULES,
    in_process_by_default,
    project_modules,
)
from perf.pool_wait import STARTED, pooled_job


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


@pytest.mark.integration
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

"""A backfill of daily partitions as concurrent runs against one persistent Dagster instance.

Each partition is its own run in a fresh interpreter, as a run launcher starts one (`dagster api
execute_run`): the process imports Dagster and the project and builds the definitions itself,
then runs the partition with `dg.execute_job` on the project's executor, with steps forked from
a warm server (multiprocess) or every step in that process (`in_process`; eqs_pipeline/
executor.py); at most `width` runs at once, all sharing one DAGSTER_HOME that carries
the project's dagster.yaml. The pool `duckdb_warehouse` is enforced across the runs by
the instance's event-log storage (op-level concurrency slots): its slot count is set explicitly
here, and `step_intervals` / `max_overlap` read the runs' event logs back to show that the
steps holding the pool never overlapped while the compute steps did.

Used by the benchmark's backfill case and by eqs_pipeline_tests/defs/test_parallel_backfill.py.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from eqs_pipeline.defs.resources import WAREHOUSE_POOL

ROOT = Path(__file__).parents[1]
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class RunOutcome:
    partition: str
    run_id: str
    success: bool
    errors: str


def use_home(home: Path, landing: Path | None = None) -> Path:
    """Point EQS_HOME and DAGSTER_HOME (with this repository's dagster.yaml) at `home`."""
    home.mkdir(parents=True, exist_ok=True)
    if landing is not None and not (home / "landing").exists():
        (home / "landing").symlink_to(landing.resolve())
    (home / "dagster").mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    os.environ["EQS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    return home


def daily_job() -> dg.JobDefinition:
    """The project's daily job (resources from EQS_HOME), for `dg.reconstructable`."""
    from eqs_pipeline.definitions import defs
    from eqs_pipeline.defs.jobs import DAILY_JOB

    return defs().resolve_job_def(DAILY_JOB)


def run_reference() -> None:
    """Stage the instruments (the daily partitions read them) and set the pool's one slot."""
    from eqs_pipeline.definitions import defs
    from eqs_pipeline.defs.jobs import REFERENCE_JOB

    with dg.DagsterInstance.get() as instance:
        result = (
            defs()
            .resolve_job_def(REFERENCE_JOB)
            .execute_in_process(instance=instance, run_config=QUIET)
        )
        assert result.success, "the reference job failed"
        # dagster.yaml's `concurrency.pools.default_limit: 1` would create the slot on first
        # claim; set it explicitly so the limit does not depend on that default.
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        assert info.slot_count == 1, info


def run_partition(partition: str, executor: str = "multiprocess") -> RunOutcome:
    """One partition as its own run, coordinated by the calling process, on the project's
    executor: steps in their own processes (`multiprocess`) or in this one (`in_process`, the
    executor's `in_process` config)."""
    if executor not in ("multiprocess", "in_process"):
        raise ValueError(f"executor must be 'multiprocess' or 'in_process', not {executor!r}")
    run_config = {**QUIET, "execution": {"config": {"in_process": executor == "in_process"}}}
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(daily_job),
            instance=instance,
            tags={"dagster/partition": partition},
            run_config=run_config,
            raise_on_error=False,
        )
        errors = [
            f"{e.step_key}: {e.step_failure_data.error.to_string()}"
            for e in result.all_events
            if e.is_step_failure and e.step_failure_data and e.step_failure_data.error
        ]
        return RunOutcome(partition, result.run_id, result.success, "\n".join(errors))


def run_queued(
    partitions: list[str], width: int, executor: str | list[str] = "multiprocess"
) -> list[RunOutcome]:
    """Every partition as its own run, at most `width` runs at once, each in a fresh process:
    what a backfill does through a run queue whose `max_concurrent_runs` is `width`.
    `executor`: one for every run, or one per partition.

    The processes are spawned, not forked, and each runs one partition: a run launcher's
    process starts cold and imports everything (several seconds here), and a fork of this
    process would inherit its imports and hide that cost.
    """
    executors = [executor] * len(partitions) if isinstance(executor, str) else executor
    if len(executors) != len(partitions):
        raise ValueError(f"{len(executors)} executors for {len(partitions)} partitions")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=width, mp_context=spawn, max_tasks_per_child=1) as pool:
        return list(pool.map(run_partition, partitions, executors))


def step_intervals(run_ids: list[str]) -> list[tuple[str, str, float, float]]:
    """(run_id, step_key, start, end) of every step that started, from the instance's logs."""
    out = []
    with dg.DagsterInstance.get() as instance:
        for run_id in run_ids:
            starts: dict[str, float] = {}
            for entry in instance.all_logs(run_id):
                event = entry.dagster_event
                if event is None or event.step_key is None:
                    continue
                if event.event_type_value == "STEP_START":
                    starts[event.step_key] = entry.timestamp
                elif (
                    event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE")
                    and event.step_key in starts
                ):
                    out.append((run_id, event.step_key, starts[event.step_key], entry.timestamp))
    return out


def max_overlap(intervals: list[tuple[str, str, float, float]]) -> int:
    """The largest number of the given steps running at the same instant."""
    edges = sorted([(s, 1) for *_, s, _ in intervals] + [(e, -1) for *_, e in intervals])
    running = peak = 0
    for _, delta in edges:
        running += delta
        peak = max(peak, running)
    return peak


def pool_step_keys() -> set[str]:
    """Step keys of the daily job that take the pool (the ones that open the DuckDB file)."""
    job = daily_job()
    return {
        node.name
        for node in job.graph.node_dict.values()
        if getattr(node.definition, "pool", None) == WAREHOUSE_POOL
    }

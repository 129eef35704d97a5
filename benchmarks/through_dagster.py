"""Daily partitions through Dagster: one partition against the pure computation, and a backfill
of several partitions, serial in one process versus parallel runs on the multiprocess executor.

Each case builds a fresh EQS home under the work folder: `landing` links to the cached data set,
the Dagster instance (DAGSTER_HOME) carries the project's dagster.yaml, whose pool
`duckdb_warehouse` (one slot) serializes every step that writes the warehouse.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import dagster as dg

from benchmarks.datasets import trade_dates

ROOT = Path(__file__).parents[1]


def _home(folder: Path, workdir: Path | None) -> Path:
    home = Path(tempfile.mkdtemp(prefix="eqs-bench-", dir=workdir))
    (home / "landing").symlink_to(folder.resolve())
    (home / "dagster").mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    os.environ["EQS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    return home


def daily_job() -> dg.JobDefinition:
    """The project's daily job (resources from EQS_HOME), for `dg.reconstructable`."""
    from eqs_pipeline.definitions import defs
    from eqs_pipeline.defs.jobs import DAILY_JOB

    return defs().resolve_job_def(DAILY_JOB)


def _reference(instance: dg.DagsterInstance) -> None:
    from eqs_pipeline.definitions import defs
    from eqs_pipeline.defs.jobs import REFERENCE_JOB
    from eqs_pipeline.runner import QUIET_LOGGING

    result = (
        defs()
        .resolve_job_def(REFERENCE_JOB)
        .execute_in_process(instance=instance, run_config=QUIET_LOGGING)
    )
    assert result.success


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    starts, out = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            out[event.step_key] = entry.timestamp - starts[event.step_key]
    return out


def _pure(home: Path, day: date) -> dict:
    """The quality and venue-daily computation of the partition from its staged rows."""
    from benchmarks.cases import pipeline_frames
    from eqs_pipeline import warehouse
    from eqs_pipeline.defs.quality.assets import read_staged

    start = time.perf_counter()
    con = warehouse.connect(home / "warehouse.duckdb", read_only=True)
    frames = {
        t: read_staged(con, t, day).collect()
        for t in ("executions", "quotes", "orders", "market_trades", "child_orders")
    }
    frames["instruments"] = warehouse.read_table(con, "staging.instruments")
    con.close()
    read = time.perf_counter() - start
    start = time.perf_counter()
    pipeline_frames(frames)
    return {"read_s": read, "compute_s": time.perf_counter() - start}


def one_partition(folder: Path, workdir: Path | None) -> dict:
    from eqs_pipeline.runner import QUIET_LOGGING

    home = _home(folder, workdir)
    day = trade_dates(folder)[0]
    with dg.DagsterInstance.get() as instance:
        _reference(instance)
        start = time.perf_counter()
        result = daily_job().execute_in_process(
            instance=instance, partition_key=day.isoformat(), run_config=QUIET_LOGGING
        )
        wall = time.perf_counter() - start
        steps = _step_seconds(instance, result.run_id)
    pure = _pure(home, day)
    shutil.rmtree(home)
    quality = {k: v for k, v in steps.items() if not k.startswith("staging")}
    return {
        "date": day.isoformat(),
        "dagster_s": wall,
        "steps": steps,
        "ingest_s": sum(v for k, v in steps.items() if k.startswith("staging")),
        "quality_steps_s": sum(quality.values()),
        **pure,
    }


def _run_partition(day: str) -> tuple[bool, str]:
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(daily_job),
            instance=instance,
            tags={"dagster/partition": day},
            raise_on_error=False,
        )
        errors = [
            e.step_failure_data.error.to_string()
            for e in result.all_events
            if e.is_step_failure and e.step_failure_data and e.step_failure_data.error
        ]
        return result.success, "\n".join(errors)


def backfill(folder: Path, workdir: Path | None, dates: int, parallel: bool) -> dict:
    from eqs_pipeline.runner import QUIET_LOGGING

    home = _home(folder, workdir)
    days = [d.isoformat() for d in trade_dates(folder)[: dates or None]]
    with dg.DagsterInstance.get() as instance:
        _reference(instance)
    start = time.perf_counter()
    if parallel:
        with ProcessPoolExecutor(max_workers=len(days)) as pool:
            outcomes = list(pool.map(_run_partition, days))
    else:
        job = daily_job()
        with dg.DagsterInstance.get() as instance:
            outcomes = [
                (
                    job.execute_in_process(
                        instance=instance,
                        partition_key=d,
                        run_config=QUIET_LOGGING,
                        raise_on_error=False,
                    ).success,
                    "",
                )
                for d in days
            ]
    wall = time.perf_counter() - start
    shutil.rmtree(home)
    failures = [err for ok, err in outcomes if not ok]
    return {
        "partitions": len(days),
        "backfill_s": wall,
        "failed": len(failures),
        "lock_errors": sum("lock" in err.lower() for err in failures),
        "first_error": failures[0][-2000:] if failures else None,
    }


def run_case(case: str, folder: Path, workdir: Path | None, dates: int) -> dict:
    if case == "dagster":
        return one_partition(folder, workdir)
    return backfill(folder, workdir, dates, parallel=case == "backfill-parallel")

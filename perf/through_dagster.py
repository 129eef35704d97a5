"""Daily partitions through Dagster: one partition against the pure computation, and a backfill
of several partitions, serial in one process versus parallel runs on the multiprocess executor.

Each case builds a fresh EQS home under the work folder: `landing` links to the cached data set,
the Dagster instance (DAGSTER_HOME) carries the project's dagster.yaml, whose pool
`duckdb_warehouse` (one slot) serializes the steps that open the warehouse (the daily load
step); the compute steps read and write the Parquet lake under the home and run in parallel.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg

from perf.backfill import daily_job, use_home
from perf.datasets import trade_dates


def _home(folder: Path, workdir: Path | None) -> Path:
    home = Path(tempfile.mkdtemp(prefix="eqs-bench-", dir=workdir))
    return use_home(home, folder)


def _reference(instance: dg.DagsterInstance) -> None:
    from eqs_pipeline.definitions import defs
    from eqs_pipeline.defs.jobs import REFERENCE_JOB
    from eqs_pipeline.runtime.runner import QUIET_LOGGING

    result = (
        defs()
        .resolve_job_def(REFERENCE_JOB)
        .execute_in_process(instance=instance, run_config=QUIET_LOGGING)
    )
    assert result.success


# The modules whose steps validate and describe their frames: the daily steps through
# `defs.batch` (one check and one description per run), the others themselves.
ASSET_MODULES = (
    "eqs_pipeline.defs.ingest.assets",
    "eqs_pipeline.defs.venues.assets",
    "eqs_pipeline.defs.batch",
)
# (module[:class], name, returns a LazyFrame) of what the daily job's steps call, by phase. A
# lazy result is collected inside the timer, so its work counts where it belongs. No wrapped
# function calls another (each second counts once).
PHASES: dict[str, list[tuple[str, str, bool]]] = {
    "ingest: landing read, row rules and the conservation check's recount": [
        ("eqs_pipeline.defs.ingest.assets", "read_table", False),
        ("eqs_pipeline.defs.ingest.assets", "validate_partition", False),
        ("eqs_pipeline.defs.ingest.checks", "count_landed_rows", False),
    ],
    "quality and venue-daily computation": [
        # What the quality step's `score_day` calls (it reads through `lake.read`, below).
        ("eqs_pipeline.quality.day", "prepare_quotes", False),
        # On a second thread, overlapping prepare_quotes and the fill scoring.
        ("eqs_pipeline.quality.day", "prepare_fills", False),
        ("eqs_pipeline.quality.day", "prepare_trades", False),
        ("eqs_pipeline.quality.day", "fill_quality", True),
        ("eqs_pipeline.quality.day", "order_quality", True),
        ("eqs_pipeline.defs.quality.assets", "build_events", False),
        # What the venue_daily step's `venue_day` calls (it reads through `lake.read`, too).
        ("eqs_pipeline.venues.frames", "venue_frames", False),
        ("eqs_pipeline.venues.daily", "venue_sums", False),
        ("eqs_pipeline.venues.daily:VenueSums", "daily", False),
        ("eqs_pipeline.venues.daily:VenueSums", "buckets", False),
    ],
    "Parquet lake reads and writes, JSON Lines export": [
        ("eqs_pipeline.storage.lake", "read", False),
        ("eqs_pipeline.storage.lake", "count", False),
        ("eqs_pipeline.storage.lake", "write", False),
        ("eqs_pipeline.defs.quality.assets", "write_events_jsonl", False),
    ],
    "DuckDB load of the trade date (pooled step)": [
        ("eqs_pipeline.storage.warehouse", "load_days", False),
        ("eqs_pipeline.storage.warehouse", "count_partitions", False),
    ],
    "pandera schema checks": [(m, "schema_check_result", False) for m in ASSET_MODULES],
    "materialization metadata": [(m, "frame_metadata", False) for m in ASSET_MODULES],
    "Dagster event log writes (SQLite)": [
        (
            "dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage",
            "store_event",
            False,
        ),
    ],
}


@contextmanager
def timed_phases() -> Iterator[dict[str, float]]:
    """Wrap what the steps call (see PHASES) with timers; yields the seconds per phase, filled in
    when the block ends. A phase's seconds are the wall time covered by its calls (the fills
    and the tape are prepared on a second thread while the quotes are prepared and the fills
    scored: overlapping seconds count once); the key `ACCOUNTED` holds the wall time covered by
    any phase."""
    spans: dict[str, list[tuple[float, float]]] = {phase: [] for phase in PHASES}
    seconds: dict[str, float] = {}
    patched = []

    def timer(phase: str, fn, lazy: bool):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
                return out.collect().lazy() if lazy else out
            finally:
                spans[phase].append((start, time.perf_counter()))

        return wrapper

    for phase, targets in PHASES.items():
        for owner_name, name, lazy in targets:
            module_name, _, class_name = owner_name.partition(":")
            owner = importlib.import_module(module_name)
            owner = getattr(owner, class_name) if class_name else owner
            original = getattr(owner, name)
            patched.append((owner, name, original))
            setattr(owner, name, timer(phase, original, lazy))
    try:
        yield seconds
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)
        seconds.update({phase: _covered(s) for phase, s in spans.items()})
        seconds[ACCOUNTED] = _covered([span for s in spans.values() for span in s])


ACCOUNTED = "accounted"


def _covered(spans: list[tuple[float, float]]) -> float:
    """Length of the union of time intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _pure(home: Path, day: date) -> dict:
    """The quality and venue-daily computation of the partition from its staged rows."""
    from eqs_pipeline.defs.lake_io import read_lake, read_staged
    from eqs_pipeline.defs.resources import EqsPathsResource
    from perf.cases import pipeline_frames

    start = time.perf_counter()
    paths = EqsPathsResource(home=str(home))
    frames = {
        t: read_staged(paths, t, day).collect()
        for t in ("executions", "quotes", "orders", "market_trades", "child_orders")
    }
    frames["instruments"] = read_lake(paths, "staging.instruments", None).collect()
    read = time.perf_counter() - start
    start = time.perf_counter()
    pipeline_frames(frames)
    return {"read_s": read, "compute_s": time.perf_counter() - start}


def one_partition(folder: Path, workdir: Path | None) -> dict:
    """The first trade date through the daily job in this (warm) process, its time split by
    phase; the same partition again as a launched run, in a fresh process, with the in-process
    and then the project's multiprocess executor; and the pure computation."""
    from eqs_pipeline.runtime.runner import QUIET_LOGGING
    from perf.backfill import run_queued

    home = _home(folder, workdir)
    day = trade_dates(folder)[0]
    with dg.DagsterInstance.get() as instance:
        _reference(instance)
        job = daily_job()
        with timed_phases() as phases:
            start = time.perf_counter()
            result = job.execute_in_process(
                instance=instance, partition_key=day.isoformat(), run_config=QUIET_LOGGING
            )
            wall = time.perf_counter() - start
        assert result.success
    launched = {}
    for executor in ("in_process", "multiprocess"):
        start = time.perf_counter()
        [outcome] = run_queued([day.isoformat()], 1, executor)
        launched[executor] = time.perf_counter() - start
        assert outcome.success, outcome.errors
    pure = _pure(home, day)
    shutil.rmtree(home)
    return {
        "date": day.isoformat(),
        "dagster_s": wall,
        "phases": {k: v for k, v in phases.items() if k != ACCOUNTED},
        "bookkeeping_s": wall - phases[ACCOUNTED],
        "fresh_inprocess_s": launched["in_process"],
        "multiprocess_s": launched["multiprocess"],
        **pure,
    }


def backfill(folder: Path, workdir: Path | None, dates: int, mode: str) -> dict:
    """N partitions against one instance (`perf.backfill`), each its own run in a fresh
    process, in one of five modes: `serial` (one run after the other on the project's
    multiprocess executor: a backfill with one run at a time), `parallel` (as many runs at once
    as the machine has cores), `all` (every run at once), and `inprocess` / `parallel-inprocess`
    (one at a time / one per core, every step of a run in its run's process)."""
    from perf import backfill as bf

    home = _home(folder, workdir)
    days = [d.isoformat() for d in trade_dates(folder)[: dates or None]]
    bf.run_reference()
    cores = os.cpu_count() or 1
    width, executor = {
        "serial": (1, "multiprocess"),
        "parallel": (cores, "multiprocess"),
        "all": (len(days), "multiprocess"),
        "inprocess": (1, "in_process"),
        "parallel-inprocess": (cores, "in_process"),
    }[mode]
    start = time.perf_counter()
    outcomes = bf.run_queued(days, width, executor)
    wall = time.perf_counter() - start
    intervals = bf.step_intervals([o.run_id for o in outcomes])
    pooled = bf.pool_step_keys()
    loaded = _loaded_partitions(home, days)
    shutil.rmtree(home)
    failures = [o.errors for o in outcomes if not o.success]
    return {
        "partitions": len(days),
        "runs_at_once": width,
        "backfill_s": wall,
        "failed": len(failures),
        "lock_errors": sum("lock" in err.lower() for err in failures),
        "max_concurrent_steps": bf.max_overlap(intervals),
        "max_concurrent_pool_steps": bf.max_overlap([i for i in intervals if i[1] in pooled]),
        "pool_step_s": sum(e - s for _, k, s, e in intervals if k in pooled),
        "partitions_loaded_once": loaded,
        "first_error": failures[0][-2000:] if failures else None,
    }


def _loaded_partitions(home: Path, days: list[str]) -> bool:
    """Every trade date is in the warehouse exactly once (fills unique, orders per date)."""
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        fills, distinct, loaded = con.execute(
            "select count(*), count(distinct exec_id), count(distinct trade_date) "
            "from quality.fill_quality"
        ).fetchall()[0]
    return fills == distinct and loaded == len(days)


def run_case(case: str, folder: Path, workdir: Path | None, dates: int) -> dict:
    if case == "dagster":
        return one_partition(folder, workdir)
    return backfill(folder, workdir, dates, mode=case.removeprefix("backfill-"))

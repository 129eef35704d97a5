"""The landing sensor requests new and changed trade dates, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from eqs_pipeline.defs.ingest.sensors import landing_sensor
from eqs_pipeline.defs.jobs import DAILY_JOB, REFERENCE_JOB
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline_tests.conftest import simulate_small


def _tick(paths: EqsPathsResource, cursor: str | None):
    with dg.build_sensor_context(cursor=cursor, resources={"paths": paths}) as context:
        return landing_sensor(context)


def test_sensor_requests_new_then_only_changed_dates(tmp_path: Path) -> None:
    landing = simulate_small(tmp_path / "landing")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing))

    first = _tick(paths, None)
    requested = {(r.job_name, r.partition_key) for r in first.run_requests}
    days = sorted(p.name.removeprefix("date=") for p in (landing / "orders").iterdir())
    assert requested == {(REFERENCE_JOB, None), *((DAILY_JOB, d) for d in days)}

    quiet = _tick(paths, first.cursor)
    assert isinstance(quiet, dg.SkipReason)

    late = landing / "executions" / f"date={days[1]}" / "part-0.parquet"
    stat = late.stat()
    os.utime(late, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = _tick(paths, first.cursor)
    assert [(r.job_name, r.partition_key) for r in changed.run_requests] == [(DAILY_JOB, days[1])]


def test_a_folder_without_a_partition_is_named_and_does_not_hold_back_the_others(
    tmp_path: Path, capfd
) -> None:
    """A weekend (or malformed) date folder used to fail every tick with Dagster's unknown
    partition error, so the valid dates beside it were never requested."""
    landing = simulate_small(tmp_path / "landing")
    days = sorted(p.name.removeprefix("date=") for p in (landing / "orders").iterdir())
    for folder in ("date=2024-01-06", "date=garbage"):
        (landing / "orders" / folder).mkdir()
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing))
    first = _tick(paths, None)
    requested = {(r.job_name, r.partition_key) for r in first.run_requests}
    assert requested == {(REFERENCE_JOB, None), *((DAILY_JOB, d) for d in days)}
    logged = capfd.readouterr().err  # the sensor's log (the tick's log in the UI)
    assert "date=2024-01-06 ignored: 2024-01-06 is a Saturday" in logged
    assert "date=garbage ignored: not a YYYY-MM-DD date" in logged
    assert isinstance(_tick(paths, first.cursor), dg.SkipReason)


def test_sensor_skips_while_the_landing_directory_is_missing(tmp_path: Path) -> None:
    paths = EqsPathsResource(home=str(tmp_path), landing=str(tmp_path / "none"))
    assert isinstance(_tick(paths, None), dg.SkipReason)


def test_schedule_materializes_the_new_york_trade_date_of_its_tick() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from eqs_pipeline.defs.ingest.schedules import daily_schedule

    # The tick at 18:30 New York time on Tuesday 2026-11-24 runs that Tuesday.
    tick = datetime(2026, 11, 24, 18, 30, tzinfo=ZoneInfo("America/New_York"))
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        request = daily_schedule(context)
    assert request.partition_key == "2026-11-24"

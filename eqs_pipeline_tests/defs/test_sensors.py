"""The landing sensor requests new and changed trade dates, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from eqs_pipeline.defs.ingest.sensors import landing_sensor
from eqs_pipeline.defs.jobs import DAILY_JOB, REFERENCE_JOB
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline_tests.conftest import simulate_small


def _tick(paths: EqsPathsResource, cursor: str | None, instance: dg.DagsterInstance | None = None):
    with dg.build_sensor_context(
        cursor=cursor,
        resources={"paths": paths},
        instance=instance or dg.DagsterInstance.ephemeral(),
    ) as context:
        return landing_sensor(context)


def _skipped(result) -> str | None:
    """The tick's skip message, None when it requested runs."""
    if isinstance(result, dg.SkipReason):
        return result.skip_message
    assert not result.run_requests or result.skip_reason is None
    return None if result.run_requests else result.skip_reason.skip_message


def _requested(result) -> set[tuple[str, str | None]]:
    return {(r.job_name, r.partition_key) for r in result.run_requests}


def _days(landing: Path) -> list[str]:
    return sorted(p.name.removeprefix("date=") for p in (landing / "orders").iterdir())


def test_sensor_requests_new_then_only_changed_dates(tmp_path: Path) -> None:
    landing = simulate_small(tmp_path / "landing")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing))
    days = _days(landing)

    # The reference data first, alone: no date may stage against missing instruments.
    first = _tick(paths, None)
    assert _requested(first) == {(REFERENCE_JOB, None)}
    dates = _tick(paths, first.cursor)  # no reference run is pending in this instance
    assert _requested(dates) == {(DAILY_JOB, d) for d in days}

    quiet = _tick(paths, dates.cursor)
    assert _skipped(quiet) == "no new or changed landing files"

    late = landing / "executions" / f"date={days[1]}" / "part-0.parquet"
    stat = late.stat()
    os.utime(late, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = _tick(paths, dates.cursor)
    assert [(r.job_name, r.partition_key) for r in changed.run_requests] == [(DAILY_JOB, days[1])]


def _reference_run(instance: dg.DagsterInstance, run_key: str, status: dg.DagsterRunStatus):
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._core.storage.tags import RUN_KEY_TAG

    run = DagsterRun(job_name=REFERENCE_JOB, status=status, tags={RUN_KEY_TAG: run_key})
    instance.add_run(run)
    return run


def test_dates_wait_for_the_reference_run_the_sensor_requested(tmp_path: Path) -> None:
    """Instruments and trade dates landed together: the dates were requested in the same tick as
    the reference run, and with two runs at a time a date could stage before its instruments
    (`unknown_symbol` quarantines), never to be retried. Now they wait for its success."""
    landing = simulate_small(tmp_path / "landing")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing))
    instance = dg.DagsterInstance.ephemeral()
    first = _tick(paths, None, instance)
    (request,) = first.run_requests
    run = _reference_run(instance, request.run_key, dg.DagsterRunStatus.STARTED)
    waiting = _tick(paths, first.cursor, instance)
    assert f"wait: the reference run {run.run_id} is started" in _skipped(waiting)
    instance.delete_run(run.run_id)
    failed = _reference_run(instance, request.run_key, dg.DagsterRunStatus.FAILURE)
    held = _tick(paths, first.cursor, instance)
    assert f"{failed.run_id} failure: fix the instruments files" in _skipped(held)
    instance.delete_run(failed.run_id)
    _reference_run(instance, request.run_key, dg.DagsterRunStatus.SUCCESS)
    go = _tick(paths, first.cursor, instance)
    assert _requested(go) == {(DAILY_JOB, d) for d in _days(landing)}


def test_a_file_moved_to_another_table_reruns_its_date(tmp_path: Path) -> None:
    """The table folder is part of the print: `mv` keeps a file's name, size and mtime."""
    landing = simulate_small(tmp_path / "landing")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing))
    day = _days(landing)[0]
    first = _tick(paths, None)
    settled = _tick(paths, first.cursor)
    misplaced = landing / "executions" / f"date={day}" / "part-0.parquet"
    target = landing / "child_orders" / f"date={day}" / "extra.parquet"
    os.rename(misplaced, target)
    moved = _tick(paths, settled.cursor)
    os.rename(target, misplaced.with_name("extra.parquet"))
    back = _tick(paths, moved.cursor)
    assert _requested(moved) == _requested(back) == {(DAILY_JOB, day)}


def test_a_date_gone_from_the_landing_is_named(tmp_path: Path, capfd) -> None:
    import shutil

    landing = simulate_small(tmp_path / "landing")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing))
    first = _tick(paths, None)
    settled = _tick(paths, first.cursor)
    day = _days(landing)[-1]
    for table in landing.iterdir():
        shutil.rmtree(table / f"date={day}", ignore_errors=True)
    gone = _tick(paths, settled.cursor)
    assert _skipped(gone) == "no new or changed landing files"
    logged = capfd.readouterr().err
    assert f"date={day} is gone" in logged and f"eqs drop-date {day}" in logged
    _tick(paths, gone.cursor)  # named once: the cursor forgets it
    assert "is gone" not in capfd.readouterr().err


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
    assert _requested(_tick(paths, first.cursor)) == {(DAILY_JOB, d) for d in days}
    logged = capfd.readouterr().err  # the sensor's log (the tick's log in the UI)
    assert "date=2024-01-06 ignored: 2024-01-06 is a Saturday" in logged
    assert "date=garbage ignored: not a YYYY-MM-DD date" in logged
    assert _skipped(_tick(paths, _tick(paths, first.cursor).cursor))


def test_sensor_skips_while_the_landing_directory_is_missing(tmp_path: Path) -> None:
    paths = EqsPathsResource(home=str(tmp_path), landing=str(tmp_path / "none"))
    assert "does not exist yet" in _skipped(_tick(paths, None))


def test_schedule_materializes_the_new_york_trade_date_of_its_tick() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from eqs_pipeline.defs.ingest.schedules import daily_schedule

    # The tick at 18:30 New York time on Tuesday 2026-11-24 runs that Tuesday.
    tick = datetime(2026, 11, 24, 18, 30, tzinfo=ZoneInfo("America/New_York"))
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        request = daily_schedule(context)
    assert request.partition_key == "2026-11-24"

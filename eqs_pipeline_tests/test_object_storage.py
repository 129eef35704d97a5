"""The landing directory, the Parquet lake and the event exports on object storage
(docs/SCALING.md, "Past one machine"): the landing and lake functions, the landing sensor and
the whole pipeline against an S3 API served on localhost by moto (the `s3` fixture,
eqs_pipeline_tests/conftest.py), configured only through URLs and the standard AWS environment
variables, as a desk would point it at a bucket. Concurrent runs on the multiprocess executor
sharing a lake on object storage: eqs_pipeline_tests/defs/test_parallel_backfill.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.fs as pafs
import pytest
from polars.testing import assert_frame_equal

from eqs_pipeline.core.contract import CONTRACT, DATED_TABLES
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.ingest import (
    LandingError,
    count_landed_rows,
    discover_trade_dates,
    read_table,
    validate_partition,
)
from eqs_pipeline.runtime.runner import run_pipeline
from eqs_pipeline.storage import lake
from eqs_pipeline_tests.conftest import SMALL, simulate_small

# No cost model is trained on the small desk: its registry and predictions are empty tables.
EMPTY_WITHOUT_A_MODEL = {"model.model_versions", "model.cost_predictions", "model.quality_forecast"}

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 2)
# Columns that differ between two runs of the same data: the ingest log's run and the events'
# materialization time.
RUN_COLUMNS = {"run_id", "emitted_at", "inputs_fingerprint"}  # of the run, of the files


def _upload(folder: Path, url: str) -> str:
    """Copy a local landing directory, hidden entries included, to `url`; returns `url`."""
    pafs.copy_files(str(folder.resolve()), url)
    return url


def _spoil_first_row(path: Path) -> None:
    """Make the first row's first numeric contract column unreadable ('oops'), keeping the file's
    format: the row must then be quarantined with its original text."""
    table = path.parent.parent.name
    column = next(c.name for c in CONTRACT[table].columns if c.dtype == pl.Float64)
    oops = pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("oops")).otherwise(pl.col(column))
    if path.suffix == ".csv":
        pl.read_csv(path, infer_schema=False).with_columns(oops.alias(column)).write_csv(path)
    else:
        frame = pl.read_ndjson(path).with_columns(pl.col(column).cast(pl.String))
        frame.with_columns(oops.alias(column)).write_ndjson(path)


def test_a_landing_on_object_storage_reads_as_the_same_landing_on_disk(
    s3: str, tmp_path: Path
) -> None:
    """Every format, hidden entries, the row counts of the conservation check, and the original
    text of quarantined rows (re-read from the objects) equal those of the local folder."""
    from eqs_pipeline.simulate import simulate_to_landing

    local = tmp_path / "landing"
    simulate_to_landing(SMALL, local, formats=("parquet", "csv", "jsonl"))
    spoiled = [next(local.glob(f"*/date=*/*.{suffix}")) for suffix in ("csv", "jsonl")]
    for path in spoiled:
        _spoil_first_row(path)
    (local / "executions" / "_SUCCESS").write_text("")  # ignored, as on disk
    remote = _upload(local, f"{s3}/mixed/landing")

    days = discover_trade_dates(remote)
    assert days == discover_trade_dates(local) and len(days) == SMALL.days
    quarantined = []
    for day in days:
        raws = [{t: read_table(root, t, day) for t in DATED_TABLES} for root in (local, remote)]
        for table in DATED_TABLES:
            assert_frame_equal(raws[1][table], raws[0][table])
            assert count_landed_rows(remote, table, day) == raws[0][table].height > 0
        results = [
            validate_partition(raw, day, None, landing=root)
            for raw, root in zip(raws, (local, remote), strict=True)
        ]
        assert_frame_equal(results[1].quarantine, results[0].quarantine)
        assert_frame_equal(results[1].counts, results[0].counts)
        quarantined.append(results[1].quarantine)
    assert_frame_equal(
        read_table(remote, "instruments", None), read_table(local, "instruments", None)
    )

    # The spoiled rows were quarantined, quoting their original text read from the objects.
    for path in spoiled:
        source = path.relative_to(local).as_posix()
        row = pl.concat(quarantined).filter(
            pl.col("source_file") == source, pl.col("source_row") == 1
        )
        assert row.height == 1 and "oops" in row["row_json"].item(), source


def test_a_landing_in_a_missing_bucket_or_prefix_is_refused_naming_it(s3: str) -> None:
    with pytest.raises(LandingError, match=r"s3://no-such-bucket/landing"):
        discover_trade_dates("s3://no-such-bucket/landing")
    with pytest.raises(LandingError, match=rf"landing directory {s3}/nothing does not exist"):
        discover_trade_dates(f"{s3}/nothing")


def test_the_landing_sensor_watches_a_landing_on_object_storage(s3: str, tmp_path: Path) -> None:
    from eqs_pipeline.defs.ingest.sensors import landing_sensor
    from eqs_pipeline.defs.jobs import DAILY_JOB, REFERENCE_JOB

    local = simulate_small(tmp_path / "landing")
    remote = _upload(local, f"{s3}/watched/landing")
    paths = EqsPathsResource(home=str(tmp_path), landing=remote)

    def tick(cursor: str | None):
        with dg.build_sensor_context(
            cursor=cursor, resources={"paths": paths}, instance=dg.DagsterInstance.ephemeral()
        ) as context:
            return landing_sensor(context)

    first = tick(None)  # the reference data first, then the dates
    assert [(r.job_name, r.partition_key) for r in first.run_requests] == [(REFERENCE_JOB, None)]
    dates = tick(first.cursor)
    days = [d.isoformat() for d in discover_trade_dates(local)]
    requested = {(r.job_name, r.partition_key) for r in dates.run_requests}
    assert requested == {(DAILY_JOB, d) for d in days}
    assert tick(dates.cursor).skip_reason.skip_message == "no new or changed landing files"

    # A corrected file for the second date (fewer rows) re-runs that date alone.
    corrected = f"{remote}/executions/date={days[1]}/part-0.parquet"
    pl.read_parquet(corrected).head(3).write_parquet(corrected)
    changed = tick(dates.cursor)
    assert [(r.job_name, r.partition_key) for r in changed.run_requests] == [(DAILY_JOB, days[1])]


def test_lake_functions_on_object_storage(s3: str) -> None:
    root = f"{s3}/functions"
    frame = pl.DataFrame({"exec_id": ["a", "b", "c"], "qty": [100.0, 200.0, 50.0]})
    assert not lake.exists(root, "staging.executions", DAY)
    assert lake.count(root, "staging.executions", DAY) == 0

    path = lake.write(root, "staging.executions", frame, DAY)
    assert path == f"{root}/staging/executions/trade_date=2026-11-02/part-0.parquet"
    assert lake.exists(root, "staging.executions", DAY)
    assert lake.count(root, "staging.executions", DAY) == 3
    assert_frame_equal(lake.read(root, "staging.executions", DAY), frame)
    # Replacing a partition replaces it whole.
    lake.write(root, "staging.executions", frame.head(1), DAY)
    assert lake.count(root, "staging.executions", DAY) == 1

    # Another date, or a table never written, is a missing partition that says where it looked.
    with pytest.raises(lake.MissingPartition, match=r"trade date 2026-11-03 at s3://eqs-lake/"):
        lake.read(root, "staging.executions", date(2026, 11, 3))
    assert not lake.exists(root, "staging.quotes", DAY)


def _tables(warehouse: Path) -> dict[str, pl.DataFrame]:
    """Every table of the warehouse (a view over a local lake, a table where the lake is on
    object storage), without run-specific columns, in a canonical row order; an event's JSON
    payload as its fields (so that its figures compare to a tolerance)."""
    from eqs_pipeline_tests.golden import tables

    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = tables(con)
        frames = {}
        for name in names:
            frame = con.execute(f"select * from {name}").pl()
            frame = frame.drop([c for c in frame.columns if c in RUN_COLUMNS])
            if "payload" in frame.columns:
                fields = frame["payload"].str.json_decode(infer_schema_length=None).struct.unnest()
                frame = frame.drop("payload").hstack(fields.rename(lambda c: f"payload.{c}"))
            frames[name] = frame.sort(frame.columns, nulls_last=True)
    return frames


def test_the_pipeline_on_object_storage_equals_a_local_run(
    s3: str, built_warehouse, tmp_path: Path
) -> None:
    """Landing, lake and exports in a bucket; only the warehouse file is local."""
    local_landing, local_warehouse, local_report = built_warehouse
    warehouse = tmp_path / "warehouse.duckdb"
    landing = _upload(local_landing, f"{s3}/landing")
    root = f"{s3}/lake"

    exports = f"{s3}/exports"
    report = run_pipeline(landing, warehouse, lake=root, exports=exports)

    assert report.check_failures == local_report.check_failures == []
    assert report.trade_dates == local_report.trade_dates
    assert not (tmp_path / "lake").exists()  # nothing fell back to a local folder
    assert not (tmp_path / "exports").exists()
    for day in report.trade_dates:
        assert lake.count(root, "quality.fill_quality", day) > 0
    assert lake.exists(root, "staging.instruments", None)

    remote, local = _tables(warehouse), _tables(local_warehouse)
    assert remote.keys() == local.keys()
    assert {"quality.fill_quality", "venue.venue_daily", "staging.quotes"} <= remote.keys()
    # Equal up to the window statistics' rounding: DuckDB keeps a table's rows in no set order
    # (the load inserts them in parallel), and the window's sums add them in the order read.
    for name, frame in local.items():
        # No broker x algo pair of the small desk has min_pair_orders orders: none is shown;
        # a desk of a few dates has no monitoring baseline yet, so no alert to deliver.
        empty = EMPTY_WITHOUT_A_MODEL | {
            "staging.quarantine",
            "algo.broker_algo_scorecard",
            "monitor.alerts",
            "monitor.deliveries",
        }
        assert frame.height > 0 or name in empty, name
        try:
            assert_frame_equal(remote[name], frame, rel_tol=1e-9, abs_tol=1e-9)
        except AssertionError as differs:
            raise AssertionError(f"{name}: {differs}") from None

    # The JSON Lines exports went to object storage too, one object per partition and window,
    # the same lines as the local run's but for the moment they were emitted.
    exported = [(f"execution_quality_events/date={day}", "order_id") for day in report.trade_dates]
    window_end = local["venue.venue_performance_events"]["window_end"].max()
    exported.append((f"venue_performance_events/window_end={window_end}", "venue"))
    for folder, key in exported:
        events = pl.read_ndjson(f"{exports}/{folder}/events.jsonl").drop("emitted_at")
        mine = pl.read_ndjson(local_warehouse.parent / "exports" / folder / "events.jsonl")
        assert events.height == mine.height > 0, folder
        assert_frame_equal(events.sort(key), mine.drop("emitted_at").sort(key), rel_tol=1e-9)


def test_eqs_lake_and_eqs_landing_move_those_of_every_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lake (landing) is the configured one, else EQS_LAKE (EQS_LANDING), read when a step
    asks, so a process whose definitions were built before it was set follows it too, else
    under the home."""
    paths = EqsPathsResource(home="/srv/eqs")
    monkeypatch.delenv("EQS_LAKE", raising=False)
    monkeypatch.delenv("EQS_LANDING", raising=False)
    assert (paths.lake_root, paths.landing_root) == ("/srv/eqs/lake", "/srv/eqs/landing")
    monkeypatch.setenv("EQS_LAKE", "s3://desk-bucket/eqs/lake")
    monkeypatch.setenv("EQS_LANDING", "s3://desk-bucket/eqs/landing")
    assert paths.lake_root == "s3://desk-bucket/eqs/lake"
    assert paths.landing_root == "s3://desk-bucket/eqs/landing"
    configured = EqsPathsResource(home="/srv/eqs", lake="/mnt/lake", landing="/mnt/landing")
    # A run's own configuration wins.
    assert (configured.lake_root, configured.landing_root) == ("/mnt/lake", "/mnt/landing")


def test_a_lake_in_a_missing_bucket_fails_the_first_step_naming_it(
    s3: str, built_warehouse, tmp_path: Path
) -> None:
    """The reference job's first lake write fails, and the message names the step, the object
    and why."""
    from eqs_pipeline.runtime.runner import RunFailed

    landing, _, _ = built_warehouse
    with pytest.raises(RunFailed) as failed:
        run_pipeline(landing, tmp_path / "w.duckdb", lake="s3://no-such-bucket/lake")
    message = str(failed.value)
    assert message.startswith("job eqs_reference failed")
    assert "step staging__instruments" in message
    assert "s3://no-such-bucket/lake/staging/instruments/part-0.parquet" in message
    assert "The specified bucket does not exist" in message

"""The Parquet lake on object storage (docs/SCALING.md, "Past one machine"): the lake functions
and the whole pipeline against an S3 API served on localhost by moto, configured only through
the lake URL and the standard AWS environment variables, as a desk would point it at a bucket.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eqs_pipeline import lake
from eqs_pipeline.runner import run_pipeline

BUCKET = "eqs-lake"
DAY = date(2026, 11, 2)
# Columns that differ between two runs of the same data: the ingest log's run and the events'
# materialization time.
RUN_COLUMNS = {"run_id", "emitted_at"}


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """An empty bucket on a local S3 API; yields its URL. The AWS variables are what Polars'
    object store reads (an endpoint over plain HTTP needs AWS_ALLOW_HTTP)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }.items():
            env.setenv(name, value)
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"))
        try:
            yield f"s3://{BUCKET}"
        finally:
            server.stop()


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
    """Every table of the warehouse, without run-specific columns, in a canonical row order; an
    event's JSON payload as its fields (so that its figures compare to a tolerance)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [
            f"{schema}.{table}"
            for schema, table in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE' order by all"
            ).fetchall()
        ]
        frames = {}
        for name in names:
            frame = con.execute(f"select * from {name}").pl()
            frame = frame.drop([c for c in frame.columns if c in RUN_COLUMNS])
            if "payload" in frame.columns:
                fields = frame["payload"].str.json_decode(infer_schema_length=None).struct.unnest()
                frame = frame.drop("payload").hstack(fields.rename(lambda c: f"payload.{c}"))
            frames[name] = frame.sort(frame.columns, nulls_last=True)
    return frames


@pytest.mark.slow
def test_the_pipeline_with_its_lake_on_object_storage_equals_a_local_lake(
    s3: str, built_warehouse, tmp_path: Path
) -> None:
    landing, local_warehouse, local_report = built_warehouse
    warehouse = tmp_path / "warehouse.duckdb"
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
        assert frame.height > 0 or name == "staging.quarantine", name
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


def test_eqs_lake_moves_the_lake_of_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lake is the configured one, else EQS_LAKE (read when a step asks, so a process whose
    definitions were built before it was set follows it too), else under the home."""
    from eqs_pipeline.defs.resources import EqsPathsResource

    paths = EqsPathsResource(home="/srv/eqs")
    monkeypatch.delenv("EQS_LAKE", raising=False)
    assert paths.lake_root == "/srv/eqs/lake"
    monkeypatch.setenv("EQS_LAKE", "s3://desk-bucket/eqs/lake")
    assert paths.lake_root == "s3://desk-bucket/eqs/lake"
    configured = EqsPathsResource(home="/srv/eqs", lake="/mnt/lake")
    assert configured.lake_root == "/mnt/lake"  # a run's own configuration wins


@pytest.mark.slow
def test_concurrent_runs_on_the_multiprocess_executor_share_a_lake_on_object_storage(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scale-out configuration on one machine: two trade dates as two runs at once, each
    step a forked process writing and reading the lake on object storage, set by EQS_LAKE
    alone; each run's load step fills the warehouse with exactly the lake's rows."""
    from benchmarks.backfill import run_queued, run_reference, use_home
    from eqs_pipeline.defs.warehouse.assets import DAILY_TABLES
    from eqs_pipeline.ingest import discover_trade_dates
    from eqs_pipeline_tests.conftest import simulate_small

    root = f"{s3}/backfill"
    monkeypatch.setenv("EQS_LAKE", root)
    monkeypatch.setenv("EQS_HOME", str(tmp_path))  # use_home sets both; restored after
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    days = discover_trade_dates(simulate_small(tmp_path / "landing"))
    use_home(tmp_path)
    run_reference()

    outcomes = run_queued([d.isoformat() for d in days], width=len(days))

    assert [o.errors for o in outcomes if not o.success] == []
    assert not (tmp_path / "lake").exists()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        for table in DAILY_TABLES:
            for day in days:
                loaded = con.execute(
                    f"select count(*) from {table} where trade_date = ?", [day]
                ).fetchall()[0][0]
                assert loaded == lake.count(root, table, day), (table, day)
        fills = con.execute("select count(*) from quality.fill_quality").fetchall()[0][0]
    assert fills > 1000


def test_a_lake_in_a_missing_bucket_fails_the_first_step_naming_it(
    s3: str, built_warehouse, tmp_path: Path
) -> None:
    """The reference job's first lake write fails, and the message names the step, the object
    and why."""
    from eqs_pipeline.runner import RunFailed

    landing, _, _ = built_warehouse
    with pytest.raises(RunFailed) as failed:
        run_pipeline(landing, tmp_path / "w.duckdb", lake="s3://no-such-bucket/lake")
    message = str(failed.value)
    assert message.startswith("job eqs_reference failed")
    assert "step staging__instruments" in message
    assert "s3://no-such-bucket/lake/staging/instruments/part-0.parquet" in message
    assert "The specified bucket does not exist" in message

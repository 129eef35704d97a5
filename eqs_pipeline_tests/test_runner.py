"""Tier 3: the whole pipeline materialized into a tmp_path DuckDB file, as `eqs run` does it.

A test that changes a built warehouse works on a copy of the session's (`built_copy`) instead
of running the pipeline again."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from eqs_pipeline.ingest import LandingError
from eqs_pipeline.runtime.runner import RunFailed, run_pipeline
from eqs_pipeline_tests.conftest import simulate_small

TABLES = (
    "staging.orders",
    "staging.child_orders",
    "staging.executions",
    "staging.quotes",
    "staging.market_trades",
    "staging.quarantine",
    "quality.fill_quality",
    "quality.order_quality",
    "quality.execution_quality_events",
)


def counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in TABLES}


@pytest.mark.integration
def test_every_table_is_built_and_consistent(built_warehouse) -> None:
    _, warehouse, report = built_warehouse
    assert report.check_failures == []
    n = counts(warehouse)
    assert n["staging.orders"] == 80 and n["staging.executions"] > 1000
    assert n["quality.fill_quality"] == n["staging.executions"]
    assert n["quality.order_quality"] == n["staging.orders"]
    assert n["quality.execution_quality_events"] == n["staging.orders"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        dupes = con.execute(
            "select count(*) - count(distinct exec_id) from quality.fill_quality"
        ).fetchall()[0][0]
        grades = dict(
            con.execute(
                "select quality_grade, count(*) from quality.order_quality group by 1"
            ).fetchall()
        )
    assert dupes == 0
    assert set(grades) <= {"excellent", "good", "average", "poor"} and sum(grades.values()) == 80


@pytest.mark.integration
def test_events_are_exported_as_json_lines(built_warehouse) -> None:
    _, warehouse, report = built_warehouse
    exported = 0
    for day in report.trade_dates:
        path = (
            warehouse.parent
            / "exports"
            / "execution_quality_events"
            / f"date={day}"
            / "events.jsonl"
        )
        lines = path.read_text().splitlines()
        events = [json.loads(line) for line in lines]
        assert {e["event_type"] for e in events} == {"ExecutionQualityEvent"}
        assert all(e["payload"]["order_id"] == e["order_id"] for e in events)
        exported += len(events)
    assert exported == counts(warehouse)["quality.execution_quality_events"]


@pytest.mark.integration
def test_rematerializing_replaces_partitions_and_doubles_nothing(built_warehouse, rerun_warehouse):
    """The whole landing again, then one date alone: every table as the first run left it, row
    for row (nothing doubled, the other date untouched), and the same export files."""
    assert rerun_warehouse.after_all == []
    assert rerun_warehouse.after_one == []
    assert rerun_warehouse.exports_after == rerun_warehouse.exports_before
    assert len(rerun_warehouse.exports_before) == len(built_warehouse[2].trade_dates) + 1


def test_small_consecutive_dates_share_runs_and_large_or_separated_ones_do_not() -> None:
    """Runs of consecutive trade-date partitions (a weekend between them is consecutive, a
    missing weekday is not), at most BATCH_DATES dates and BATCH_BYTES landed bytes each."""
    from eqs_pipeline.runtime.runner import BATCH_BYTES, BATCH_DATES, batches

    mon, tue, wed, fri = (date(2026, 11, d) for d in (2, 3, 4, 6))
    next_mon = date(2026, 11, 9)
    small, large = 10**6, BATCH_BYTES
    sizes = {mon: small, tue: small, wed: large, fri: small, next_mon: small}
    assert batches([mon, tue, wed, fri, next_mon], sizes) == [[mon, tue], [wed], [fri, next_mon]]
    assert batches([mon, wed], {mon: small, wed: small}) == [[mon], [wed]]  # tue is missing
    many = [date(2025, 6, 2) + timedelta(days=7 * w + d) for w in range(6) for d in range(5)]
    runs = batches(many, dict.fromkeys(many, 1))
    assert [len(r) for r in runs] == [BATCH_DATES, len(many) - BATCH_DATES]
    assert [d for r in runs for d in r] == many


def test_a_rerun_skips_unchanged_dates_and_a_changed_file_runs_its_date_again(
    built_warehouse, rerun_warehouse
):
    """`eqs run` again on the same landing: every date is unchanged, so no job runs and no date
    is staged again; then one landed file of the first date is touched (a new modification
    time): that date alone runs again, with the window, and the warehouse is as before."""
    dates = built_warehouse[2].trade_dates
    first, last = dates[0], dates[-1]
    unchanged, touched = rerun_warehouse.unchanged, rerun_warehouse.touched
    assert unchanged.unchanged == dates and unchanged.materialized == []
    assert touched.unchanged == [last] and touched.materialized == [first]
    before, after = rerun_warehouse.run_ids["before"], rerun_warehouse.run_ids["after"]
    assert after[str(last)] == before[str(last)]  # not staged again
    assert after["instruments"] == before["instruments"]  # the reference job skipped too
    assert len(after[str(first)]) == 1 and after[str(first)] != before[str(first)]
    assert touched.check_failures == []
    with duckdb.connect(str(rerun_warehouse.warehouse), read_only=True) as con:
        fingerprint = con.execute("select min(inputs_fingerprint) from venue.venue_scorecard")
        stored = fingerprint.fetchall()[0][0]
    assert stored and stored != rerun_warehouse.window_before  # the window ran again


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows).write_csv(path)


@pytest.mark.integration
def test_bad_rows_are_quarantined_with_reasons_and_conserved(tmp_path: Path) -> None:
    landing = simulate_small(tmp_path / "landing")
    day = sorted((landing / "executions").iterdir())[0].name
    good = pl.read_parquet(next((landing / "executions" / day).glob("*.parquet"))).row(
        0, named=True
    )
    base = {
        **{k: v for k, v in good.items()},
        "exec_ts": good["exec_ts"].isoformat(),
        "fee": good["fee"],
    }
    rows = [
        {**base, "exec_id": "bad-qty", "qty": -5.0},
        {**base, "exec_id": "bad-order", "order_id": "nope"},
        {**base, "exec_id": "bad-flag", "liquidity_flag": "SIDEWAYS"},
        {**base, "exec_id": good["exec_id"], "price": good["price"] * 1.5},  # conflicting dup
    ]
    _write_csv(landing / "executions" / day / "late_corrections.csv", rows)
    warehouse = tmp_path / "warehouse.duckdb"
    report = run_pipeline(landing, warehouse)
    assert report.check_failures == []  # conservation and schemas hold
    with duckdb.connect(str(warehouse), read_only=True) as con:
        q = con.execute(
            "select source_file, row_json, reasons from staging.quarantine "
            "where source_table = 'executions'"
        ).pl()
        staged_ids = {
            r[0] for r in con.execute("select exec_id from staging.executions").fetchall()
        }
    reasons = {json.loads(r["row_json"])["exec_id"]: r["reasons"] for r in q.iter_rows(named=True)}
    assert "non_positive:qty" in reasons["bad-qty"]
    assert "unknown_order" in reasons["bad-order"]
    assert "unknown_value:liquidity_flag" in reasons["bad-flag"]
    assert reasons[good["exec_id"]] == ["duplicate_key_conflict"]
    assert good["exec_id"] not in staged_ids  # both conflicting copies are quarantined


@pytest.mark.integration
def test_file_level_error_names_the_file_and_writes_nothing(built_copy) -> None:
    landing, warehouse, _ = built_copy
    before = counts(warehouse)
    day = sorted((landing / "orders").iterdir())[0].name
    _write_csv(landing / "orders" / day / "broken.csv", [{"order_id": "x", "symbol": "S"}])
    with pytest.raises(RunFailed, match=r"broken\.csv.*(side|order_qty)|missing required column"):
        run_pipeline(landing, warehouse)
    assert counts(warehouse) == before


def test_a_landing_directory_without_the_contract_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    with pytest.raises(LandingError):
        run_pipeline(tmp_path / "landing", tmp_path / "w.duckdb")
    with pytest.raises(LandingError):
        run_pipeline(tmp_path / "missing", tmp_path / "w.duckdb")


def test_a_date_range_without_data_is_refused(tmp_path: Path) -> None:
    from datetime import date

    landing = simulate_small(tmp_path / "landing")
    with pytest.raises(LandingError, match="no trade dates between"):
        run_pipeline(landing, tmp_path / "w.duckdb", start=date(2030, 1, 1))


def test_a_landed_date_without_a_partition_is_refused_by_name(tmp_path: Path) -> None:
    """A weekend or pre-2010 folder is named before anything runs (it used to stop the run
    half-way with Dagster's unknown-partition error and a traceback)."""
    from datetime import date

    from eqs_pipeline.runtime.runner import select_dates

    friday, saturday, old = date(2024, 1, 5), date(2024, 1, 6), date(2009, 12, 31)
    assert select_dates([friday], None, None) == [friday]
    with pytest.raises(LandingError, match=r"2009-12-31 is before.*2024-01-06 is a Saturday"):
        select_dates([old, friday, saturday], None, None)
    assert select_dates([friday, saturday], None, friday) == [friday]  # left out by the range
    with pytest.raises(LandingError, match="the landing directory has no date=YYYY-MM-DD"):
        select_dates([], None, None)


@pytest.mark.integration
def test_conservation_accounts_for_every_row_and_catches_a_lost_one(
    built_warehouse, tmp_path: Path
) -> None:
    from eqs_pipeline.core.contract import DATED_TABLES
    from eqs_pipeline.defs.ingest.checks import conservation_frame
    from eqs_pipeline.defs.resources import EqsPathsResource
    from eqs_pipeline.storage import lake

    landing, warehouse, report = built_warehouse
    copy = tmp_path / "w.duckdb"
    shutil.copy(warehouse, copy)
    shutil.copytree(warehouse.parent / "lake", tmp_path / "lake")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing), warehouse=str(copy))
    day = report.trade_dates[0]
    balanced = conservation_frame(paths, DATED_TABLES, day)
    assert balanced["balance"].to_list() == [0] * len(DATED_TABLES)
    assert balanced["landed"].sum() > 0
    instruments = conservation_frame(paths, ("instruments",), None)
    assert instruments["balance"].to_list() == [0] and instruments["landed"].to_list() == [4]
    # A trade date is counted in its lake partitions (what the daily assets wrote).
    executions = lake.partition_path(paths.lake_root, "staging.executions", day)
    staged = pl.read_parquet(executions)
    staged.filter(pl.col("exec_id") != staged["exec_id"].min()).write_parquet(executions)
    lost = conservation_frame(paths, DATED_TABLES, day).filter(pl.col("balance") != 0)
    assert lost.select("table", "balance").rows() == [("executions", 1)]


@pytest.mark.integration
def test_a_landing_directory_without_instruments_is_refused_clearly(tmp_path: Path) -> None:
    landing = simulate_small(tmp_path / "landing")
    shutil.rmtree(landing / "instruments")
    with pytest.raises(RunFailed, match="no instrument reference data"):
        run_pipeline(landing, tmp_path / "w.duckdb")


@pytest.mark.integration
def test_drop_date_removes_one_trade_date_everywhere_and_nothing_else(built_copy) -> None:
    """A date landed under the wrong name and since moved cannot be cleared by re-running it
    (no landed files): `eqs drop-date` removes it from the warehouse, the lake and the exports."""
    from click.testing import CliRunner

    from eqs_pipeline.cli.main import main
    from eqs_pipeline.defs.warehouse.assets import DAILY_TABLES
    from eqs_pipeline.storage import lake

    _, warehouse, report = built_copy
    home = warehouse.parent
    gone, kept = report.trade_dates
    before = counts(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        kept_rows = {
            t: con.execute(f"select count(*) from {t} where trade_date = ?", [kept]).fetchall()
            for t in DAILY_TABLES
        }
    refused = CliRunner().invoke(main, ["drop-date", str(gone), "--warehouse", str(warehouse)])
    assert refused.exit_code == 1 and counts(warehouse) == before  # asks first; no: nothing
    dropped = CliRunner().invoke(
        main, ["drop-date", str(gone), "--warehouse", str(warehouse), "--yes"]
    )
    assert dropped.exit_code == 0, dropped.output
    assert "1 export file(s)" in dropped.output
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in DAILY_TABLES:
            by_date = dict(
                con.execute(f"select trade_date, count(*) from {table} group by 1").fetchall()
            )
            assert gone not in by_date, table
            assert [(by_date.get(kept, 0),)] == kept_rows[table], table
    lake_root = home / "lake"
    assert not any(lake.exists(lake_root, t, gone) for t in DAILY_TABLES)
    assert all(lake.exists(lake_root, t, kept) for t in DAILY_TABLES)
    exported = home / "exports" / "execution_quality_events"
    assert sorted(p.name for p in exported.iterdir()) == [f"date={kept}"]
    again = CliRunner().invoke(
        main, ["drop-date", str(gone), "--warehouse", str(warehouse), "--yes"]
    )
    assert "nothing to remove" in again.output

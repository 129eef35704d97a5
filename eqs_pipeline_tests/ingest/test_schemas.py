"""The pandera schemas accept what ingestion stages and reject what it would quarantine."""

from __future__ import annotations

import polars as pl
import pytest

from eqs_pipeline.contract import CONTRACT
from eqs_pipeline.schemas import QUARANTINE, SCHEMAS, STAGING, validate_frame
from eqs_pipeline_tests.ingest.builders import extra_row, good_rows, ingest_day
from eqs_pipeline_tests.ingest.test_rules import CASES


def test_every_contract_table_and_the_quarantine_have_a_schema():
    staging = {name for name in SCHEMAS if name.startswith("staging.")}
    assert staging == {f"staging.{t}" for t in CONTRACT} | {"staging.quarantine"}


def test_ingestion_output_passes_the_schemas(tmp_path):
    rows = good_rows()
    for table, changes, _ in CASES:
        rows[table].append({**extra_row(table), **changes})
    result = ingest_day(tmp_path, rows)
    assert result.quarantine.height > 0
    for table, staged in result.staged.items():
        assert staged.height > 0, table
        assert validate_frame(STAGING[table], staged) == [], table
    assert validate_frame(QUARANTINE, result.quarantine) == []


@pytest.fixture
def staged(tmp_path) -> dict[str, pl.DataFrame]:
    return ingest_day(tmp_path).staged


def _checks(cases: list[dict]) -> set[tuple[str | None, str]]:
    return {(c["column"], c["check"]) for c in cases}


@pytest.mark.parametrize(
    ("table", "change", "expected"),
    [
        ("quotes", pl.col("bid_px") + 1, {("staging.quotes", "crossed_quote")}),
        ("quotes", pl.col("bid_sz") * 0, {("bid_sz", "greater_than(0)")}),
        ("orders", pl.lit("HOLD").alias("side"), {("side", "isin(['BUY', 'SELL', 'SELL_SHORT'])")}),
        ("orders", pl.lit(None, pl.String).alias("broker"), {("broker", "not_nullable")}),
        (
            "orders",
            pl.lit(None, pl.Float64).alias("limit_price"),
            {("staging.orders", "limit_without_price")},
        ),
        (
            "orders",
            pl.lit("O1").alias("order_id"),
            {("staging.orders", "multiple_fields_uniqueness")},
        ),
        (
            "child_orders",
            pl.col("sent_ts").alias("end_ts") - pl.duration(seconds=1),
            {("staging.child_orders", "end_before_sent")},
        ),
        (
            "executions",
            pl.lit("MAKER").alias("liquidity_flag"),
            {("liquidity_flag", "isin(['ADD', 'REMOVE', 'MID', 'AUCTION'])")},
        ),
    ],
)
def test_the_schemas_reject_what_ingestion_quarantines(staged, table, change, expected):
    broken = staged[table].with_columns(change)
    assert expected <= _checks(validate_frame(STAGING[table], broken))


def test_wrong_types_and_missing_columns_are_reported(staged):
    broken = (
        staged["executions"]
        .drop("venue")
        .with_columns(pl.col("exec_ts").dt.replace_time_zone(None))
    )
    checks = _checks(validate_frame(STAGING["executions"], broken))
    assert ("staging.executions", "column_in_dataframe") in checks
    assert any(column == "exec_ts" and check.startswith("dtype(") for column, check in checks)


def test_validate_frame_truncates(staged):
    broken = staged["quotes"].with_columns(bid_sz=pl.lit(-1.0), ask_sz=pl.lit(-1.0))
    assert len(validate_frame(STAGING["quotes"], broken)) == 2 * broken.height
    assert len(validate_frame(STAGING["quotes"], broken, max_cases=1)) == 1

"""The pandera schemas accept what ingestion stages and reject what it would quarantine; the
quality schemas accept the pipeline's output and reject what docs/METRICS.md rules out."""

from __future__ import annotations

import polars as pl
import pytest

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.ingest import read_table, validate_instruments
from eqs_pipeline.tables.schemas import (
    FILL_QUALITY,
    FILL_QUOTE_METRICS,
    ORDER_QUALITY,
    QUARANTINE,
    SCHEMAS,
    STAGING,
    validate_frame,
)
from eqs_pipeline_tests.ingest.builders import DAY, at, extra_row, good_rows, ingest_day, land
from eqs_pipeline_tests.ingest.test_rules import CASES


def test_every_staging_table_has_a_schema():
    staging = {name for name in SCHEMAS if name.startswith("staging.")}
    assert staging == {f"staging.{t}" for t in CONTRACT} | {
        "staging.quarantine",
        "staging.ingest_log",
    }
    assert set(STAGING) == set(CONTRACT)


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
            "orders",
            pl.lit("lottery").alias("allocation"),
            {("allocation", "isin(['wheel', 'discretionary'])")},
        ),
        *[
            (
                "orders",
                pl.lit(p).alias("allocation_prob"),
                {("staging.orders", "allocation_prob_out_of_range")},
            )
            for p in (0.0, 1.5)
        ],
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


def test_the_schemas_are_strict_and_ordered(staged):
    """A column the registry does not declare, one missing, or the columns out of order fail."""
    quotes = staged["quotes"]
    assert validate_frame(STAGING["quotes"], quotes) == []
    extra = _checks(validate_frame(STAGING["quotes"], quotes.with_columns(mid=pl.lit(1.0))))
    assert ("staging.quotes", "column_in_schema") in extra
    missing = _checks(validate_frame(STAGING["quotes"], quotes.drop("ask_sz")))
    assert ("staging.quotes", "column_in_dataframe") in missing
    moved = _checks(validate_frame(STAGING["quotes"], quotes.select(reversed(quotes.columns))))
    assert ("staging.quotes", "column_ordered") in moved
    retyped = validate_frame(
        STAGING["quotes"], quotes.with_columns(pl.col("bid_sz").cast(pl.Int64))
    )
    assert any(c["column"] == "bid_sz" and c["check"].startswith("dtype(") for c in retyped)


def test_timestamps_in_an_alias_of_utc_count_as_utc(staged):
    """DuckDB reads TIMESTAMPTZ back as "Etc/UTC"; another zone is another type."""
    quotes = staged["quotes"]
    etc_utc = quotes.with_columns(pl.col("ts").dt.convert_time_zone("Etc/UTC"))
    assert validate_frame(STAGING["quotes"], etc_utc) == []
    elsewhere = quotes.with_columns(pl.col("ts").dt.convert_time_zone("America/New_York"))
    assert any(
        c["column"] == "ts" and c["check"].startswith("dtype(")
        for c in validate_frame(STAGING["quotes"], elsewhere)
    )


def test_a_quarantined_row_without_reasons_is_rejected(tmp_path):
    rows = good_rows()
    table, changes, _ = CASES[0]
    rows[table].append({**extra_row(table), **changes})
    quarantine = ingest_day(tmp_path, rows).quarantine
    assert validate_frame(QUARANTINE, quarantine) == []
    empty = quarantine.with_columns(reasons=pl.lit([], pl.List(pl.String)))
    assert ("reasons", "not_empty") in _checks(validate_frame(QUARANTINE, empty))


def test_validate_frame_truncates(staged):
    broken = staged["quotes"].with_columns(bid_sz=pl.lit(-1.0), ask_sz=pl.lit(-1.0))
    assert len(validate_frame(STAGING["quotes"], broken)) == 2 * broken.height
    assert len(validate_frame(STAGING["quotes"], broken, max_cases=1)) == 1


# --- NaN and infinities (docs/INGESTION.md: bad values, quarantined) -----------------------------


def test_every_float_contract_column_checks_finiteness():
    for table, contract in CONTRACT.items():
        for col in contract.columns:
            checks = [c.name for c in STAGING[table].columns[col.name].checks]
            assert ("finite" in checks) == (col.dtype == pl.Float64), (table, col.name)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_the_staging_schemas_reject_nan_and_infinities(staged, value):
    for table, contract in CONTRACT.items():
        if table == "instruments":
            continue
        for col in contract.columns:
            if col.dtype != pl.Float64:
                continue
            broken = staged[table].with_columns(pl.lit(value).alias(col.name))
            assert (col.name, "finite") in _checks(validate_frame(STAGING[table], broken)), (
                table,
                col.name,
            )


def test_an_infinite_quote_is_rejected_as_ingestion_quarantines_it(staged):
    broken = staged["quotes"].with_columns(ask_px=pl.lit(float("inf")), ask_sz=pl.lit(float("inf")))
    assert _checks(validate_frame(STAGING["quotes"], broken)) == {
        ("ask_px", "finite"),
        ("ask_sz", "finite"),
    }


def test_nullable_float_columns_still_accept_nulls(staged):
    for table, column in (("orders", "target_participation"), ("executions", "fee")):
        cleared = staged[table].with_columns(pl.lit(None, pl.Float64).alias(column))
        assert validate_frame(STAGING[table], cleared) == [], table


# --- quality tables: never-null columns and row rules (docs/METRICS.md) --------------------------


@pytest.fixture(scope="module")
def quality_output(built_warehouse) -> dict[str, pl.DataFrame]:
    """quality.fill_quality and quality.order_quality of the small simulated pipeline run."""
    import duckdb

    _, warehouse, _ = built_warehouse
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            name: con.execute(f"select * from quality.{name} order by all").pl()
            for name in ("fill_quality", "order_quality")
        }


def test_the_pipelines_quality_output_passes_the_schemas(quality_output):
    fq, oq = quality_output["fill_quality"], quality_output["order_quality"]
    assert fq.height > 0 and oq.height > 0
    assert set(oq["status"]) == {"filled", "partial", "unfilled"}
    assert set(fq["side"]) >= {"BUY", "SELL"}
    assert validate_frame(FILL_QUALITY, fq) == []
    assert validate_frame(ORDER_QUALITY, oq) == []


def _quoted(fq: pl.DataFrame) -> pl.Expr:
    assert fq["mid"].is_not_null().any()
    return pl.col("mid").is_not_null()


ORDER_CASES = [
    *[
        (pl.lit(None, dtype).alias(col), {(col, "not_nullable")})
        for col, dtype in (
            ("fill_count", pl.Int64),
            ("venue_count", pl.Int64),
            ("fees", pl.Float64),
            ("daily_volatility", pl.Float64),
            ("symbol", pl.String),
            ("broker", pl.String),
        )
    ],
    (pl.lit("filled").alias("status"), {("quality.order_quality", "status_matches_filled_qty")}),
    (
        (-pl.col("side_sign")).cast(pl.Int8).alias("side_sign"),
        {("quality.order_quality", "side_sign_matches_side")},
    ),
    # Graded orders: a null grade, a null score, or a score without a known cost breaks it.
    *[
        (change, {("quality.order_quality", "graded_iff_cost_known")})
        for change in (
            pl.lit(None, pl.String).alias("quality_grade"),
            pl.lit(None, pl.Float64).alias("quality_score"),
            pl.lit(None, pl.Float64).alias("cost_vs_expected_bps"),
            pl.lit("not_graded").alias("null_reason"),
        )
    ],
]


@pytest.mark.parametrize(("change", "expected"), ORDER_CASES)
def test_order_quality_rejects(quality_output, change, expected):
    broken = quality_output["order_quality"].with_columns(change)
    assert expected <= _checks(validate_frame(ORDER_QUALITY, broken))


def test_an_order_without_a_known_cost_is_valid_only_ungraded(quality_output):
    """No cost part: quality_score and quality_grade null, null_reason listing not_graded."""
    unknown = quality_output["order_quality"].with_columns(
        cost_vs_expected_bps=pl.lit(None, pl.Float64),
        quality_score=pl.lit(None, pl.Float64),
        quality_grade=pl.lit(None, pl.String),
        null_reason=pl.lit("unknown_instrument;not_graded"),
    )
    assert validate_frame(ORDER_QUALITY, unknown) == []
    unmarked = unknown.with_columns(null_reason=pl.lit("unknown_instrument"))
    assert ("quality.order_quality", "graded_iff_cost_known") in _checks(
        validate_frame(ORDER_QUALITY, unmarked)
    )


def test_status_keeps_the_documented_tolerance(quality_output):
    oq = quality_output["order_quality"].filter(pl.col("status") == "filled")
    # Short of the order quantity by less than 1e-9 of it is still filled; by more, partial.
    almost = oq.with_columns(filled_qty=pl.col("order_qty") * (1 - 1e-10))
    assert validate_frame(ORDER_QUALITY, almost) == []
    short = oq.with_columns(filled_qty=pl.col("order_qty") * (1 - 1e-8))
    assert ("quality.order_quality", "status_matches_filled_qty") in _checks(
        validate_frame(ORDER_QUALITY, short)
    )


FILL_CASES = [
    (pl.lit(None, pl.Float64).alias("notional"), {("notional", "not_nullable")}),
    (pl.lit(None, pl.String).alias("venue"), {("venue", "not_nullable")}),
    (
        (-pl.col("side_sign")).cast(pl.Int8).alias("side_sign"),
        {("quality.fill_quality", "side_sign_matches_side")},
    ),
    (
        pl.lit("improved").alias("quote_position"),
        {("quality.fill_quality", "quote_position_matches_price_improvement")},
    ),
    (
        pl.lit("no_prior_quote").alias("null_reason"),
        {("quality.fill_quality", "null_reason_iff_no_quote")},
    ),
    (
        pl.lit(None, pl.Float64).alias("spread_capture"),
        {("quality.fill_quality", "spread_capture_null_iff_no_quote_or_locked")},
    ),
]


@pytest.mark.parametrize(("change", "expected"), FILL_CASES)
def test_fill_quality_rejects(quality_output, change, expected):
    broken = quality_output["fill_quality"].with_columns(change)
    assert expected <= _checks(validate_frame(FILL_QUALITY, broken))


def test_fills_with_a_quote_but_no_quote_metrics_are_rejected(quality_output):
    """Every quote metric but the mid nulled, null_reason not set: the old check (mid only)
    passed it."""
    fq = quality_output["fill_quality"]
    q = _quoted(fq)
    metrics = [
        "effective_spread_bps",
        "price_improvement_bps",
        "quoted_spread_bps",
        "quote_position",
    ]
    metrics += [
        f"{k}_{h}s_bps" for h in (1, 5, 15, 60, 300) for k in ("realized_spread", "price_impact")
    ]
    broken = fq.with_columns(pl.when(q).then(None).otherwise(pl.col(c)).alias(c) for c in metrics)
    cases = validate_frame(FILL_QUALITY, broken)
    iff = [c for c in cases if c["check"] == "null_reason_iff_no_quote"]
    assert len(iff) == fq.filter(q).height


@pytest.mark.parametrize("metric", FILL_QUOTE_METRICS)
def test_each_quote_metric_is_null_exactly_when_null_reason_is_set(quality_output, metric):
    fq = quality_output["fill_quality"].head(5)
    broken = fq.with_columns(pl.lit(None, fq.schema[metric]).alias(metric))
    assert ("quality.fill_quality", "null_reason_iff_no_quote") in _checks(
        validate_frame(FILL_QUALITY, broken)
    )


def test_the_reversion_column_may_carry_its_configured_horizon(quality_output):
    """reversion_horizon_s renames reversion_300s_bps (reversion_60s_bps at 60 s), in place."""
    oq = quality_output["order_quality"]
    renamed = oq.rename({"reversion_300s_bps": "reversion_60s_bps"})
    assert validate_frame(ORDER_QUALITY, renamed) == []
    dropped = _checks(validate_frame(ORDER_QUALITY, oq.drop("reversion_300s_bps")))
    assert ("^reversion_\\d+s_bps$", "no_regex_column_match('^reversion_\\d+s_bps$')") in dropped


def test_the_markouts_are_not_quote_metrics():
    assert not any(c.startswith(("markout_", "mid_")) for c in FILL_QUOTE_METRICS)


def test_fills_without_a_prior_quote_and_unfilled_orders_pass(tmp_path):
    """The simulator's days have a quote before every fill; the engine's null rows pass too."""
    from eqs_pipeline.quality.fills import fill_quality
    from eqs_pipeline.quality.orders import order_quality

    rows = good_rows()
    early = {**rows["orders"][0], "order_id": "O4", "arrival_ts": at(14, 29), "end_ts": None}
    rows["orders"] += [early, {**rows["orders"][1], "order_id": "O5"}]
    rows["executions"].append(
        {**rows["executions"][1], "exec_id": "E9", "order_id": "O4", "exec_ts": at(14, 29, 30)}
    )
    result = ingest_day(tmp_path, rows)
    assert result.quarantine.height == 0
    s = result.staged
    instruments = validate_instruments(
        read_table(tmp_path, "instruments", None), landing=tmp_path
    ).staged["instruments"]
    fq = fill_quality(s["executions"], s["quotes"], s["orders"]).collect()
    oq = order_quality(s["orders"], fq, s["quotes"], s["market_trades"], instruments).collect()
    assert fq.filter(pl.col("exec_id") == "E9")["null_reason"].to_list() == ["no_prior_quote"]
    assert "no_fills;no_end_time;not_graded" in oq["null_reason"].to_list()
    assert oq["quality_grade"].null_count() == 2  # O4 (no arrival quote) and O5 (no IS)
    assert validate_frame(FILL_QUALITY, fq) == []
    assert validate_frame(ORDER_QUALITY, oq) == []
    # A quote found for the quote-less fill, or its metrics dropped, breaks the rule.
    for broken in (
        fq.with_columns(null_reason=pl.lit(None, pl.String)),
        fq.with_columns(pl.when(pl.col("exec_id") == "E9").then(pl.lit(1.0)).alias("nbb")),
    ):
        assert ("quality.fill_quality", "null_reason_iff_no_quote") in _checks(
            validate_frame(FILL_QUALITY, broken)
        )


# --- the instruments' quarantined rows are schema-checked (staging/instruments) -----------------


def test_the_instruments_asset_checks_its_quarantined_rows(tmp_path):
    import dagster as dg

    from eqs_pipeline.defs.ingest.assets import (
        INSTRUMENTS_KEY,
        INSTRUMENTS_QUARANTINE_CHECK,
        instruments,
    )
    from eqs_pipeline.defs.resources import EqsPathsResource, MetricSettingsResource

    rows = good_rows()["instruments"]
    rows.append({"symbol": "BAD", "currency": "USD", "tick_size": -0.01, "adv_shares": 1e6})
    land(tmp_path / "landing", "instruments", rows, "csv")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [instruments],
            resources={
                "paths": EqsPathsResource(home=str(tmp_path)),
                "settings": MetricSettingsResource(),
            },
            instance=instance,
        )
    evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"schema", INSTRUMENTS_QUARANTINE_CHECK}
    check = evaluations[INSTRUMENTS_QUARANTINE_CHECK]
    assert check.asset_key == INSTRUMENTS_KEY and check.passed
    assert check.metadata["rows_checked"].value == 1
    (spec,) = [s for s in instruments.check_specs if s.name == INSTRUMENTS_QUARANTINE_CHECK]
    assert spec.blocking


def test_the_instruments_quarantine_check_fails_on_a_bad_quarantine(tmp_path):
    from eqs_pipeline.defs.ingest.assets import _instruments_quarantine_check

    rows = good_rows()["instruments"]
    rows.append({**rows[0], "symbol": "BAD", "tick_size": -1.0})
    land(tmp_path, "instruments", rows, "csv")
    quarantine = validate_instruments(
        read_table(tmp_path, "instruments", None), landing=tmp_path
    ).quarantine
    assert quarantine.height == 1 and _instruments_quarantine_check(quarantine).passed
    # An instruments row with a trade date, or without a reason, breaks staging.quarantine.
    bad = quarantine.with_columns(trade_date=pl.lit(DAY), reasons=pl.lit([], pl.List(pl.String)))
    failed = _instruments_quarantine_check(bad)
    assert not failed.passed and failed.metadata["failure_count"].value == 2

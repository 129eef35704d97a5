"""Pandera (polars) schemas of every table that crosses a step, in one place.

The staging schemas are built from the landing contract (`eqs_pipeline.core.contract`), so column
types, required columns, allowed values, positivity and keys cannot drift from the readers. They
also carry the single-row rules of ingestion as dataframe-level checks named after the
quarantine reason codes (`crossed_quote`, `limit_without_price`, ...), and every float column
checks that it holds no NaN or infinity (`finite`: bad values, quarantined); rules that need other
rows or tables (unknown orders, bad prints, overfills) are enforced by `eqs_pipeline.ingest` only.

The quality schemas declare every column docs/METRICS.md says is never null as non-nullable and
check the row rules it defines: the quote-based fill metrics are null exactly when `null_reason`
says why, an order is graded exactly when its cost can be computed, `side_sign` follows `side`,
and `status` follows filled_qty vs order_qty.

`SCHEMAS` maps a warehouse table name (`staging.orders`, ...) to its schema; the Dagster layer
builds one blocking asset check per entry with `validate_frame`. Schemas of later steps are
added to `SCHEMAS` in this module.
"""

from __future__ import annotations

from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from eqs_pipeline.core.contract import CONTRACT, TS, Column
from eqs_pipeline.core.settings import HORIZONS_S
from eqs_pipeline.quality.fills import PREVAILING_QUOTE_COLUMNS
from eqs_pipeline.venues.settings import WITHIN_STYLE_METRICS


def _row_check(name: str, description: str, ok: pl.Expr) -> pa.Check:
    """A dataframe-level check, named after its reason code, that every row satisfies `ok`.

    Null counts as satisfied: missing values are the nullable columns' business.
    """
    return pa.Check(
        lambda data: data.lazyframe.select(ok.fill_null(True)),
        name=name,
        description=description,
    )


ROW_CHECKS: dict[str, list[pa.Check]] = {
    "orders": [
        _row_check(
            "limit_without_price",
            "a LIMIT order needs a limit_price",
            (pl.col("order_type") != "LIMIT") | pl.col("limit_price").is_not_null(),
        ),
        _row_check(
            "end_before_arrival",
            "end_ts must not be before arrival_ts",
            pl.col("end_ts") >= pl.col("arrival_ts"),
        ),
    ],
    "child_orders": [
        _row_check(
            "end_before_sent",
            "end_ts must not be before sent_ts",
            pl.col("end_ts") >= pl.col("sent_ts"),
        ),
    ],
    "quotes": [
        _row_check(
            "crossed_quote",
            "bid_px must not exceed ask_px (a locked quote, bid == ask, is allowed)",
            pl.col("bid_px") <= pl.col("ask_px"),
        ),
    ],
}


def _finite() -> pa.Check:
    """A float column holds no NaN and no infinity (nulls are the nullable columns' business)."""
    return pa.Check(
        lambda data: data.lazyframe.select(pl.col(data.key).is_finite().fill_null(True)),
        name="finite",
        description="no NaN or infinity (INGESTION.md: they are bad values, quarantined)",
    )


def _column(col: Column) -> pa.Column:
    checks = []
    if col.dtype == pl.Float64:
        checks.append(_finite())
    if col.positive:
        checks.append(pa.Check.gt(0))
    if col.allowed:
        checks.append(pa.Check.isin(list(col.allowed)))
    return pa.Column(col.dtype, checks=checks, nullable=not col.required)


def staging_schema(table: str) -> pa.DataFrameSchema:
    """Schema of `staging.<table>`: contract columns, `trade_date` when dated, `source_file`."""
    contract = CONTRACT[table]
    columns = {c.name: _column(c) for c in contract.columns}
    if contract.dated:
        columns["trade_date"] = pa.Column(pl.Date, nullable=False)
    columns["source_file"] = pa.Column(pl.String, nullable=False)
    return pa.DataFrameSchema(
        columns,
        checks=ROW_CHECKS.get(table, []),
        unique=list(contract.key) or None,
        name=f"staging.{table}",
        description=f"Validated {table} rows as landed (the data contract, docs/INGESTION.md).",
    )


QUARANTINE = pa.DataFrameSchema(
    {
        "source_table": pa.Column(pl.String, pa.Check.isin(list(CONTRACT)), nullable=False),
        "trade_date": pa.Column(pl.Date, nullable=True),
        "source_file": pa.Column(pl.String, nullable=False),
        "source_row": pa.Column(pl.Int64, pa.Check.ge(1), nullable=False),
        "row_json": pa.Column(pl.String, nullable=False),
        "reasons": pa.Column(
            pl.List(pl.String),
            pa.Check(
                lambda data: data.lazyframe.select(pl.col(data.key).list.len() > 0),
                name="has_reasons",
                description="a quarantined row says why",
            ),
            nullable=False,
        ),
    },
    checks=[
        _row_check(
            "trade_date_iff_dated",
            "trade_date is null exactly for the undated instruments",
            (pl.col("source_table") == "instruments") == pl.col("trade_date").is_null(),
        )
    ],
    unique=["source_table", "trade_date", "source_file", "source_row"],
    name="staging.quarantine",
    description="Landed rows that broke at least one rule, with every reason.",
)

STAGING: dict[str, pa.DataFrameSchema] = {table: staging_schema(table) for table in CONTRACT}

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    **{f"staging.{table}": schema for table, schema in STAGING.items()},
    "staging.quarantine": QUARANTINE,
}


def validate_frame(
    schema: pa.DataFrameSchema, df: pl.DataFrame, max_cases: int | None = None
) -> list[dict[str, Any]]:
    """Every failure of `df` against `schema` (lazy validation); [] when it passes.

    Each failure case is a dict with `schema_context`, `column`, `check`, `check_number`,
    `failure_case` (the offending value or row, as text) and `index` (row number, when known).
    `max_cases` truncates the list (for asset-check metadata).
    """
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as e:
        cases = e.failure_cases
    else:
        return []
    if max_cases is not None:
        cases = cases.head(max_cases)
    return cases.with_columns(pl.col("failure_case").cast(pl.String)).to_dicts()


# --- quality layer --------------------------------------------------------------------------

_BPS_TOLERANCE = 1e-6
# docs/METRICS.md, `status`: an order is filled when Q >= S within this relative tolerance.
_FILLED_TOLERANCE = 1e-9


def _decomposition_check(h: int) -> pa.Check:
    lab = f"{h}s"
    return _row_check(
        f"effective_eq_realized_plus_impact_{lab}",
        f"effective_spread_bps = realized_spread_{lab}_bps + price_impact_{lab}_bps",
        (
            pl.col("effective_spread_bps")
            - pl.col(f"realized_spread_{lab}_bps")
            - pl.col(f"price_impact_{lab}_bps")
        ).abs()
        <= _BPS_TOLERANCE,
    )


def _carried(table: str, *names: str) -> dict[str, pa.Column]:
    """Contract columns a quality table carries: never null where the contract requires them
    (staging holds no row without them, and fills of unknown orders are quarantined).

    Timestamps are checked for nulls only: the warehouse reads them back as "Etc/UTC", an alias
    of the contract's "UTC" that a dtype check would refuse."""
    columns = {}
    for name in names:
        col = CONTRACT[table].column(name)
        checks = [pa.Check.isin(list(col.allowed))] if col.allowed else []
        dtype = None if col.dtype == TS else col.dtype
        columns[name] = pa.Column(dtype, checks, nullable=not col.required)
    return columns


_SIDE_SIGN = pa.Column(pl.Int8, pa.Check.isin([1, -1]), nullable=False)


def _side_sign_check() -> pa.Check:
    return _row_check(
        "side_sign_matches_side",
        "side_sign is +1 for BUY and -1 for SELL and SELL_SHORT (docs/METRICS.md, D)",
        pl.when(pl.col("side") == "BUY")
        .then(pl.col("side_sign") == 1)
        .when(pl.col("side").is_in(["SELL", "SELL_SHORT"]))
        .then(pl.col("side_sign") == -1),
    )


# The fill metrics that need the prevailing quote (docs/METRICS.md, "null when: no prior
# quote"); spread_capture is also null for a locked quote and the markouts and mids at t + h need
# only a quote by t + h, so neither is listed.
FILL_QUOTE_METRICS: tuple[str, ...] = (
    *PREVAILING_QUOTE_COLUMNS,
    *[f"{k}_{h}s_bps" for h in HORIZONS_S for k in ("realized_spread", "price_impact")],
)

_NO_QUOTE = pl.col("null_reason").is_not_null()
_PI = pl.col("price_improvement_bps")

FILL_QUALITY = pa.DataFrameSchema(
    {
        "exec_id": pa.Column(pl.String, nullable=False),
        "trade_date": pa.Column(pl.Date, nullable=False),
        "order_id": pa.Column(pl.String, nullable=False),
        **_carried("executions", "child_id", "symbol", "venue", "liquidity_flag", "exec_ts"),
        **_carried("orders", "side", "algo", "broker", "trader", "urgency"),
        "side_sign": _SIDE_SIGN,
        "qty": pa.Column(pl.Float64, pa.Check.gt(0), nullable=False),
        "price": pa.Column(pl.Float64, pa.Check.gt(0), nullable=False),
        "notional": pa.Column(pl.Float64, pa.Check.gt(0), nullable=False),
        "mid": pa.Column(pl.Float64, pa.Check.gt(0), nullable=True),
        "quoted_spread_bps": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
        "quote_position": pa.Column(
            pl.String, pa.Check.isin(["improved", "at_quote", "outside"]), nullable=True
        ),
        "null_reason": pa.Column(pl.String, pa.Check.isin(["no_prior_quote"]), nullable=True),
    },
    checks=[
        _row_check(
            "nbb_not_above_nbo",
            "the prevailing quote is not crossed",
            pl.col("nbb") <= pl.col("nbo"),
        ),
        _row_check(
            "null_reason_iff_no_quote",
            "the quote-based metrics (" + ", ".join(FILL_QUOTE_METRICS) + ") are all null "
            "exactly when null_reason says why",
            pl.all_horizontal([pl.col(c).is_null() == _NO_QUOTE for c in FILL_QUOTE_METRICS]),
        ),
        _row_check(
            "spread_capture_null_iff_no_quote_or_locked",
            "spread_capture is null exactly when there is no prior quote or it is locked",
            pl.col("spread_capture").is_null() == (_NO_QUOTE | (pl.col("nbb") == pl.col("nbo"))),
        ),
        _row_check(
            "quote_position_matches_price_improvement",
            "quote_position is improved / at_quote / outside as price_improvement_bps is > / = / "
            "< 0",
            pl.col("quote_position")
            == pl.when(_PI > 0)
            .then(pl.lit("improved"))
            .when(_PI == 0)
            .then(pl.lit("at_quote"))
            .when(_PI < 0)
            .then(pl.lit("outside")),
        ),
        _side_sign_check(),
        *[_decomposition_check(h) for h in HORIZONS_S],
    ],
    unique=["exec_id"],
    name="quality.fill_quality",
    description="One row per fill with every fill-level metric.",
)


def _status_check() -> pa.Check:
    filled, size = pl.col("filled_qty"), pl.col("order_qty")
    return _row_check(
        "status_matches_filled_qty",
        "status is unfilled if filled_qty = 0, filled if filled_qty >= order_qty (within "
        f"{_FILLED_TOLERANCE:g}), else partial (docs/METRICS.md)",
        pl.col("status")
        == pl.when(filled <= 0)
        .then(pl.lit("unfilled"))
        .when(filled >= size * (1 - _FILLED_TOLERANCE))
        .then(pl.lit("filled"))
        .otherwise(pl.lit("partial")),
    )


def _graded_check() -> pa.Check:
    ungraded = pl.col("quality_score").is_null()
    return _row_check(
        "graded_iff_cost_known",
        "quality_score and quality_grade are null together, exactly when the cost part cannot "
        "be computed (cost_vs_expected_bps is null) and null_reason then lists not_graded "
        "(docs/METRICS.md, Quality score)",
        (pl.col("quality_grade").is_null() == ungraded)
        & (pl.col("cost_vs_expected_bps").is_null() == ungraded)
        & (
            pl.col("null_reason").str.split(";").list.contains("not_graded").fill_null(False)
            == ungraded
        ),
    )


ORDER_QUALITY = pa.DataFrameSchema(
    {
        "order_id": pa.Column(pl.String, nullable=False),
        "trade_date": pa.Column(pl.Date, nullable=False),
        **_carried(
            "orders",
            "symbol",
            "side",
            "order_type",
            "algo",
            "urgency",
            "broker",
            "trader",
            "account",
            "arrival_ts",
            "decision_ts",
            "end_ts",
        ),
        "side_sign": _SIDE_SIGN,
        "order_qty": pa.Column(pl.Float64, pa.Check.gt(0), nullable=False),
        "filled_qty": pa.Column(pl.Float64, pa.Check.ge(0), nullable=False),
        "fill_count": pa.Column(pl.Int64, pa.Check.ge(0), nullable=False),
        "venue_count": pa.Column(pl.Int64, pa.Check.ge(0), nullable=False),
        # Overfills are quarantined at ingestion, so no order can be more than filled.
        "fill_rate": pa.Column(pl.Float64, pa.Check.in_range(0.0, 1.0 + 1e-9), nullable=False),
        "fees": pa.Column(pl.Float64, nullable=False),
        "status": pa.Column(
            pl.String, pa.Check.isin(["filled", "partial", "unfilled"]), nullable=False
        ),
        "participation_rate": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
        "daily_volatility": pa.Column(pl.Float64, pa.Check.ge(0), nullable=False),
        # Null for an order that is not graded: see the `graded_iff_cost_known` check.
        "quality_score": pa.Column(pl.Float64, pa.Check.in_range(0.0, 100.0), nullable=True),
        "quality_grade": pa.Column(
            pl.String, pa.Check.isin(["excellent", "good", "average", "poor"]), nullable=True
        ),
    },
    checks=[
        _row_check(
            "avg_px_iff_filled",
            "an order has an average price exactly when something filled",
            pl.col("avg_px").is_not_null() == (pl.col("filled_qty") > 0),
        ),
        _row_check(
            "end_not_before_arrival",
            "the order's interval is not reversed",
            pl.col("order_end_ts") >= pl.col("arrival_ts"),
        ),
        _graded_check(),
        _status_check(),
        _side_sign_check(),
    ],
    unique=["order_id"],
    name="quality.order_quality",
    description="One row per parent order with every order-level metric and the quality score.",
)

EXECUTION_QUALITY_EVENTS = pa.DataFrameSchema(
    {
        "event_id": pa.Column(pl.String, nullable=False),
        "event_type": pa.Column(pl.String, pa.Check.isin(["ExecutionQualityEvent"])),
        "schema_version": pa.Column(pl.String, pa.Check.str_matches(r"^\d+\.\d+\.\d+$")),
        "trade_date": pa.Column(pl.Date, nullable=False),
        "order_id": pa.Column(pl.String, nullable=False),
        "payload": pa.Column(pl.String, pa.Check.str_startswith("{"), nullable=False),
    },
    unique=["event_id"],
    name="quality.execution_quality_events",
    description="ExecutionQualityEvent envelope and JSON payload, one per order.",
)

SCHEMAS.update(
    {
        "quality.fill_quality": FILL_QUALITY,
        "quality.order_quality": ORDER_QUALITY,
        "quality.execution_quality_events": EXECUTION_QUALITY_EVENTS,
    }
)


# --- venue layer (docs/VENUES.md) ---------------------------------------------------------------

_UNIT = pa.Check.in_range(0.0, 1.0)
_FLAG_VALUES = ["ADD", "REMOVE", "MID", "AUCTION", "ALL"]


def _venue_figures() -> dict[str, pa.Column]:
    return {
        "venue": pa.Column(pl.String, nullable=False),
        "fills": pa.Column(pl.UInt32, pa.Check.ge(0), nullable=False),
        "shares": pa.Column(pl.Float64, pa.Check.ge(0), nullable=False),
        "flow_share": pa.Column(pl.Float64, _UNIT, nullable=True),
        "fill_rate": pa.Column(pl.Float64, _UNIT, nullable=True),
        "pct_improved": pa.Column(pl.Float64, _UNIT, nullable=True),
        "pct_at_quote": pa.Column(pl.Float64, _UNIT, nullable=True),
        "pct_outside": pa.Column(pl.Float64, _UNIT, nullable=True),
        "latency_p95_ms": pa.Column(pl.Float64, nullable=True),
        "all_in_cost_bps": pa.Column(pl.Float64, nullable=True),
    }


VENUE_DAILY = pa.DataFrameSchema(
    {"trade_date": pa.Column(pl.Date, nullable=False), **_venue_figures()},
    checks=[
        _row_check(
            "median_latency_not_above_p95",
            "the median fill latency is not above its 95th percentile",
            pl.col("latency_median_ms") <= pl.col("latency_p95_ms") + 1e-9,
        )
    ],
    unique=["trade_date", "venue"],
    name="venue.venue_daily",
    description="One row per venue and trade date.",
)

VENUE_DAILY_BUCKETS = pa.DataFrameSchema(
    {
        "trade_date": pa.Column(pl.Date, nullable=False),
        "breakdown": pa.Column(
            pl.String,
            pa.Check.isin(["liquidity_flag", "size_bucket", "liquidity_bucket", "cell"]),
            nullable=False,
        ),
        "liquidity_flag": pa.Column(pl.String, pa.Check.isin(_FLAG_VALUES), nullable=False),
        "size_bucket": pa.Column(
            pl.String, pa.Check.isin(["small", "medium", "large", "unknown", "ALL"])
        ),
        "liquidity_bucket": pa.Column(
            pl.String, pa.Check.isin(["low", "mid", "high", "unknown", "ALL"])
        ),
        **_venue_figures(),
    },
    unique=[
        "trade_date",
        "breakdown",
        "venue",
        "liquidity_flag",
        "size_bucket",
        "liquidity_bucket",
    ],
    name="venue.venue_daily_buckets",
    description="venue_daily figures per liquidity flag, size bucket, liquidity bucket and cell.",
)


def _ci_check(metric: str) -> pa.Check:
    return _row_check(
        f"ci_contains_{metric}",
        f"{metric}_ci_low <= {metric} <= {metric}_ci_high",
        (pl.col(f"{metric}_ci_low") <= pl.col(metric) + 1e-9)
        & (pl.col(metric) <= pl.col(f"{metric}_ci_high") + 1e-9),
    )


VENUE_SCORECARD = pa.DataFrameSchema(
    {
        "venue": pa.Column(pl.String, nullable=False, unique=True),
        "window_start": pa.Column(pl.Date, nullable=False),
        "window_end": pa.Column(pl.Date, nullable=False),
        "trade_days": pa.Column(pl.Int32, pa.Check.ge(1), nullable=False),
        "score": pa.Column(pl.Float64, nullable=True),
        "rank": pa.Column(pl.Int32, pa.Check.ge(1), nullable=True),
        "fills": pa.Column(pl.UInt32, pa.Check.ge(0), nullable=False),
        "flow_share": pa.Column(pl.Float64, _UNIT, nullable=True),
        "fill_rate": pa.Column(pl.Float64, _UNIT, nullable=True),
        "fill_rate_ci_low": pa.Column(pl.Float64, _UNIT, nullable=True),
        "fill_rate_ci_high": pa.Column(pl.Float64, _UNIT, nullable=True),
        "fill_rate_unadjusted": pa.Column(pl.Float64, _UNIT, nullable=True),
        "all_in_cost_bps": pa.Column(pl.Float64, nullable=True),
        "all_in_cost_bps_ci_low": pa.Column(pl.Float64, nullable=True),
        "all_in_cost_bps_ci_high": pa.Column(pl.Float64, nullable=True),
        "style_mix": pa.Column(pl.String, nullable=True),
        "note": pa.Column(pl.String, nullable=True),
    },
    checks=[
        _ci_check(m)
        for m in (
            "score",
            "all_in_cost_bps",
            "fill_rate",
            "markout_60s_bps",
            *(f"{w}_within_style" for w in WITHIN_STYLE_METRICS),
        )
    ],
    name="venue.venue_scorecard",
    description="Per venue over the trailing window: adjusted metrics, intervals, score, rank.",
)

ROUTING_RECOMMENDATIONS = pa.DataFrameSchema(
    {
        "liquidity_bucket": pa.Column(pl.String, nullable=False),
        "size_bucket": pa.Column(pl.String, nullable=False),
        "venue": pa.Column(pl.String, nullable=False),
        "current_share": pa.Column(pl.Float64, _UNIT, nullable=False),
        "recommended_share": pa.Column(pl.Float64, pa.Check.in_range(0.0, 1.0 + 1e-9)),
        "capacity_share": pa.Column(pl.Float64, pa.Check.in_range(0.0, 1.0 + 1e-9)),
        "fill_rate": pa.Column(pl.Float64, nullable=True),
        "wait_s": pa.Column(pl.Float64, pa.Check.ge(0.0), nullable=False),
        "delay_cost_bps": pa.Column(pl.Float64, pa.Check.ge(0.0), nullable=False),
        "drift_bps_per_s": pa.Column(pl.Float64, pa.Check.ge(0.0), nullable=False),
        "expected_saving_bps": pa.Column(pl.Float64, nullable=False),
    },
    checks=[
        _row_check(
            "recommended_within_capacity",
            "recommended_share <= capacity_share",
            pl.col("recommended_share") <= pl.col("capacity_share") + 1e-6,
        )
    ],
    unique=["liquidity_bucket", "size_bucket", "venue"],
    name="venue.routing_recommendations",
    description="Current and recommended routed share per liquidity bucket, size bucket and venue.",
)

VENUE_PERFORMANCE_EVENTS = pa.DataFrameSchema(
    {
        "event_id": pa.Column(pl.String, nullable=False, unique=True),
        "event_type": pa.Column(pl.String, pa.Check.isin(["VenuePerformanceEvent"])),
        "schema_version": pa.Column(pl.String, pa.Check.str_matches(r"^\d+\.\d+\.\d+$")),
        "window_end": pa.Column(pl.Date, nullable=False),
        "venue": pa.Column(pl.String, nullable=False),
        "payload": pa.Column(pl.String, pa.Check.str_startswith("{"), nullable=False),
    },
    name="venue.venue_performance_events",
    description="VenuePerformanceEvent envelope and JSON payload, one per venue per refresh.",
)

SCHEMAS.update(
    {
        "venue.venue_daily": VENUE_DAILY,
        "venue.venue_daily_buckets": VENUE_DAILY_BUCKETS,
        "venue.venue_scorecard": VENUE_SCORECARD,
        "venue.routing_recommendations": ROUTING_RECOMMENDATIONS,
        "venue.venue_performance_events": VENUE_PERFORMANCE_EVENTS,
    }
)

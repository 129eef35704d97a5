"""The window's orders as the algo analysis reads them: one row per parent order of
`quality.order_quality`, with its weight, the buckets of what the trader chose before the algo
(the scorecard's cell and controls), its cluster and its difficulty.

An order is (trade_date, order_id). Its weight is its notional at arrival (order_qty x the
arrival mid): implementation shortfall is in bps of that notional, so the weighted mean of the
orders' shortfalls is the desk's total shortfall over its total notional. An order without an
arrival quote has no weight and enters no estimate (its costs are null anyway).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, time

import polars as pl

from eqs_pipeline.algos.settings import (
    CONTROL_LEVELS,
    DIFFICULTY_BUCKETS,
    SIZE_BUCKETS,
    AlgoSettings,
    time_edges_minutes,
)
from eqs_pipeline.core.buckets import UNKNOWN, bucket
from eqs_pipeline.core.contract import ORDER_KEY
from eqs_pipeline.costmodel.features import ORDER_INPUTS

WEIGHT = "arrival_notional"
# The order's reversion after its end, whatever horizon the quality settings name it after
# (`reversion_300s_bps` by default).
REVERSION = "reversion_bps"
_REVERSION_PATTERN = re.compile(r"reversion_\d+s_bps")

# What the analysis reads of `quality.order_quality` (the cost model's arrival features
# included: the selection prices each order under other algos). `allocation` and
# `allocation_prob` are optional contract columns: missing, they read as null.
ORDER_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            *ORDER_KEY,
            # What the cost model reads of an order (its arrival features and the target).
            *ORDER_INPUTS,
            "end_ts",
            "filled_qty",
            "fill_rate",
            "notional",
            "arrival_slippage_bps",
            "interval_vwap_slippage_bps",
            "interval_twap_slippage_bps",
            "expected_cost_bps",
            "expected_cost_source",
            "cost_vs_expected_bps",
            "cost_z",
            "cost_percentile",
            "participation_rate",
            "duration_s",
            "spread_capture",
            "pct_passive",
            "venue_count",
        )
    )
)
OPTIONAL_COLUMNS: dict[str, pl.DataType] = {
    "allocation": pl.String(),
    "allocation_prob": pl.Float64(),
}
# The columns `algo_orders` adds.
BUCKETS: tuple[str, ...] = ("size_bucket", "volatility_bucket", "spread_bucket", "time_bucket")


def order_columns(available: list[str]) -> list[str]:
    """The columns to read of an order_quality partition holding `available`: `ORDER_COLUMNS`,
    its reversion column and the optional columns it has."""
    reversion = [c for c in available if _REVERSION_PATTERN.fullmatch(c)]
    optional = [c for c in OPTIONAL_COLUMNS if c in available]
    return [*ORDER_COLUMNS, *reversion[:1], *optional]


def _session_edges(settings: AlgoSettings, dates: list[date]) -> tuple[pl.Expr, pl.Expr]:
    """Per row, the instants of the two `time_edges` on the session clock of its trade date."""
    zone = zoneinfo.ZoneInfo(settings.session_timezone)
    out = []
    for minutes in time_edges_minutes(settings):
        clock = time(minutes // 60, minutes % 60)
        instants = {d: datetime.combine(d, clock, zone).timestamp() for d in dates}
        out.append(pl.col("trade_date").replace_strict(instants, return_dtype=pl.Float64))
    return out[0], out[1]


def _time_bucket(settings: AlgoSettings, dates: list[date]) -> pl.Expr:
    opens, closes = _session_edges(settings, dates)
    arrival = pl.col("arrival_ts").dt.epoch("us") / 1e6
    return (
        pl.when(arrival.is_null())
        .then(pl.lit(UNKNOWN))
        .when(arrival < opens)
        .then(pl.lit("open"))
        .when(arrival < closes)
        .then(pl.lit("midday"))
        .otherwise(pl.lit("close"))
    )


def _cluster(settings: AlgoSettings) -> pl.Expr:
    day = pl.col("trade_date").cast(pl.String)
    if settings.cluster == "order":
        return pl.concat_str(day, pl.col("order_id"), separator="|")
    return pl.concat_str(pl.col("symbol"), day, separator="|")


def algo_orders(order_quality: pl.DataFrame | pl.LazyFrame, settings: AlgoSettings) -> pl.DataFrame:
    """The orders (rows of `quality.order_quality`, `order_columns` of them) with their weight
    (`WEIGHT`), `BUCKETS`, `urgency_level` (the urgency, `unknown` when not landed),
    `conditions` (the levels of `settings.controls` joined with "|"), `cluster`, the reversion
    as `REVERSION` and the optional columns (null where not landed), in the rows' order (the
    window's reader reads them date by date: a deterministic order). Not sorted again: sorting
    on the string key held about three times the frame's size at its peak (210k orders: 0.18
    GiB), and nothing downstream needs an order beyond the alignment with these rows."""
    lazy = order_quality.lazy()
    schema = lazy.collect_schema()
    reversion = [c for c in schema.names() if _REVERSION_PATTERN.fullmatch(c)]
    missing = {c: pl.lit(None, t) for c, t in OPTIONAL_COLUMNS.items() if c not in schema}
    frame = lazy.with_columns(
        (pl.col(reversion[0]) if reversion else pl.lit(None, pl.Float64)).alias(REVERSION),
        **missing,
    ).collect()
    dates = frame["trade_date"].unique().to_list()
    levels = {
        "size_bucket": bucket(
            pl.col("size_pct_adv") * 100, settings.size_edges_pct_adv, SIZE_BUCKETS
        ),
        "volatility_bucket": bucket(
            pl.col("daily_volatility") * 1e4,
            settings.volatility_edges_bps,
            CONTROL_LEVELS["volatility_bucket"][:3],
        ),
        "spread_bucket": bucket(
            pl.col("arrival_spread_bps"),
            settings.spread_edges_bps,
            CONTROL_LEVELS["spread_bucket"][:3],
        ),
        "time_bucket": _time_bucket(settings, dates),
    }
    urgency = pl.col("urgency").cast(pl.String).fill_null(pl.lit(UNKNOWN))
    weight = pl.col("order_qty") * pl.col("arrival_mid")
    frame = frame.with_columns(
        **levels,
        urgency_level=urgency,
        **{WEIGHT: pl.when(weight > 0).then(weight)},
        cluster=_cluster(settings),
    )
    parts = [pl.col("urgency_level" if c == "urgency" else c) for c in settings.controls]
    conditions = pl.concat_str(parts, separator="|") if parts else pl.lit("")
    return frame.with_columns(conditions=conditions.cast(pl.Categorical))


def with_difficulty(
    frame: pl.DataFrame, difficulty_bps: pl.Series | None, settings: AlgoSettings
) -> pl.DataFrame:
    """`frame` with `difficulty_bps`, `difficulty_bucket` and `difficulty_source`.

    Difficulty is what an order like this one is expected to cost whichever algo works it:
    `difficulty_bps`, aligned with the rows, the cost model's expected cost at the desk's algo
    mix (`selection`). Without it (no cost model in service), the order's own expected cost
    from `quality.order_quality` stands in, and `difficulty_source` says so."""
    if difficulty_bps is not None and difficulty_bps.len() != frame.height:
        raise ValueError(
            f"difficulty_bps has {difficulty_bps.len()} values for {frame.height} orders"
        )
    if difficulty_bps is None:
        value = pl.col("expected_cost_bps")
        source = pl.concat_str(pl.lit("own expected cost: "), pl.col("expected_cost_source"))
    else:
        value = pl.lit(difficulty_bps.cast(pl.Float64))
        source = pl.lit("cost model at the desk's algo mix")
    return frame.with_columns(difficulty_bps=value).with_columns(
        difficulty_bucket=bucket(
            pl.col("difficulty_bps"), settings.difficulty_edges_bps, DIFFICULTY_BUCKETS
        ),
        difficulty_source=pl.when(pl.col("difficulty_bps").is_not_null()).then(source),
    )

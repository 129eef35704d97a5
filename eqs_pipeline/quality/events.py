"""ExecutionQualityEvent records: one per order, with a versioned JSON payload.

The envelope (event_id, event_type, schema_version, trade_date, order_id, event_ts) is columnar
so that consumers can filter without parsing; the payload carries the order's quality figures.
`event_id` = eqe:<trade_date>:<order_id>:<schema_version> (trade_date in ISO form, e.g.
`eqe:2024-03-04:O1:1.0.0`): order ids are unique per trade date only (docs/INGESTION.md), so the
date is part of the order's identity. A re-run of a partition emits the same ids and consumers
can de-duplicate; the same order_id on two dates gives two ids.
"""

from __future__ import annotations

import re

import polars as pl

EVENT_TYPE = "ExecutionQualityEvent"
SCHEMA_VERSION = "1.0.0"

PAYLOAD_FIELDS: tuple[str, ...] = (
    "order_id",
    "symbol",
    "side",
    "algo",
    "broker",
    "trader",
    "status",
    "order_qty",
    "filled_qty",
    "fill_rate",
    "avg_px",
    "arrival_mid",
    "arrival_slippage_bps",
    "interval_vwap_slippage_bps",
    "interval_twap_slippage_bps",
    "implementation_shortfall_bps",
    "opportunity_cost_bps",
    "participation_rate",
    "fee_bps",
    "effective_spread_bps",
    "price_improvement_bps",
    "pct_passive",
    "time_to_first_fill_s",
    "duration_s",
    "reversion_300s_bps",  # named after the configured horizon: see `payload_fields`
    "expected_cost_bps",
    "quality_score",
    "quality_grade",
)


_REVERSION = re.compile(r"reversion_\w+_bps")


def payload_fields(columns: list[str]) -> list[str]:
    """The payload's fields among the order rows' columns, in PAYLOAD_FIELDS' order. Reversion is
    named after `QualitySettings.reversion_horizon_s` (`reversion_60s_bps` when it is 60 s), and
    the payload carries it under the same name as the table."""
    fields = []
    for name in PAYLOAD_FIELDS:
        if _REVERSION.fullmatch(name):
            fields += [c for c in columns if _REVERSION.fullmatch(c)]
        elif name in columns:
            fields.append(name)
    return fields


def execution_quality_events(order_quality: pl.LazyFrame, emitted_at: pl.Expr) -> pl.LazyFrame:
    """Events for every order row; `emitted_at` is the materialization instant (a literal)."""
    fields = payload_fields(order_quality.collect_schema().names())
    event_ts = pl.coalesce("order_end_ts", "arrival_ts")
    return order_quality.select(
        pl.concat_str(
            pl.lit("eqe:"),
            pl.col("trade_date").cast(pl.String),
            pl.lit(":"),
            pl.col("order_id"),
            pl.lit(f":{SCHEMA_VERSION}"),
        ).alias("event_id"),
        pl.lit(EVENT_TYPE).alias("event_type"),
        pl.lit(SCHEMA_VERSION).alias("schema_version"),
        "trade_date",
        "order_id",
        "symbol",
        event_ts.alias("event_ts"),
        emitted_at.alias("emitted_at"),
        pl.struct(
            pl.lit(EVENT_TYPE).alias("event_type"),
            pl.lit(SCHEMA_VERSION).alias("schema_version"),
            pl.col("trade_date").cast(pl.String).alias("trade_date"),
            event_ts.dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ").alias("event_ts"),
            *fields,
        )
        .struct.json_encode()
        .alias("payload"),
    )

"""Fill- and child-level frames of the venue analysis, each row tagged with its comparison cell.

A fill's cell is (liquidity_flag, size_bucket, liquidity_bucket): the flag it executed with, the
size of its parent order relative to ADV, and the dollar ADV of its symbol. A child order's cell
uses the flag its style implies (MIDPEG -> MID, IOC or MARKET -> REMOVE, else ADD), since an
unfilled child has no executed flag. Buckets come from `quality.order_quality` (size_pct_adv,
adv_shares, arrival_mid); an order without them is in bucket `unknown`.
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.settings import HORIZONS_S
from eqs_pipeline.venues.settings import UNKNOWN, VenueSettings

FILL_METRICS: tuple[str, ...] = (
    "quoted_spread_bps",
    "effective_spread_bps",
    "price_improvement_bps",
    *[f"{m}_{h}s_bps" for h in HORIZONS_S for m in ("realized_spread", "price_impact", "markout")],
    "fee_bps",
    "all_in_cost_bps",
)


def _bucket(value: pl.Expr, edges: tuple[float, float], names: tuple[str, str, str]) -> pl.Expr:
    low, high = edges
    return (
        pl.when(value.is_null() | value.is_nan())
        .then(pl.lit(UNKNOWN))
        .when(value < low)
        .then(pl.lit(names[0]))
        .when(value < high)
        .then(pl.lit(names[1]))
        .otherwise(pl.lit(names[2]))
    )


def order_buckets(order_quality: pl.LazyFrame, settings: VenueSettings) -> pl.LazyFrame:
    """order_id -> symbol, size_bucket, liquidity_bucket, dollar_adv.

    The symbol's dollar ADV is adv_shares times the median arrival mid of its orders that day,
    so every order of a symbol-day lands in the same liquidity bucket.
    """
    ref_price = pl.col("arrival_mid").median().over("trade_date", "symbol")
    dollar_adv = pl.col("adv_shares") * ref_price
    return order_quality.select(
        "order_id",
        "symbol",
        _bucket(pl.col("size_pct_adv") * 100, settings.size_edges_pct_adv, ("small", "medium", "large"))
        .alias("size_bucket"),
        _bucket(dollar_adv, settings.liquidity_edges_usd, ("low", "mid", "high")).alias(
            "liquidity_bucket"
        ),
        dollar_adv.alias("dollar_adv"),
    )  # fmt: skip


def _cluster(settings: VenueSettings) -> pl.Expr:
    if settings.cluster == "order":
        return pl.col("order_id")
    return pl.concat_str(pl.col("symbol"), pl.col("trade_date").cast(pl.String), separator="|")


def _with_buckets(frame: pl.LazyFrame, buckets: pl.LazyFrame) -> pl.LazyFrame:
    return frame.join(buckets, on="order_id", how="left").with_columns(
        pl.col("size_bucket").fill_null(UNKNOWN), pl.col("liquidity_bucket").fill_null(UNKNOWN)
    )


def venue_fills(
    fill_quality: pl.LazyFrame,
    child_orders: pl.LazyFrame,
    order_quality: pl.LazyFrame,
    settings: VenueSettings | None = None,
) -> pl.LazyFrame:
    """One row per fill with its venue, cell, cluster, latency and all-in cost.

    all_in_cost_bps = fee_bps - markout_{h}_bps (h = settings.all_in_horizon_s): what was paid
    against the mid plus fees, plus the adverse move of the mid after the fill. A missing fee
    counts as zero (fees are optional in the contract).
    """
    settings = settings or VenueSettings()
    markout = f"markout_{settings.all_in_horizon_s}s_bps"
    buckets = order_buckets(order_quality, settings).drop("symbol")
    sent = child_orders.select("child_id", "sent_ts")
    fills = fill_quality.join(sent, on="child_id", how="left")
    return (
        _with_buckets(fills, buckets)
        .with_columns(
            latency_ms=(pl.col("exec_ts") - pl.col("sent_ts")).dt.total_microseconds() / 1e3,
            all_in_cost_bps=pl.col("fee_bps").fill_null(0.0) - pl.col(markout),
            cluster=_cluster(settings),
        )
        .select(
            "trade_date",
            "exec_id",
            "order_id",
            "child_id",
            "symbol",
            "venue",
            "liquidity_flag",
            "size_bucket",
            "liquidity_bucket",
            "cluster",
            "qty",
            "notional",
            "fee",
            "quote_position",
            "latency_ms",
            *FILL_METRICS,
        )
    )


def child_flag() -> pl.Expr:
    """The liquidity flag a child order's style implies."""
    return (
        pl.when(pl.col("order_type") == "MIDPEG")
        .then(pl.lit("MID"))
        .when((pl.col("tif") == "IOC") | (pl.col("order_type") == "MARKET"))
        .then(pl.lit("REMOVE"))
        .otherwise(pl.lit("ADD"))
    )


def venue_children(
    child_orders: pl.LazyFrame,
    fill_quality: pl.LazyFrame,
    order_quality: pl.LazyFrame,
    settings: VenueSettings | None = None,
) -> pl.LazyFrame:
    """One row per child order: venue, cell, routed and executed quantity, fill rate."""
    settings = settings or VenueSettings()
    executed = (
        fill_quality.filter(pl.col("child_id").is_not_null())
        .group_by("child_id")
        .agg(filled_qty=pl.col("qty").sum())
    )
    buckets = order_buckets(order_quality, settings)
    return (
        _with_buckets(child_orders.join(executed, on="child_id", how="left"), buckets)
        .with_columns(
            liquidity_flag=child_flag(),
            # Over-fills are quarantined at ingestion; the clip guards hand-made inputs.
            filled_qty=pl.min_horizontal(pl.col("filled_qty").fill_null(0.0), pl.col("qty")),
        )
        .with_columns(
            fill_rate=pl.col("filled_qty") / pl.col("qty"),
            cluster=_cluster(settings),
        )
        .select(
            "trade_date",
            "child_id",
            "order_id",
            "symbol",
            "venue",
            "liquidity_flag",
            "size_bucket",
            "liquidity_bucket",
            "cluster",
            "qty",
            "filled_qty",
            "fill_rate",
        )
    )

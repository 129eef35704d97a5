"""Per venue and trade date aggregates: `venue.venue_daily` and its bucket breakdowns.

Fill metrics are share-weighted over the fills where the metric is known (DESIGN.md); E/Q is
sum(effective x shares) / sum(quoted x shares); the quote-position percentages are shares of the
fills with a known quote; fill latency is the distribution over fills of exec_ts - sent_ts;
the fill rate is executed / routed quantity of the child orders.
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.venues.frames import FILL_METRICS

ALL = "ALL"
DIMENSIONS: tuple[str, ...] = ("liquidity_flag", "size_bucket", "liquidity_bucket")


def _share_weighted(metric: str) -> pl.Expr:
    known = pl.col("qty").filter(pl.col(metric).is_not_null()).sum()
    return pl.when(known > 0).then((pl.col(metric) * pl.col("qty")).sum() / known)


def _pct_position(position: str) -> pl.Expr:
    known = pl.col("qty").filter(pl.col("quote_position").is_not_null()).sum()
    hit = pl.col("qty").filter(pl.col("quote_position") == position).sum()
    return pl.when(known > 0).then(hit / known)


def _eq_ratio() -> pl.Expr:
    both = pl.col("effective_spread_bps").is_not_null() & pl.col("quoted_spread_bps").is_not_null()
    eff = (pl.col("effective_spread_bps") * pl.col("qty")).filter(both).sum()
    quoted = (pl.col("quoted_spread_bps") * pl.col("qty")).filter(both).sum()
    return pl.when(quoted > 0).then(eff / quoted)


def fill_aggregates() -> list[pl.Expr]:
    """The per-group fill figures (one expression each, no per-row Python)."""
    return [
        pl.len().alias("fills"),
        pl.col("qty").sum().alias("shares"),
        pl.col("notional").sum().alias("notional"),
        pl.col("latency_ms").median().alias("latency_median_ms"),
        pl.col("latency_ms").quantile(0.95, "linear").alias("latency_p95_ms"),
        _eq_ratio().alias("eq_ratio"),
        _pct_position("improved").alias("pct_improved"),
        _pct_position("at_quote").alias("pct_at_quote"),
        _pct_position("outside").alias("pct_outside"),
        pl.col("fee").filter(pl.col("fee") > 0).sum().alias("fees_paid"),
        (-pl.col("fee").filter(pl.col("fee") < 0)).sum().alias("rebates_received"),
        *[_share_weighted(m).alias(m) for m in FILL_METRICS],
    ]


def child_aggregates() -> list[pl.Expr]:
    return [
        pl.len().alias("child_orders"),
        pl.col("qty").sum().alias("routed_qty"),
        pl.col("filled_qty").sum().alias("executed_qty"),
        (pl.col("filled_qty").sum() / pl.col("qty").sum()).alias("fill_rate"),
    ]


def _aggregate(fills: pl.LazyFrame, children: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    by = ["trade_date", "venue", *keys]
    f = fills.group_by(by).agg(fill_aggregates())
    c = children.group_by(by).agg(child_aggregates())
    out = f.join(c, on=by, how="full", coalesce=True).with_columns(
        pl.col("fills", "shares", "notional", "fees_paid", "rebates_received").fill_null(0),
        pl.col("child_orders").fill_null(0),
        pl.col("routed_qty", "executed_qty").fill_null(0.0),
    )
    return out.with_columns(
        flow_share=pl.when(pl.col("shares").sum().over("trade_date", *keys) > 0).then(
            pl.col("shares") / pl.col("shares").sum().over("trade_date", *keys)
        )
    )


def _columns(keys: list[str]) -> list[str]:
    return [
        "trade_date",
        "venue",
        *keys,
        "fills",
        "shares",
        "notional",
        "flow_share",
        "child_orders",
        "routed_qty",
        "executed_qty",
        "fill_rate",
        "latency_median_ms",
        "latency_p95_ms",
        "eq_ratio",
        "pct_improved",
        "pct_at_quote",
        "pct_outside",
        "fees_paid",
        "rebates_received",
        *FILL_METRICS,
    ]


def venue_daily(fills: pl.LazyFrame, children: pl.LazyFrame) -> pl.LazyFrame:
    """One row per venue and trade date (the fill and child rows of `frames.venue_frames`)."""
    return _aggregate(fills, children, []).select(_columns([])).sort("trade_date", "venue")


def venue_daily_buckets(fills: pl.LazyFrame, children: pl.LazyFrame) -> pl.LazyFrame:
    """The same figures per venue, trade date and bucket.

    `breakdown` names the grouping: `liquidity_flag`, `size_bucket` or `liquidity_bucket` (the
    other two dimensions read ALL), or `cell` (all three set). flow_share is the venue's share
    of our shares within the same trade date and bucket.
    """
    parts = []
    groupings = [[d] for d in DIMENSIONS] + [list(DIMENSIONS)]
    for keys in groupings:
        fixed = [pl.lit(ALL).alias(d) for d in DIMENSIONS if d not in keys]
        name = keys[0] if len(keys) == 1 else "cell"
        parts.append(
            _aggregate(fills, children, keys)
            .with_columns(*fixed, breakdown=pl.lit(name))
            .select(["breakdown", *_columns(list(DIMENSIONS))])
        )
    return pl.concat(parts).sort("trade_date", "breakdown", "venue", *DIMENSIONS)

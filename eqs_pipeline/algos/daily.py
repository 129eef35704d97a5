"""`algo.algo_daily`: per algo and trade date, and broken down by broker, urgency and
difficulty bucket, the orders' figures as the desk saw them (raw, not adjusted: the window's
scorecards adjust).

One row per trade date, algo and breakdown: `breakdown` is `all` (the algo's whole day),
`broker`, `urgency` or `difficulty`, and the column of that name holds the group (null in the
other breakdowns' rows). Each figure is weighted as its name and docs/ALGOS.md say:

- arrival notional (order_qty x arrival mid; the weight of a cost in bps of it):
  implementation_shortfall_bps, cost_vs_expected_bps;
- executed notional (the fills' qty x price; the weight of a cost in bps of the fill price):
  arrival, interval VWAP and TWAP slippage, reversion;
- executed shares: spread_capture, pct_passive, participation_rate;
- orders (plain means): cost_z, cost_percentile, duration_s, venue_count;
- fill_rate: filled shares over ordered shares.
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.algos.frames import REVERSION, WEIGHT

BREAKDOWNS: dict[str, str | None] = {
    "all": None,
    "broker": "broker",
    "urgency": "urgency_level",
    "difficulty": "difficulty_bucket",
}
# The groups' columns of the table, in order (the urgency as `urgency`, `unknown` when not
# landed).
GROUP_COLUMNS: tuple[str, ...] = ("broker", "urgency", "difficulty_bucket")

_BY_ARRIVAL = ("implementation_shortfall_bps", "cost_vs_expected_bps")
_BY_EXECUTED = (
    "arrival_slippage_bps",
    "interval_vwap_slippage_bps",
    "interval_twap_slippage_bps",
    REVERSION,
)
_BY_SHARES = ("spread_capture", "pct_passive", "participation_rate")
_BY_ORDER = ("cost_z", "cost_percentile", "duration_s", "venue_count")


def _weighted(value: str, weight: pl.Expr) -> pl.Expr:
    """The weighted mean of `value` over the rows where it and the weight are known (null
    when none is)."""
    known = pl.col(value).is_not_null() & pl.col(value).is_not_nan() & (weight > 0)
    total = weight.filter(known).sum()
    return pl.when(total > 0).then((pl.col(value) * weight).filter(known).sum() / total)


def _figures() -> list[pl.Expr]:
    executed = pl.col("notional").fill_null(0.0)
    shares = pl.col("filled_qty")
    return [
        pl.len().cast(pl.UInt32).alias("orders"),
        pl.col(WEIGHT).sum().alias("arrival_notional"),
        executed.sum().alias("notional"),
        (pl.col("filled_qty").sum() / pl.col("order_qty").sum()).alias("fill_rate"),
        *(_weighted(m, pl.col(WEIGHT)).alias(m) for m in _BY_ARRIVAL),
        *(_weighted(m, executed).alias(m) for m in _BY_EXECUTED),
        *(_weighted(m, shares).alias(m) for m in _BY_SHARES),
        *(pl.col(m).cast(pl.Float64).fill_nan(None).mean().alias(m) for m in _BY_ORDER),
    ]


def algo_daily(orders: pl.DataFrame) -> pl.DataFrame:
    """The rows of `algo.algo_daily` of `orders` (`frames.algo_orders` rows with their
    difficulty, `frames.with_difficulty`), every trade date they hold."""
    parts = []
    for name, column in BREAKDOWNS.items():
        keys = ["trade_date", "algo"] + ([column] if column else [])
        part = orders.group_by(keys).agg(_figures()).with_columns(breakdown=pl.lit(name))
        if column == "urgency_level":
            part = part.rename({"urgency_level": "urgency"})
        parts.append(part)
    frame = pl.concat(parts, how="diagonal_relaxed")
    for column in GROUP_COLUMNS:
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(column))
    order = list(BREAKDOWNS)
    return frame.select(
        "trade_date",
        "algo",
        "breakdown",
        *GROUP_COLUMNS,
        *(c for c in frame.columns if c not in {"trade_date", "algo", "breakdown", *GROUP_COLUMNS}),
    ).sort(
        "trade_date",
        "algo",
        pl.col("breakdown").replace_strict(order, list(range(len(order)))),
        *GROUP_COLUMNS,
        nulls_last=False,
    )

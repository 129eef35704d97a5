"""Daily quality series and their trend forecasts (`model.quality_forecast`, docs/MODEL.md).

For the desk and for each algo, broker and venue with enough orders: the daily mean of each
order's `cost_z` and `cost_vs_expected_bps` with its standard error, then a forecast of the
next trade dates from the local-level model of `forecast` (imported when forecasting: it
imports JAX). An order counts toward a venue in proportion to the share of its filled quantity
that the venue executed. Pure: Polars in, Polars out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from eqs_pipeline.tables.model import QUALITY_FORECAST

METRICS: tuple[str, ...] = ("cost_z", "cost_vs_expected_bps")
DIMENSIONS: tuple[str, ...] = ("desk", "algo", "broker", "venue")
DESK = "all"


@dataclass(frozen=True)
class TrendSettings:
    """window_days: trade dates of history; horizon: trade dates forecast;
    min_orders: orders (venue: order-equivalents) a subject needs over the window to be
    forecast; min_daily_orders: fewer on a day and that day counts as missing;
    min_history: observed days a series needs (`forecast.ForecastSettings.min_history`)."""

    window_days: int = 60
    horizon: int = 5
    min_orders: float = 100.0
    min_daily_orders: float = 5.0
    min_history: int = 10


def _weighted(metric: str) -> list[pl.Expr]:
    """Weighted mean, its standard error (effective-size formula) and the weight, by group."""
    w, x = pl.col("_w"), pl.col(metric)
    total = w.sum()
    mean = (w * x).sum() / total
    n_eff = total**2 / (w**2).sum()
    var = (w * (x - mean) ** 2).sum() / total
    return [
        mean.alias("value"),
        (var / n_eff).sqrt().alias("std_error"),
        total.alias("orders"),
    ]


def daily_series(
    orders: pl.DataFrame, venue_shares: pl.DataFrame, settings: TrendSettings | None = None
) -> pl.DataFrame:
    """Long frame: dimension, subject, metric, trade_date, value, std_error, orders.

    `orders`: trade_date, order_id, algo, broker and the METRICS (rows with a null metric are
    left out of that metric). `venue_shares`: trade_date, order_id, venue, share (of the
    order's filled quantity). Subjects with fewer than `min_orders` over the frame are left
    out; a day with fewer than `min_daily_orders` has a null value."""
    settings = settings or TrendSettings()
    base = orders.select("trade_date", "order_id", "algo", "broker", *METRICS)
    by_dimension = {
        "desk": base.with_columns(subject=pl.lit(DESK), _w=pl.lit(1.0)),
        "algo": base.with_columns(subject=pl.col("algo"), _w=pl.lit(1.0)),
        "broker": base.with_columns(subject=pl.col("broker"), _w=pl.lit(1.0)),
        "venue": base.join(venue_shares, on=["trade_date", "order_id"]).with_columns(
            subject=pl.col("venue"), _w=pl.col("share")
        ),
    }
    parts = []
    for dimension, rows in by_dimension.items():
        for metric in METRICS:
            known = rows.filter(pl.col(metric).is_not_null() & pl.col("subject").is_not_null())
            daily = known.group_by("subject", "trade_date").agg(*_weighted(metric))
            enough = daily.group_by("subject").agg(pl.col("orders").sum().alias("_total"))
            daily = (
                daily.join(enough, on="subject")
                .filter(pl.col("_total") >= settings.min_orders)
                .drop("_total")
                .with_columns(
                    value=pl.when(pl.col("orders") >= settings.min_daily_orders).then("value"),
                    std_error=pl.when(pl.col("orders") >= settings.min_daily_orders).then(
                        "std_error"
                    ),
                    dimension=pl.lit(dimension),
                    metric=pl.lit(metric),
                )
            )
            parts.append(daily)
    columns = ["dimension", "subject", "metric", "trade_date", "value", "std_error", "orders"]
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in columns})
    return pl.concat([p.select(columns) for p in parts]).sort(columns[:4])


def next_trade_dates(last: date, n: int) -> list[date]:
    """The `n` weekdays after `last` (the landing calendar: weekdays, holidays not skipped)."""
    out, d = [], last
    while len(out) < n:
        d += timedelta(days=1)
        if d.weekday() < 5:
            out.append(d)
    return out


def forecast_trends(
    series: pl.DataFrame, settings: TrendSettings | None = None
) -> tuple[pl.DataFrame, dict[str, float]]:
    """(rows of `model.quality_forecast`, the backtest's interval coverage) from
    `daily_series`' frame. Series with fewer than `min_history` observed days are left out."""
    from eqs_pipeline.costmodel import forecast as lf  # JAX: only when forecasting

    settings = settings or TrendSettings()
    dates = sorted(series["trade_date"].unique().to_list()) if series.height else []
    if not dates:
        return _empty(), {"forecasts": 0.0}
    step = {d: i for i, d in enumerate(dates)}
    key = pl.concat_str("dimension", "subject", "metric", separator="\x1f")
    frame = series.select(
        key.alias("series"),
        pl.col("trade_date").replace_strict(step, return_dtype=pl.Int64).alias("step"),
        "value",
        "std_error",
    )
    fs = lf.ForecastSettings(horizon=settings.horizon, min_history=settings.min_history)
    predicted = lf.forecast(frame, fs)
    coverage = lf.backtest(frame, fs)
    if predicted.height == 0:
        return _empty(), coverage
    future = next_trade_dates(dates[-1], settings.horizon)
    last = (
        series.filter(pl.col("value").is_not_null())
        .sort("trade_date")
        .group_by(key.alias("series"))
        .agg(pl.col("value").last().alias("last_value"))
    )
    parts = pl.col("series").str.split("\x1f")
    out = (
        predicted.join(last, on="series", how="left")
        .with_columns(
            dimension=parts.list.get(0),
            subject=parts.list.get(1),
            metric=parts.list.get(2),
            as_of=pl.lit(dates[-1]),
            trade_date=pl.col("h").replace_strict(
                dict(enumerate(future, start=1)), return_dtype=pl.Date
            ),
            horizon=pl.col("h").cast(pl.Int64),
            history_days=pl.col("n_obs").cast(pl.Int64),
        )
        .select(QUALITY_FORECAST.names)
        .sort("dimension", "subject", "metric", "horizon")
    )
    return out, coverage


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=QUALITY_FORECAST.polars_schema)

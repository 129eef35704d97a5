"""The monitored metric series (`monitor.metric_series`, docs/MONITORING.md): one row per
trade date, dimension (desk, venue, algo, broker, symbol), subject and metric, with its value,
standard error and weight, in the long shape that `detectors.residuals` and `detect` read.

Pure: Polars in, Polars out, one trade date at a time (the asset reads that date's rows of
`quality.fill_quality`, `quality.order_quality`, `staging.child_orders` and the date's
`staging.ingest_log` counts). Every metric is a weighted mean of rows within a group, so every
(dimension, metric) pair is one vectorized `group_by`; the Python loop is over the pairs only.

Standard errors, so that the detectors weigh a venue with 30 fills less than one with 3,000:
- a mean of a continuous metric (bps, ms, z): se = sqrt(v / n_eff), with v the weighted
  variance sum w (x - mean)^2 / sum w and n_eff = (sum w)^2 / sum w^2 the effective sample size
  (the formula of `costmodel.trends`, so the two series agree); a single row has se 0;
- a share (fill rate, reject, cancel and quarantine shares): binomial, se = sqrt(p (1 - p) /
  n_eff), n_eff from the same weights (for quarantine rows, all weight 1: n_eff = rows).

What the contract lets us measure, and why:
- latency_ms: exec_ts - the child's sent_ts over fills of IOC children only, mean per fill. A
  DAY child rests on the book by design (its "latency" is queue time, seconds to minutes), so
  it would drown the venue's round trip; the mean rather than the median because it has a
  standard error the detectors can use, and IOC round trips have no long tail to hide.
- reject_share and cancel_share: the contract carries no reject or cancel events, only child
  orders and their fills. An IOC child that does not fill was, in effect, refused by the
  venue (nothing to trade at its limit); a DAY child that does not fill by its end was
  cancelled or expired. So reject_share = unfilled / routed quantity of IOC children and
  cancel_share = the same for DAY children, share-weighted (a child counts by its quantity).
- fill_rate: filled / ordered shares of the parent orders (desk, algo, broker, symbol); for a
  venue, filled / routed shares of its child orders, since an order spans venues.
- quarantine_share: quarantined / landed rows of the date, the desk's only (a quarantined row
  may not even name a venue).
- markouts are positive when favourable, so they worsen as they fall
  (`MonitorSettings.LOWER_IS_WORSE` lists them).

Every row carries its subject's traded notional of the date (`notional`: what a shift of a
bps metric costs, which the alerts' severity weighs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal, get_args

import polars as pl

Dimension = Literal["desk", "venue", "algo", "broker", "symbol"]
DIMENSIONS: tuple[Dimension, ...] = get_args(Dimension)
DESK = "all"  # the desk's one subject (as in `costmodel.trends`)
WeightUnit = Literal["orders", "arrival_notional", "shares", "fills", "rows"]
WEIGHT_UNITS: tuple[WeightUnit, ...] = get_args(WeightUnit)
Kind = Literal["mean", "share"]

ALL: tuple[Dimension, ...] = DIMENSIONS
ORDER_DIMENSIONS: tuple[Dimension, ...] = ("desk", "algo", "broker", "symbol")


# metric -> (source, column, weight unit, kind, dimensions). The source names the frame a
# metric is averaged over: orders, model_orders (the orders a trained cost model priced),
# fills, ioc_fills (fills of IOC children), children (every child order), ioc/day children,
# or the date's ingestion counts.
METRICS: dict[str, tuple[str, str, WeightUnit, Kind, tuple[Dimension, ...]]] = {
    "cost_z": ("model_orders", "cost_z", "orders", "mean", ORDER_DIMENSIONS),
    "cost_vs_expected_bps": (
        "model_orders",
        "cost_vs_expected_bps",
        "arrival_notional",
        "mean",
        ORDER_DIMENSIONS,
    ),
    "effective_spread_bps": ("fills", "effective_spread_bps", "shares", "mean", ALL),
    "price_improvement_bps": ("fills", "price_improvement_bps", "shares", "mean", ALL),
    "markout_5s_bps": ("fills", "markout_5s_bps", "shares", "mean", ALL),
    "markout_60s_bps": ("fills", "markout_60s_bps", "shares", "mean", ALL),
    "fill_rate": ("orders", "fill_rate", "shares", "share", ORDER_DIMENSIONS),
    "latency_ms": ("ioc_fills", "latency_ms", "fills", "mean", ALL),
    "reject_share": ("ioc_children", "unfilled", "shares", "share", ALL),
    "cancel_share": ("day_children", "unfilled", "shares", "share", ALL),
    "quarantine_share": ("ingest", "quarantined", "rows", "share", ("desk",)),
}
# The venue's fill rate is over its child orders (an order spans venues).
VENUE_FILL_RATE = ("children", "filled_share", "shares", "share", ("venue",))

SERIES_COLUMNS: tuple[str, ...] = (
    "trade_date",
    "dimension",
    "subject",
    "metric",
    "value",
    "se",
    "weight",
    "weight_unit",
    "count",
    "n_eff",
    "notional",
)


def _aggregate(kind: Kind) -> list[pl.Expr]:
    """Weighted mean, its standard error, the weight, the row count and n_eff of `_x` by `_w`
    in each group (see the module docstring for the two kinds of standard error)."""
    w, x = pl.col("_w"), pl.col("_x")
    total = w.sum()
    mean = (w * x).sum() / total
    n_eff = total**2 / (w**2).sum()
    binomial = mean * (1.0 - mean)
    var = binomial if kind == "share" else (w * (x - mean) ** 2).sum() / total
    return [
        mean.alias("value"),
        (var.clip(lower_bound=0.0) / n_eff).sqrt().alias("se"),
        total.alias("weight"),
        pl.len().cast(pl.Int64).alias("count"),
        n_eff.alias("n_eff"),
    ]


def _sources(
    fills: pl.DataFrame, orders: pl.DataFrame, children: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """Each source's rows with the five dimension columns, `_x` left to the metric.

    A child order's algo, broker and symbol are its parent order's; its filled quantity is the
    sum of its fills, at most its own quantity (an overfill counts as fully filled)."""
    order_keys = orders.select("order_id", "algo", "broker", "symbol").unique("order_id")
    desk = pl.lit(DESK).alias("desk")
    filled = fills.group_by("child_id").agg(pl.col("qty").sum().alias("_filled"))
    kids = (
        children.select("child_id", "order_id", "venue", "sent_ts", "qty", "tif")
        .join(order_keys, on="order_id", how="left")
        .join(filled, on="child_id", how="left")
        .with_columns(
            desk,
            _w=pl.col("qty"),
            filled_share=(pl.col("_filled").fill_null(0.0) / pl.col("qty")).clip(0.0, 1.0),
        )
        .with_columns(unfilled=1.0 - pl.col("filled_share"))
    )
    sent = children.select("child_id", "sent_ts", "tif")
    ioc_fills = (
        fills.join(sent, on="child_id", how="inner")
        .filter(pl.col("tif") == "IOC")
        .with_columns(
            desk,
            _w=pl.lit(1.0),
            latency_ms=(pl.col("exec_ts") - pl.col("sent_ts")).dt.total_microseconds() / 1e3,
        )
    )
    # Cost against the model only where a trained model priced the order (its version,
    # `cm-...`): the formula's expectation is not calibrated, so a desk's first promotion would
    # read as a shift of every subject's cost. Models retrained later are each calibrated, so
    # their dates compare with one another.
    model_orders = orders.filter(pl.col("expected_cost_source").str.starts_with("cm-"))
    return {
        "orders": orders.with_columns(desk, _w=pl.col("order_qty")),
        "model_orders": model_orders.with_columns(desk, _w=pl.col("order_qty")),
        "fills": fills.with_columns(desk, _w=pl.col("qty")),
        "ioc_fills": ioc_fills,
        "children": kids,
        "ioc_children": kids.filter(pl.col("tif") == "IOC"),
        "day_children": kids.filter(pl.col("tif") == "DAY"),
    }


def _order_weight(metric: str) -> pl.Expr:
    """cost_z counts each order once; cost_vs_expected_bps weighs by arrival notional (a
    large order's cost matters more); the fill rate is filled over ordered shares."""
    if metric == "cost_z":
        return pl.lit(1.0)
    if metric == "cost_vs_expected_bps":
        return pl.col("order_qty") * pl.col("arrival_mid")
    return pl.col("order_qty")


def metric_series(
    fills: pl.DataFrame,
    orders: pl.DataFrame,
    children: pl.DataFrame,
    quarantined_rows: int,
    landed_rows: int,
    trade_date: date,
    dimensions: Sequence[Dimension] = DIMENSIONS,
) -> pl.DataFrame:
    """The date's rows of `monitor.metric_series`, sorted by dimension, subject and metric.

    fills: `quality.fill_quality` rows (qty, price, exec_ts, child_id, venue, algo, broker,
        symbol and the fill metrics); orders: `quality.order_quality` rows (order_qty,
        arrival_mid, fill_rate, cost_z, cost_vs_expected_bps, expected_cost_source, algo,
        broker, symbol); children:
        `staging.child_orders` rows (child_id, order_id, venue, sent_ts, qty, tif). Rows of
        other dates are left out, so the frames may cover more than `trade_date`.
    quarantined_rows, landed_rows: the date's sums over `staging.ingest_log` (landed = staged
        + quarantined + collapsed duplicates); no quarantine row when nothing landed.
    A row whose metric is null (no prior quote, no cost model) is left out of that metric, and
    a group with no known row, or zero weight, has no row.
    """
    on_date = pl.col("trade_date") == trade_date
    src = _sources(fills.filter(on_date), orders.filter(on_date), children.filter(on_date))
    metrics = [(m, spec) for m, spec in METRICS.items() if spec[0] != "ingest"]
    metrics.append(("fill_rate", VENUE_FILL_RATE))
    parts: list[pl.DataFrame] = []
    for metric, (source, column, unit, kind, dims) in metrics:
        rows = src[source].with_columns(_x=pl.col(column).cast(pl.Float64))
        if source in ("orders", "model_orders"):
            rows = rows.with_columns(_w=_order_weight(metric))
        rows = rows.filter(pl.col("_x").is_not_null() & (pl.col("_w") > 0))
        for dim in (d for d in dims if d in dimensions):
            part = (
                rows.filter(pl.col(dim).is_not_null())
                .group_by(pl.col(dim).cast(pl.String).alias("subject"))
                .agg(*_aggregate(kind))
                .with_columns(
                    dimension=pl.lit(dim),
                    metric=pl.lit(metric),
                    weight_unit=pl.lit(unit),
                )
            )
            parts.append(part)
    if "desk" in dimensions and landed_rows > 0:
        p = quarantined_rows / landed_rows
        parts.append(
            pl.DataFrame(
                {
                    "subject": [DESK],
                    "value": [p],
                    "se": [(p * (1.0 - p) / landed_rows) ** 0.5],
                    "weight": [float(landed_rows)],
                    "count": [landed_rows],
                    "n_eff": [float(landed_rows)],
                    "dimension": ["desk"],
                    "metric": ["quarantine_share"],
                    "weight_unit": ["rows"],
                },
                schema_overrides={"count": pl.Int64},
            )
        )
    if not parts:
        return empty_series()
    return (
        pl.concat([p.select(SERIES_COLUMNS[1:-1]) for p in parts], how="vertical_relaxed")
        .join(_notional(src["fills"], dimensions), on=["dimension", "subject"], how="left")
        .with_columns(trade_date=pl.lit(trade_date, pl.Date))
        .select(SERIES_COLUMNS)
        .sort("dimension", "subject", "metric")
    )


def _notional(fills: pl.DataFrame, dimensions: Sequence[Dimension]) -> pl.DataFrame:
    """Each subject's traded notional of the date (sum of its fills' qty x price): what a
    shift of a bps metric costs it, shift x notional / 1e4 (the alerts' severity)."""
    parts = [
        fills.filter(pl.col(dim).is_not_null())
        .group_by(pl.col(dim).cast(pl.String).alias("subject"))
        .agg(notional=(pl.col("qty") * pl.col("price")).sum().cast(pl.Float64))
        .with_columns(dimension=pl.lit(dim))
        for dim in dimensions
    ]
    if not parts:
        return pl.DataFrame(
            schema={"subject": pl.String, "notional": pl.Float64, "dimension": pl.String}
        )
    return pl.concat(parts)


def empty_series() -> pl.DataFrame:
    """A series with no rows, in the table's columns and types."""
    from eqs_pipeline.tables.monitor import METRIC_SERIES

    return pl.DataFrame(schema=METRIC_SERIES.polars_schema)

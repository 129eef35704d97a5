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

ALL: tuple[Dimension, ...] = DIMENSIONS
ORDER_DIMENSIONS: tuple[Dimension, ...] = ("desk", "algo", "broker", "symbol")


# metric -> (source, column, weight unit, dimensions). The source names the frame a metric is
# averaged over, each row weighted as `_WEIGHTS` says: orders (cost against the model only on
# the orders a trained model priced), fills (latency only on fills of IOC children), child
# orders (reject share over IOC children, cancel share over DAY children), or the date's
# ingestion counts. A row whose column is null is not in that metric.
METRICS: dict[str, tuple[str, str, WeightUnit, tuple[Dimension, ...]]] = {
    "cost_z": ("orders", "cost_z", "orders", ORDER_DIMENSIONS),
    "cost_vs_expected_bps": (
        "orders",
        "cost_vs_expected_bps",
        "arrival_notional",
        ORDER_DIMENSIONS,
    ),
    "effective_spread_bps": ("fills", "effective_spread_bps", "shares", ALL),
    "price_improvement_bps": ("fills", "price_improvement_bps", "shares", ALL),
    "markout_5s_bps": ("fills", "markout_5s_bps", "shares", ALL),
    "markout_60s_bps": ("fills", "markout_60s_bps", "shares", ALL),
    "fill_rate": ("orders", "fill_rate", "shares", ORDER_DIMENSIONS),
    "latency_ms": ("fills", "latency_ms", "fills", ALL),
    "reject_share": ("children", "rejected", "shares", ALL),
    "cancel_share": ("children", "cancelled", "shares", ALL),
    "quarantine_share": ("ingest", "quarantined", "rows", ("desk",)),
}
# The venue's fill rate is over its child orders (an order spans venues): the metric
# `fill_rate` of the venue dimension, from this source and column.
VENUE_FILL_RATE = ("children", "filled_share", "shares", ("venue",))
# The averaging weight of each weight unit.
_WEIGHTS: dict[str, pl.Expr] = {
    "orders": pl.lit(1.0),
    "arrival_notional": pl.col("order_qty") * pl.col("arrival_mid"),
    "shares": pl.col("_qty"),
    "fills": pl.lit(1.0),
}

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


def _sources(
    fills: pl.DataFrame, orders: pl.DataFrame, children: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """Each source's rows with the five dimension columns, the cluster `_g` (the parent order),
    the share weight `_qty` and the metric columns of `METRICS`.

    A child order's algo, broker and symbol are its parent order's; its filled quantity is the
    sum of its fills, at most its own quantity (an overfill counts as fully filled)."""
    order_keys = orders.select("order_id", "algo", "broker", "symbol").unique("order_id")
    desk = pl.lit(DESK).alias("desk")
    filled = fills.group_by("child_id").agg(pl.col("qty").sum().alias("_filled"))
    unfilled = 1.0 - pl.col("filled_share")
    kids = (
        children.select("trade_date", "child_id", "order_id", "venue", "qty", "tif")
        .join(order_keys, on="order_id", how="left")
        .join(filled, on="child_id", how="left")
        .with_columns(
            desk,
            _g=pl.col("order_id"),
            _qty=pl.col("qty"),
            filled_share=(pl.col("_filled").fill_null(0.0) / pl.col("qty")).clip(0.0, 1.0),
        )
        .with_columns(
            rejected=pl.when(pl.col("tif") == "IOC").then(unfilled),
            cancelled=pl.when(pl.col("tif") == "DAY").then(unfilled),
        )
    )
    sent = children.select("child_id", "sent_ts", "tif")
    latency = (pl.col("exec_ts") - pl.col("sent_ts")).dt.total_microseconds() / 1e3
    # Cost against the model only where a trained model priced the order (its version,
    # `cm-...`): the formula's expectation is not calibrated, so a desk's first promotion would
    # read as a shift of every subject's cost. Models retrained later are each calibrated, so
    # their dates compare with one another.
    priced = pl.col("expected_cost_source").str.starts_with("cm-").fill_null(False)
    return {
        "orders": orders.with_columns(
            desk,
            _g=pl.col("order_id"),
            _qty=pl.col("order_qty"),
            cost_z=pl.when(priced).then(pl.col("cost_z")),
            cost_vs_expected_bps=pl.when(priced).then(pl.col("cost_vs_expected_bps")),
        ),
        "fills": fills.join(sent, on="child_id", how="left").with_columns(
            desk,
            _g=pl.col("order_id"),
            _qty=pl.col("qty"),
            latency_ms=pl.when(pl.col("tif") == "IOC").then(latency),
        ),
        "children": kids,
    }


def _aggregate(rows: pl.DataFrame, metrics: list[tuple[str, str, str]]) -> pl.DataFrame:
    """Per `subject` and metric of `metrics` ((metric, column, weight unit), all of one source):
    the weighted mean of the column, its cluster-robust standard error, the weight, the rows
    averaged and the effective number of clusters, from `rows` clustered by `_g` (the parent
    order; see the module docstring). Two group-bys whatever the number of metrics: per
    cluster, then per subject."""
    first, second = [], []
    for i, (_, column, unit) in enumerate(metrics):
        x = pl.col(column).cast(pl.Float64)
        w = _WEIGHTS[unit].cast(pl.Float64)
        known = x.is_not_null() & (w > 0)
        first += [
            w.filter(known).sum().alias(f"_W{i}"),
            (w * x).filter(known).sum().alias(f"_S{i}"),
            known.sum().cast(pl.Int64).alias(f"_n{i}"),
        ]
        W, S = pl.col(f"_W{i}"), pl.col(f"_S{i}")
        inside = W > 0  # the clusters with a known row of this metric
        total = W.filter(inside).sum()
        mean = S.filter(inside).sum() / total
        clusters = inside.sum().cast(pl.Float64)
        # CR1: the sum over clusters of their squared residual sums, times G / (G - 1).
        sandwich = ((S - mean * W) ** 2).filter(inside).sum() / total**2
        correction = pl.when(clusters > 1).then(clusters / (clusters - 1)).otherwise(1.0)
        second.append(
            pl.struct(
                mean.alias("value"),
                (sandwich * correction).clip(lower_bound=0.0).sqrt().alias("se"),
                total.alias("weight"),
                pl.col(f"_n{i}").sum().alias("count"),
                (total**2 / (W**2).filter(inside).sum()).alias("n_eff"),
            ).alias(f"_m{i}")
        )
    per_cluster = rows.group_by("trade_date", "subject", "_g").agg(first)
    per_subject = per_cluster.group_by("trade_date", "subject").agg(second)
    parts = [
        per_subject.select("trade_date", "subject", pl.col(f"_m{i}").struct.unnest()).with_columns(
            metric=pl.lit(metric), weight_unit=pl.lit(unit)
        )
        for i, (metric, _, unit) in enumerate(metrics)
    ]
    return pl.concat(parts).filter(pl.col("weight") > 0)


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

    fills: `quality.fill_quality` rows (trade_date, order_id, child_id, qty, price, exec_ts,
        venue, algo, broker, symbol and the fill metrics); orders: `quality.order_quality` rows
        (trade_date, order_id, order_qty, arrival_mid, fill_rate, cost_z, cost_vs_expected_bps,
        expected_cost_source, algo, broker, symbol); children: `staging.child_orders` rows
        (trade_date, child_id, order_id, venue, sent_ts, qty, tif). Rows of other dates are
        left out, so the frames may cover more than `trade_date`.
    quarantined_rows, landed_rows: the date's sums over `staging.ingest_log` (landed = staged
        + quarantined + collapsed duplicates); no quarantine row when nothing landed.
    A row whose metric is null (no prior quote, no cost model) is left out of that metric, and
    a group with no known row, or zero weight, has no row.
    """
    on_date = pl.col("trade_date") == trade_date
    ingest = pl.DataFrame(
        {
            "trade_date": [trade_date],
            "quarantined_rows": [quarantined_rows],
            "landed_rows": [landed_rows],
        },
        schema_overrides={"trade_date": pl.Date},
    )
    return metric_series_of_dates(
        fills.filter(on_date), orders.filter(on_date), children.filter(on_date), ingest, dimensions
    )


def metric_series_of_dates(
    fills: pl.DataFrame,
    orders: pl.DataFrame,
    children: pl.DataFrame,
    ingest: pl.DataFrame,
    dimensions: Sequence[Dimension] = DIMENSIONS,
) -> pl.DataFrame:
    """`metric_series` of every trade date the frames hold at once (the same rows as date by
    date: each date is its own group), sorted by trade date, dimension, subject and metric.
    ingest: per trade date, `quarantined_rows` and `landed_rows` (a date without a row, or
    with none landed, has no quarantine row)."""
    src = _sources(fills, orders, children)
    specs = [(m, *spec) for m, spec in METRICS.items() if spec[0] != "ingest"]
    specs.append(("fill_rate", *VENUE_FILL_RATE))
    parts: list[pl.DataFrame] = []
    for source, rows in src.items():
        for dim in dimensions:
            wanted = [(m, c, u) for m, s_, c, u, dims in specs if s_ == source and dim in dims]
            if not wanted:
                continue
            subject = rows.filter(pl.col(dim).is_not_null()).with_columns(
                subject=pl.col(dim).cast(pl.String)
            )
            parts.append(_aggregate(subject, wanted).with_columns(dimension=pl.lit(dim)))
    if "desk" in dimensions:
        landed = pl.col("landed_rows").cast(pl.Float64)
        p = pl.col("quarantined_rows") / landed
        parts.append(
            ingest.filter(pl.col("landed_rows") > 0).select(
                pl.col("trade_date").cast(pl.Date),
                subject=pl.lit(DESK),
                value=p,
                se=(p * (1.0 - p) / landed).sqrt(),
                weight=landed,
                count=pl.col("landed_rows").cast(pl.Int64),
                n_eff=landed,
                dimension=pl.lit("desk"),
                metric=pl.lit("quarantine_share"),
                weight_unit=pl.lit("rows"),
            )
        )
    if not parts:
        return empty_series()
    keys = ["trade_date", "dimension", "subject"]
    return (
        pl.concat([p.select(SERIES_COLUMNS[:-1]) for p in parts], how="vertical_relaxed")
        .join(_notional(src["fills"], dimensions), on=keys, how="left")
        .select(SERIES_COLUMNS)
        .sort("trade_date", "dimension", "subject", "metric")
    )


def _notional(fills: pl.DataFrame, dimensions: Sequence[Dimension]) -> pl.DataFrame:
    """Each subject's traded notional of the date (sum of its fills' qty x price): what a
    shift of a bps metric costs it, shift x notional / 1e4 (the alerts' severity)."""
    parts = [
        fills.filter(pl.col(dim).is_not_null())
        .group_by("trade_date", pl.col(dim).cast(pl.String).alias("subject"))
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

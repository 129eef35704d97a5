"""The monitor tables (docs/MONITORING.md): the daily metric series the detectors read, then
the alerts and their deliveries (`monitor_alerts`). `TABLES` lists them in the order
docs/TABLES.md shows them."""

from __future__ import annotations

import polars as pl

from eqs_pipeline.monitor.series import DIMENSIONS, METRICS, WEIGHT_UNITS
from eqs_pipeline.tables.monitor_alerts import ALERTS, DELIVERIES
from eqs_pipeline.tables.spec import Column, RowCheck, Table

METRIC_SERIES = Table(
    "monitor.metric_series",
    "Per trade date, dimension, subject and monitored metric: the day's weighted mean, its "
    "standard error and its weight, the series the degradation detectors read "
    "(eqs_pipeline/monitor/series.py). A run of a date replaces that date's rows.",
    (
        Column("trade_date", pl.Date, "Trade date.", nullable=False),
        Column(
            "dimension",
            pl.String,
            "What the subject is: desk (one subject, all), venue, algo, broker or symbol.",
            nullable=False,
            allowed=DIMENSIONS,
        ),
        Column(
            "subject",
            pl.String,
            "The venue, algo, broker or symbol; all for the desk.",
            nullable=False,
        ),
        Column(
            "metric",
            pl.String,
            "Monitored metric; its name carries its unit (_bps: bps, _ms: ms, _share and "
            "fill_rate: ratio, cost_z: standard deviations of the cost model).",
            nullable=False,
            allowed=tuple(METRICS),
        ),
        Column(
            "value",
            pl.Float64,
            "The day's weighted mean of the metric (unit: the metric's).",
            nullable=False,
            finite=True,
        ),
        Column(
            "se",
            pl.Float64,
            "Standard error of value (unit: the metric's): sqrt(weighted variance / n_eff) for "
            "a mean, sqrt(p (1 - p) / n_eff) for a share.",
            nullable=False,
            finite=True,
            ge=0.0,
        ),
        Column(
            "weight",
            pl.Float64,
            "Sum of the averaging weights, in weight_unit.",
            nullable=False,
            finite=True,
            gt=0.0,
        ),
        Column(
            "weight_unit",
            pl.String,
            "What weight counts: orders, arrival_notional (currency), shares, fills or rows.",
            nullable=False,
            allowed=WEIGHT_UNITS,
        ),
        Column(
            "count",
            pl.Int64,
            "Rows averaged (orders, fills, child orders or landed rows).",
            "count",
            nullable=False,
            ge=1,
        ),
        Column(
            "n_eff",
            pl.Float64,
            "Effective sample size (sum w)^2 / sum w^2 of the averaged rows.",
            "count",
            nullable=False,
            finite=True,
            ge=1.0,
        ),
        Column(
            "notional",
            pl.Float64,
            "The subject's traded notional that date (sum of its fills' qty x price); null for "
            "a subject without fills. A shift of a bps metric costs shift x notional / 1e4.",
            "currency",
            finite=True,
            ge=0.0,
        ),
    ),
    unique=("trade_date", "dimension", "subject", "metric"),
    row_checks=(
        RowCheck("se_not_negative", "the standard error is >= 0", pl.col("se") >= 0),
        RowCheck(
            "n_eff_at_most_count",
            "the effective sample size is at most the rows averaged",
            pl.col("n_eff") <= pl.col("count").cast(pl.Float64) * (1 + 1e-9),
        ),
    ),
)

TABLES: tuple[Table, ...] = (METRIC_SERIES, ALERTS, DELIVERIES)

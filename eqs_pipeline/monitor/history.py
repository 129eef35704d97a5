"""The alerts table over the whole metric series: what the daily monitoring step computes.

`rebuild_alerts(series, stored, ...)` runs the detectors over every trade date of the series
and walks the alert lifecycle (`alerts.update_alerts`) date by date, from the first to the
last. The table is therefore a function of the series and the settings: a trade date landed
again, or a date that arrives late, changes the alerts exactly as if the dates had come in
order, and rerunning the step changes nothing. What no series can say, the wall-clock times
(opened_at, acknowledged_at through `eqs alerts ack`, resolved_at), is carried over from the
stored table by alert id.

Alerts opened before the series' first date (its old partitions dropped) are kept as stored.

Pure: no Dagster, no DuckDB.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from eqs_pipeline.monitor.alerts import KEYS, AlertSettings, empty_alerts, update_alerts
from eqs_pipeline.monitor.detectors import detect
from eqs_pipeline.monitor.settings import MonitorSettings
from eqs_pipeline.tables.monitor_alerts import ALERTS


def detections_with_notional(
    series: pl.DataFrame, settings: MonitorSettings | None = None
) -> pl.DataFrame:
    """`detect` over the series, each row with its subject's notional of the date (the cost
    of a shift, which the alerts' severity weighs)."""
    detections = detect(series, settings, KEYS)
    if "notional" not in series.columns:
        return detections.with_columns(notional=pl.lit(None, pl.Float64))
    notional = series.select(*KEYS, "trade_date", "notional").unique([*KEYS, "trade_date"])
    return detections.join(notional, on=[*KEYS, "trade_date"], how="left")


def rebuild_alerts(
    series: pl.DataFrame,
    stored: pl.DataFrame | None = None,
    settings: MonitorSettings | None = None,
    alert_settings: AlertSettings | None = None,
    now: datetime | None = None,
) -> pl.DataFrame:
    """The `monitor.alerts` table after the series' last trade date.

    series: `monitor.metric_series` rows (any dates, any order). stored: the table as stored
    (None or empty the first time). now: the wall-clock time stamped on what opens or
    resolves in this run (aware; default: now, UTC).
    """
    stored = empty_alerts() if stored is None else stored.select(ALERTS.names)
    if series.height == 0:
        return stored
    first = series["trade_date"].min()
    kept = stored.filter(pl.col("trade_date") < first)
    detections = detections_with_notional(series, settings)
    # Only subjects that alarm at some date can have an alert: the lifecycle reads no other.
    alarming = detections.filter(pl.col("in_alarm")).select(KEYS).unique()
    detections = detections.join(alarming, on=list(KEYS), how="semi")
    state = empty_alerts()
    # An alert opens only on a date with an alarm, and each call replays every alert opened
    # before its date through it: the dates with an alarm and the last date give the table
    # that every date in turn would.
    last = series["trade_date"].max()
    alarm_dates = detections.filter(pl.col("in_alarm"))["trade_date"].unique().to_list()
    for day in sorted({*alarm_dates, last}):
        # The alerts opened before `day` as this run derived them, and the stored ones opened
        # on or after it, whose wall-clock times `update_alerts` carries over by id.
        existing = pl.concat([state, stored.filter(pl.col("trade_date") >= day)])
        state = update_alerts(existing, detections, day, alert_settings, now)
    # An alert that resolved on the same date as when it was stored keeps the time it was
    # stamped resolved then (the walk above saw it unresolved before its resolution date).
    before = (
        stored.filter(pl.col("trade_date") >= first, pl.col("resolved_at").is_not_null())
        .select("alert_id", _date=pl.col("resolved_date"), _at=pl.col("resolved_at"))
        .unique("alert_id")
    )
    state = (
        state.join(before, on="alert_id", how="left")
        .with_columns(
            resolved_at=pl.when(pl.col("resolved_date") == pl.col("_date"))
            .then(pl.col("_at"))
            .otherwise(pl.col("resolved_at"))
        )
        .select(ALERTS.names)
    )
    return pl.concat([kept, state]).sort("trade_date", "alert_id")

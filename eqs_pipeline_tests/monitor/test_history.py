"""`history.rebuild_alerts`: the alerts table over the whole series equals the lifecycle walked
date by date, is the same when rebuilt, and carries what no series holds (acknowledgements,
wall-clock times) by alert id."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from eqs_pipeline.monitor.alerts import acknowledge, empty_alerts, update_alerts
from eqs_pipeline.monitor.history import detections_with_notional, rebuild_alerts

START = dt.date(2026, 1, 5)
T0 = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)


def _series() -> pl.DataFrame:
    """Three venues over 60 dates: V0 shifts by 6 standard errors from date 40 to date 50,
    V1 from date 45 on, V2 stays in control."""
    rng = np.random.default_rng(5)
    rows = []
    for i, venue in enumerate(("V0", "V1", "V2")):
        values = rng.standard_normal(60)
        if i == 0:
            values[40:50] += 6.0
        if i == 1:
            values[45:] += 6.0
        for d, v in enumerate(values):
            rows.append(
                {
                    "trade_date": START + dt.timedelta(days=d),
                    "dimension": "venue",
                    "subject": venue,
                    "metric": "effective_spread_bps",
                    "value": float(v),
                    "se": 1.0,
                    "weight": 500.0,
                    "count": 500,
                    "n_eff": 40.0,
                    "notional": 2e6,
                }
            )
    return pl.DataFrame(rows)


def test_rebuild_equals_the_lifecycle_walked_date_by_date() -> None:
    series = _series()
    detections = detections_with_notional(series)
    walked = empty_alerts()
    for day in series["trade_date"].unique().sort():
        walked = update_alerts(walked, detections, day, now=T0)
    rebuilt = rebuild_alerts(series, now=T0)
    assert rebuilt.height >= 2  # V0's episode (resolved) and V1's (open)
    assert rebuilt.equals(walked)
    assert set(rebuilt["subject"]) == {"V0", "V1"}
    assert sorted(rebuilt["status"]) == ["open", "resolved"]


def test_rebuilding_keeps_ids_acknowledgements_and_times() -> None:
    series = _series()
    first = rebuild_alerts(series, now=T0)
    open_id = first.filter(pl.col("status") == "open")["alert_id"][0]
    acked = acknowledge(first, open_id, T0 + dt.timedelta(hours=1))
    later = T0 + dt.timedelta(days=1)
    again = rebuild_alerts(series, acked, now=later)
    assert again.equals(acked)  # nothing new: the same rows, the acknowledgement kept
    # A new date in control: the acknowledged alert keeps its id, opening time and owner.
    extra = series.filter(pl.col("trade_date") == series["trade_date"].max()).with_columns(
        trade_date=pl.col("trade_date") + dt.timedelta(days=1),
        value=pl.when(pl.col("subject") == "V1").then(6.0).otherwise(0.0),
    )
    grown = rebuild_alerts(pl.concat([series, extra]), again, now=later)
    row = grown.filter(pl.col("alert_id") == open_id).row(0, named=True)
    assert row["status"] == "acknowledged"
    assert row["opened_at"] == T0 and row["acknowledged_at"] == T0 + dt.timedelta(hours=1)


def test_alerts_older_than_the_series_are_kept() -> None:
    series = _series()
    stored = rebuild_alerts(series, now=T0)
    shifted = stored.with_columns(trade_date=pl.col("trade_date") - dt.timedelta(days=365))
    resolved_old = shifted.filter(pl.col("status") == "resolved").with_columns(
        alert_id=pl.lit("alr-00000000000000aa"),
        resolved_date=pl.col("resolved_date") - dt.timedelta(days=365),
        last_alarm_date=pl.col("last_alarm_date") - dt.timedelta(days=365),
    )
    out = rebuild_alerts(series, pl.concat([resolved_old, stored]), now=T0)
    assert out.height == stored.height + resolved_old.height
    assert out.filter(pl.col("trade_date") < START).equals(resolved_old)


def test_no_series_keeps_the_stored_table() -> None:
    stored = rebuild_alerts(_series(), now=T0)
    assert rebuild_alerts(_series().head(0), stored, now=T0).equals(stored)

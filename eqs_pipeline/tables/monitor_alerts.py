"""The monitor's alerts and their deliveries (docs/MONITORING.md): one row per alert, with its
lifecycle, and one per alert and channel it goes to.

`eqs_pipeline.monitor.alerts.update_alerts` produces it after each trade date; the columns
after `resolved_at` are the lifecycle's own state, kept so that a rerun of a trade date can
rebuild the same table (`last_alarm_date`, `clean_dates`, `resolved_date`) and so that an
acknowledgement says when it was made (`acknowledged_at`).
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.monitor.delivery import CHANNELS, SEVERITIES, STATUSES
from eqs_pipeline.monitor.series import DIMENSIONS
from eqs_pipeline.tables.spec import Column, RowCheck, Table

UTC_TS = pl.Datetime("us", "UTC")
# open: raised, nobody has taken it; acknowledged: someone has (`eqs alerts ack ID`);
# resolved: back in control for `resolve_after_days` dates; never reopens.
ALERT_STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved")
# One or more detector names of `eqs_pipeline.monitor.detectors.DETECTORS`, comma-separated.
DETECTOR_LIST = (
    r"(static_absolute|static_relative|ewma|cusum)(,(static_absolute|static_relative|ewma|cusum))*$"
)

ALERTS = Table(
    "monitor.alerts",
    "One alert per degradation episode of a (dimension, subject, metric): opened on the trade "
    "date a detector first alarms, updated while it stays open, resolved after "
    "`resolve_after_days` scored dates back in control. At most one unresolved alert per "
    "subject and metric; a resolved alert never reopens (a new alarm opens a new alert). "
    "Rerunning a trade date rebuilds the same rows (docs/MONITORING.md).",
    (
        Column(
            "alert_id",
            pl.String,
            "Stable id: `alr-` and a hash of dimension, subject, metric and the opening trade "
            "date, so a rerun gives the same id and delivery never sends it twice.",
            nullable=False,
            pattern=r"alr-[0-9a-f]{16}$",
            unique=True,
        ),
        Column(
            "trade_date",
            pl.Date,
            "The trade date on which the alert was detected (opened).",
            nullable=False,
        ),
        Column(
            "dimension",
            pl.String,
            "What kind of subject is monitored.",
            nullable=False,
            allowed=DIMENSIONS,
        ),
        Column(
            "subject",
            pl.String,
            "The monitored subject (a venue MIC, an algo, ...).",
            nullable=False,
        ),
        Column(
            "metric",
            pl.String,
            "The monitored metric (cost_z, markout_5s_bps, ...).",
            nullable=False,
        ),
        Column(
            "severity",
            pl.String,
            "From the standardized shift and its cost in currency per day, the highest reached "
            "while the alert was unresolved (docs/MONITORING.md, severity).",
            nullable=False,
            allowed=SEVERITIES,
        ),
        Column(
            "status",
            pl.String,
            "Lifecycle: open, acknowledged (`eqs alerts ack ID`), resolved.",
            nullable=False,
            allowed=ALERT_STATUSES,
        ),
        Column(
            "detector",
            pl.String,
            "The detectors that alarmed during the alert, comma-separated in a fixed order.",
            nullable=False,
            pattern=DETECTOR_LIST,
        ),
        Column(
            "evidence",
            pl.String,
            "JSON object of the last alarming date: baseline, recent_level, value, statistic, "
            "threshold, z, weight (fills), shift, shift_sd, notional, cost_per_day, detectors "
            "in alarm with their statistic and threshold.",
            nullable=False,
            pattern=r"\{",
        ),
        Column("opened_at", UTC_TS, "When the alert was opened (UTC).", nullable=False),
        Column("acknowledged_at", UTC_TS, "When it was acknowledged (UTC); null if never."),
        Column("resolved_at", UTC_TS, "When it was resolved (UTC); null unless resolved."),
        Column(
            "last_alarm_date",
            pl.Date,
            "The last trade date on which a detector alarmed for it.",
            nullable=False,
        ),
        Column(
            "clean_dates",
            pl.Int32,
            "Consecutive scored trade dates in control since last_alarm_date.",
            "count",
            nullable=False,
            ge=0,
        ),
        Column(
            "resolved_date",
            pl.Date,
            "The trade date on which it resolved; null unless resolved.",
        ),
    ),
    unique=("alert_id",),
    row_checks=(
        RowCheck(
            "resolved_exactly_when_resolved",
            "resolved_at and resolved_date are set exactly when the status is resolved",
            (pl.col("resolved_at").is_not_null() == (pl.col("status") == "resolved"))
            & (pl.col("resolved_date").is_not_null() == (pl.col("status") == "resolved")),
        ),
        RowCheck(
            "resolved_after_opened",
            "resolved_at >= opened_at and resolved_date > last_alarm_date",
            (pl.col("resolved_at") >= pl.col("opened_at"))
            & (pl.col("resolved_date") > pl.col("last_alarm_date")),
        ),
        RowCheck(
            "acknowledged_has_time",
            "an acknowledged alert has acknowledged_at, no earlier than opened_at",
            ((pl.col("status") != "acknowledged") | pl.col("acknowledged_at").is_not_null())
            & (pl.col("acknowledged_at") >= pl.col("opened_at")),
        ),
        RowCheck(
            "alarm_after_opening",
            "last_alarm_date >= trade_date (the opening date)",
            pl.col("last_alarm_date") >= pl.col("trade_date"),
        ),
    ),
)


DELIVERIES = Table(
    "monitor.deliveries",
    "One row per alert and channel it is routed to (webhook, slack, email): where its delivery "
    "stands. A delivered or failed row is never sent again; a pending one is retried with "
    "back-off on the next run (docs/MONITORING.md, delivery).",
    (
        Column(
            "alert_id",
            pl.String,
            "The alert (monitor.alerts.alert_id, or an intraday alert's id).",
            nullable=False,
        ),
        Column("channel", pl.String, "The channel.", nullable=False, allowed=CHANNELS),
        Column(
            "status",
            pl.String,
            "pending (not yet accepted; retried when due), delivered (accepted by the "
            "receiver) or failed (rejected for good, e.g. HTTP 400 or SMTP 550).",
            nullable=False,
            allowed=STATUSES,
        ),
        Column(
            "attempts",
            pl.Int32,
            "Sends tried so far, over all runs.",
            "count",
            ge=0,
            nullable=False,
        ),
        Column("last_error", pl.String, "Why the last attempt failed; null once delivered."),
        Column("last_attempt_at", UTC_TS, "When the last attempt was made (UTC)."),
        Column(
            "next_attempt_at",
            UTC_TS,
            "When a pending row is due again (UTC, exponential back-off); null: at once.",
        ),
        Column("delivered_at", UTC_TS, "When the receiver accepted it (UTC)."),
    ),
    unique=("alert_id", "channel"),
    row_checks=(
        RowCheck(
            "delivered_has_time",
            "delivered_at is set exactly when the status is delivered",
            pl.col("delivered_at").is_not_null() == (pl.col("status") == "delivered"),
        ),
    ),
)

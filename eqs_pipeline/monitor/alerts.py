"""The alert lifecycle: from the detectors' rows of a trade date to the `monitor.alerts` table.

One unresolved alert per (dimension, subject, metric) at a time, not one a day: a subject in
alarm on several dates, or by several detectors, keeps its one alert, which gathers the
detectors and the latest evidence. An alert is `open` until someone acknowledges it
(`acknowledge`, what `eqs alerts ack ID` calls), and `resolved` once the subject has been
back in control (scored, no detector in alarm) for `AlertSettings.resolve_after_days`
consecutive scored dates. A resolved alert never reopens: a new alarm opens a new alert.

Idempotent by construction: `update_alerts(existing, detections, D)` keeps only the state that
earlier dates produced and derives everything about D (and any later date) again from the
detections. Alerts opened on D or later are dropped and rebuilt; an alert opened before D has
its lifecycle replayed from its opening date through D over the detections, which `detect`
returns for every date of the series. So rerunning D gives the same ids, the same rows and
moves no alert twice; what cannot be derived (opened_at, acknowledged_at, resolved_at: the
wall-clock times) is carried over by alert_id.

Pure: no Dagster, no DuckDB. The clock is an argument.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from eqs_pipeline.monitor.delivery import SEVERITIES, Alert, Severity
from eqs_pipeline.monitor.detectors import DETECTORS, SERIES_KEYS
from eqs_pipeline.monitor.settings import MonitorSettings
from eqs_pipeline.tables.monitor_alerts import ALERTS

KEYS: tuple[str, ...] = SERIES_KEYS
# The alert quotes the evidence of the first detector in this order that is in alarm: the
# charts carry the standardized statistic, the static thresholds only the raw level.
_PRIORITY: tuple[str, ...] = ("cusum", "ewma", "static_relative", "static_absolute")


@dataclass(frozen=True)
class AlertSettings:
    """How alerts resolve and how severe they are (docs/MONITORING.md, severity).

    resolve_after_days: an alert resolves after this many consecutive scored trade dates with
        no detector in alarm (a date on which the subject has no scored row proves nothing and
        neither counts nor breaks the run). 3: a shift that stops for a day or two is the same
        episode, not a new alert.
    warning_shift_sd / critical_shift_sd: |recent level - baseline| in standard deviations of
        the date's residual (the detectors' scale) from which the alert is a warning / critical.
        2 and 4: a 2 sd shift is what the charts are built to catch; 4 sd is unmistakable.
    warning_cost_per_day / critical_cost_per_day: the shift's cost in currency per day,
        |shift in bps| x the subject's notional that day / 1e4, from which the alert is a
        warning / critical. Only for metrics in bps (name ending `_bps`) with a `notional`
        column in the detections; otherwise severity comes from the shift alone.
    The severity is the higher of the two; a static threshold breach is at least a warning (a
    hard limit was crossed); an alert keeps the highest severity it reached.
    """

    resolve_after_days: int = 3
    warning_shift_sd: float = 2.0
    critical_shift_sd: float = 4.0
    warning_cost_per_day: float = 10_000.0
    critical_cost_per_day: float = 100_000.0

    def __post_init__(self) -> None:
        if self.resolve_after_days < 1:
            raise ValueError(f"resolve_after_days must be >= 1, not {self.resolve_after_days}")
        if not 0 < self.warning_shift_sd <= self.critical_shift_sd:
            raise ValueError("need 0 < warning_shift_sd <= critical_shift_sd")
        if not 0 < self.warning_cost_per_day <= self.critical_cost_per_day:
            raise ValueError("need 0 < warning_cost_per_day <= critical_cost_per_day")


def empty_alerts() -> pl.DataFrame:
    """An empty `monitor.alerts` frame: the state before the first trade date."""
    return pl.DataFrame(schema=ALERTS.polars_schema)


def alert_id(dimension: str, subject: str, metric: str, opened: date) -> str:
    """`alr-` + 16 hex digits of SHA-256 over the keys and the opening trade date: the same
    alert gets the same id on every rerun, a later episode of the same subject another."""
    text = "\x1f".join((dimension, subject, metric, opened.isoformat()))
    return "alr-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite(value: Any) -> float | None:
    """A float for JSON: None for null, NaN or infinity."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _level(value: float | None, warning: float, critical: float) -> int:
    """0 info, 1 warning, 2 critical by thresholds on `value` (None: info)."""
    if value is None:
        return 0
    return 2 if value >= critical else 1 if value >= warning else 0


def severity(
    shift_sd: float | None,
    cost_per_day: float | None,
    static_breach: bool,
    settings: AlertSettings,
) -> Severity:
    """The severity of one alarming date (rules in `AlertSettings`)."""
    level = max(
        _level(shift_sd, settings.warning_shift_sd, settings.critical_shift_sd),
        _level(cost_per_day, settings.warning_cost_per_day, settings.critical_cost_per_day),
        1 if static_breach else 0,
    )
    return SEVERITIES[level]


def _evidence(rows: list[dict[str, Any]], notional: float | None) -> dict[str, Any]:
    """The evidence of one alarming date from its detector rows (those in alarm first)."""
    alarming = [r for r in rows if r["in_alarm"]]
    main = min(alarming, key=lambda r: _PRIORITY.index(r["detector"]))
    baseline, recent = _finite(main["baseline"]), _finite(main["recent_level"])
    value, z, se = _finite(main["value"]), _finite(main["z"]), _finite(main["se"])
    shift = None if baseline is None or recent is None else recent - baseline
    # The residual's scale, sqrt(se^2 + baseline variance), is |value - baseline| / |z| (z is
    # that difference over the scale); the date's se when z says nothing.
    scale = None
    if z and value is not None and baseline is not None and value != baseline:
        scale = abs(value - baseline) / abs(z)
    elif se:
        scale = se
    shift_sd = None if shift is None or not scale else abs(shift) / scale
    cost = None
    if shift is not None and notional is not None and main["metric"].endswith("_bps"):
        cost = abs(shift) * notional / 1e4
    return {
        "trade_date": main["trade_date"].isoformat(),
        "detector": main["detector"],
        "baseline": baseline,
        "recent_level": recent,
        "value": value,
        "se": se,
        "z": z,
        "statistic": _finite(main["statistic"]),
        "threshold": _finite(main["threshold"]),
        "weight": _finite(main["weight"]),
        "shift": shift,
        "shift_sd": shift_sd,
        "notional": notional,
        "cost_per_day": cost,
        "detectors": {
            r["detector"]: {
                "statistic": _finite(r["statistic"]),
                "threshold": _finite(r["threshold"]),
            }
            for r in sorted(alarming, key=lambda r: DETECTORS.index(r["detector"]))
        },
    }


@dataclass
class _Day:
    """One subject's detector rows on one trade date."""

    alarm: bool
    detectors: tuple[str, ...]
    evidence: dict[str, Any] | None
    severity: int


def _days(
    detections: pl.DataFrame,
    trade_date: date,
    replayed: list[tuple[Any, ...]],
    settings: AlertSettings,
) -> dict[tuple[str, ...], dict[date, _Day]]:
    """keys -> trade date -> the subject's day: every subject on `trade_date`, and the
    subjects of `replayed` ((*keys, opening date) of the alerts to replay) since their
    alert opened."""
    missing = [c for c in (*KEYS, "trade_date", "detector", "in_alarm") if c not in detections]
    if missing:
        raise ValueError(f"the detections lack columns {missing}")
    since = (
        pl.DataFrame(
            replayed,
            schema={**{k: detections.schema[k] for k in KEYS}, "_since": pl.Date},
            orient="row",
        )
        .group_by(KEYS)
        .agg(pl.col("_since").min())
    )
    frame = (
        detections.filter(pl.col("trade_date") <= trade_date)
        .join(since, on=list(KEYS), how="left")
        .filter((pl.col("trade_date") == trade_date) | (pl.col("trade_date") >= pl.col("_since")))
        .drop("_since")
        .with_columns(pl.col("detector").cast(pl.String))
    )
    has_notional = "notional" in frame.columns
    out: dict[tuple[str, ...], dict[date, _Day]] = {}
    for (*keys, day), group in frame.group_by([*KEYS, "trade_date"], maintain_order=True):
        rows = group.to_dicts()
        alarming = [r for r in rows if r["in_alarm"]]
        evidence, level = None, 0
        if alarming:
            notional = _finite(rows[0]["notional"]) if has_notional else None
            evidence = _evidence(rows, notional)
            static = any(r["detector"].startswith("static") for r in alarming)
            sev = severity(evidence["shift_sd"], evidence["cost_per_day"], static, settings)
            level = SEVERITIES.index(sev)
        detectors = tuple(d for d in DETECTORS if any(r["detector"] == d for r in alarming))
        out.setdefault(tuple(keys), {})[day] = _Day(bool(alarming), detectors, evidence, level)
    return out


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _replay(
    opened: date,
    days: Mapping[date, _Day],
    trade_date: date,
    settings: AlertSettings,
) -> dict[str, Any] | None:
    """The lifecycle of an alert opened on `opened` as of `trade_date`: its detectors,
    evidence, severity, last alarm, clean run and resolution date. None if its opening date
    is not in alarm in the detections (the detectors changed since: the alert is dropped)."""
    first = days.get(opened)
    if first is None or not first.alarm:
        return None
    detectors, evidence, level = set(first.detectors), first.evidence, first.severity
    last_alarm, clean, resolved = opened, 0, None
    for day in sorted(d for d in days if opened < d <= trade_date):
        state = days[day]
        if state.alarm:
            detectors |= set(state.detectors)
            evidence, level = state.evidence, max(level, state.severity)
            last_alarm, clean = day, 0
        else:
            clean += 1
            if clean >= settings.resolve_after_days:
                resolved = day
                break
    return {
        "detector": ",".join(d for d in DETECTORS if d in detectors),
        "evidence": json.dumps(evidence, sort_keys=True, allow_nan=False),
        "severity": SEVERITIES[level],
        "last_alarm_date": last_alarm,
        "clean_dates": clean,
        "resolved_date": resolved,
    }


def update_alerts(
    existing: pl.DataFrame,
    detections: pl.DataFrame,
    trade_date: date,
    settings: AlertSettings | MonitorSettings | None = None,
    now: datetime | None = None,
) -> pl.DataFrame:
    """The alerts table after `trade_date`.

    existing: the table as stored (`monitor.alerts` columns), possibly already holding this
        date's or later dates' state (a rerun). detections: `detect`'s rows (keys, trade_date,
        detector, statistic, threshold, in_alarm, baseline, recent_level, value, se, weight,
        z; optionally `notional`, the subject's notional that day, for the cost) for every
        date since the oldest unresolved alert opened, through `trade_date`; later dates are
        ignored. settings: `AlertSettings` (a `MonitorSettings` means the defaults). now: the
        wall-clock time stamped on what opens or resolves now (aware; default: now, UTC).

    Alerts opened before `trade_date` keep their id, opened_at and acknowledgement, and their
    lifecycle is replayed through `trade_date`; alerts opened on or after it are rebuilt. A
    subject in alarm on `trade_date` with no unresolved alert opens one. Returns the table
    sorted by trade_date and alert_id.
    """
    if not isinstance(settings, AlertSettings):
        settings = AlertSettings()
    stamp = _utc(now or datetime.now(UTC))
    missing = [c for c in ALERTS.names if c not in existing.columns]
    if missing:
        raise ValueError(f"the existing alerts lack columns {missing}")
    previous = {r["alert_id"]: r for r in existing.select(ALERTS.names).to_dicts()}
    # Only this date's rows and the history of the alerts to replay are read (a full
    # detections frame holds every subject's every date).
    replayed = [
        (*(r[k] for k in KEYS), r["trade_date"])
        for r in previous.values()
        if r["trade_date"] < trade_date
        and not (r["status"] == "resolved" and r["resolved_date"] < trade_date)
    ]
    days = _days(detections, trade_date, replayed, settings)
    rows: list[dict[str, Any]] = []
    unresolved: set[tuple[str, ...]] = set()
    for row in sorted(previous.values(), key=lambda r: (r["trade_date"], r["alert_id"])):
        keys = tuple(row[k] for k in KEYS)
        if row["trade_date"] >= trade_date:
            continue  # derived from this date or a later one: rebuilt below
        if row["status"] == "resolved" and row["resolved_date"] < trade_date:
            rows.append(row)  # settled before this date: nothing about it can change
            continue
        history = days.get(keys, {})
        if row["trade_date"] not in history:
            raise ValueError(
                f"the detections lack {row['trade_date']}, the opening date of the unresolved "
                f"alert {row['alert_id']}: pass every date since it opened"
            )
        state = _replay(row["trade_date"], history, trade_date, settings)
        if state is None:  # the detectors no longer alarm on its opening date: not an alert
            continue
        rows.append(_row(row, state, stamp))
        if state["resolved_date"] is None:
            unresolved.add(keys)
    for keys, by_date in days.items():
        today = by_date.get(trade_date)
        if today is None or not today.alarm or keys in unresolved:
            continue
        opened_id = alert_id(*keys, trade_date)
        state = _replay(trade_date, by_date, trade_date, settings)
        assert state is not None
        base = previous.get(opened_id) or {
            "alert_id": opened_id,
            "trade_date": trade_date,
            **dict(zip(KEYS, keys, strict=True)),
            "opened_at": stamp,
            "acknowledged_at": None,
            "resolved_at": None,
        }
        rows.append(_row(base, state, stamp))
    frame = pl.DataFrame(rows, schema=ALERTS.polars_schema) if rows else empty_alerts()
    return frame.select(ALERTS.names).sort("trade_date", "alert_id")


def _row(base: Mapping[str, Any], state: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """An alert row: ids and wall-clock times from `base` (what was stored), the lifecycle
    from `state` (the replay). resolved_at is kept when it resolved on the same date before."""
    resolved = state["resolved_date"]
    if resolved is None:
        resolved_at = None
    elif base.get("resolved_date") == resolved and base.get("resolved_at") is not None:
        resolved_at = base["resolved_at"]
    else:
        resolved_at = max(now, base["opened_at"])
    if resolved is not None:
        status = "resolved"
    elif base.get("acknowledged_at") is not None:
        status = "acknowledged"
    else:
        status = "open"
    return {
        "alert_id": base["alert_id"],
        "trade_date": base["trade_date"],
        **{k: base[k] for k in KEYS},
        "severity": state["severity"],
        "status": status,
        "detector": state["detector"],
        "evidence": state["evidence"],
        "opened_at": base["opened_at"],
        "acknowledged_at": base.get("acknowledged_at"),
        "resolved_at": resolved_at,
        "last_alarm_date": state["last_alarm_date"],
        "clean_dates": state["clean_dates"],
        "resolved_date": resolved,
    }


def acknowledge(alerts: pl.DataFrame, alert_id: str, now: datetime) -> pl.DataFrame:
    """The table with `alert_id` acknowledged at `now` (what `eqs alerts ack ID` calls).

    Acknowledging twice keeps the first time; later updates keep the acknowledgement until the
    alert resolves. Raises KeyError for an unknown id and ValueError for a resolved alert (there
    is nothing left to take on).
    """
    stamp = _utc(now)
    match = alerts.filter(pl.col("alert_id") == alert_id)
    if match.height == 0:
        raise KeyError(f"no alert {alert_id!r} in monitor.alerts")
    status = match["status"][0]
    if status == "resolved":
        raise ValueError(f"alert {alert_id!r} is resolved; nothing to acknowledge")
    if status == "acknowledged":
        return alerts
    hit = pl.col("alert_id") == alert_id
    return alerts.with_columns(
        status=pl.when(hit).then(pl.lit("acknowledged")).otherwise(pl.col("status")),
        acknowledged_at=pl.when(hit)
        .then(pl.lit(max(stamp, match["opened_at"][0]), dtype=ALERTS.polars_schema["opened_at"]))
        .otherwise(pl.col("acknowledged_at")),
    )


def alerts_to_deliver(alerts: pl.DataFrame) -> list[Alert]:
    """The `delivery.Alert` of every open alert (not yet acknowledged nor resolved), oldest
    first. Delivery keys its records by alert_id, so passing an alert again sends nothing."""
    out = []
    for row in alerts.filter(pl.col("status") == "open").sort("trade_date", "alert_id").to_dicts():
        out.append(
            Alert(
                alert_id=row["alert_id"],
                trade_date=row["trade_date"],
                dimension=row["dimension"],
                subject=row["subject"],
                metric=row["metric"],
                severity=row["severity"],
                detector=row["detector"],
                evidence=json.loads(row["evidence"]),
                opened_at=row["opened_at"],
            )
        )
    return out

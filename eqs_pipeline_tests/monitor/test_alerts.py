"""The alert lifecycle on scripted detector rows: one alert per episode, a second detector
joining it, acknowledgement, resolution after N dates in control, a new episode as a new
alert; reruns are idempotent; severity, evidence and the table's schema by hand."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from eqs_pipeline.monitor.alerts import (
    AlertSettings,
    acknowledge,
    alert_id,
    alerts_to_deliver,
    empty_alerts,
    severity,
    update_alerts,
)
from eqs_pipeline.monitor.delivery import Alert
from eqs_pipeline.monitor.detectors import detect
from eqs_pipeline.monitor.settings import MonitorSettings
from eqs_pipeline.tables.monitor_alerts import ALERTS
from eqs_pipeline.tables.schemas import schema, validate_frame

START = dt.date(2026, 3, 2)
DAYS = [START + dt.timedelta(days=i) for i in range(12)]
T0 = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
SETTINGS = AlertSettings(resolve_after_days=3)
SCHEMA = schema(ALERTS)


def _now(i: int) -> dt.datetime:
    return T0 + dt.timedelta(days=i)


def _rows(day: dt.date, alarms: set[str], subject: str = "XNAS", metric: str = "cost_z", **kw):
    """One subject's cusum and ewma rows on `day`, in alarm for the detectors in `alarms`:
    baseline 0, value 3, z 3 (scale 1), recent level 2.5."""
    base = {
        "dimension": "venue",
        "subject": subject,
        "metric": metric,
        "trade_date": day,
        "baseline": 0.0,
        "recent_level": 2.5,
        "value": 3.0,
        "se": 0.8,
        "weight": 500.0,
        "z": 3.0,
        **kw,
    }
    return [
        {
            **base,
            "detector": "cusum",
            "statistic": 6.0,
            "threshold": 5.0,
            "in_alarm": "cusum" in alarms,
        },
        {
            **base,
            "detector": "ewma",
            "statistic": 1.2,
            "threshold": 1.0,
            "in_alarm": "ewma" in alarms,
        },
    ]


# The script: in control, cusum alarms (opens), ewma joins, in control 3 dates (resolved),
# in control, a new alarm (a new alert).
SCRIPT: list[set[str]] = [
    set(),
    set(),
    {"cusum"},
    {"cusum", "ewma"},
    set(),
    {"ewma"},
    set(),
    set(),
    set(),
    set(),
    {"cusum"},
]


def _detections(script: list[set[str]] = SCRIPT) -> pl.DataFrame:
    rows = [r for day, alarms in zip(DAYS, script, strict=False) for r in _rows(day, alarms)]
    return pl.DataFrame(rows).with_columns(pl.col("trade_date").cast(pl.Date))


def _run(detections: pl.DataFrame, upto: int, ack_on: int | None = None) -> list[pl.DataFrame]:
    """The table after each date through DAYS[upto]; acknowledges the open alert on ack_on."""
    table, states = empty_alerts(), []
    for i in range(upto + 1):
        table = update_alerts(table, detections, DAYS[i], SETTINGS, _now(i))
        if ack_on == i:
            table = acknowledge(table, table["alert_id"][0], _now(i) + dt.timedelta(hours=1))
        states.append(table)
    return states


def _valid(table: pl.DataFrame) -> None:
    assert validate_frame(SCHEMA, table) == []


def test_lifecycle_scripted() -> None:
    states = _run(_detections(), 10, ack_on=3)
    for table in states:
        _valid(table)
    assert states[0].height == 0 and states[1].height == 0
    first = states[2].row(0, named=True)
    assert first["alert_id"] == alert_id("venue", "XNAS", "cost_z", DAYS[2])
    assert (first["status"], first["detector"], first["trade_date"]) == ("open", "cusum", DAYS[2])
    assert first["opened_at"] == _now(2)
    # ewma joins: the same alert, both detectors, acknowledged the same day.
    assert states[3].height == 1
    joined = states[3].row(0, named=True)
    assert joined["alert_id"] == first["alert_id"]
    assert joined["detector"] == "ewma,cusum"
    assert joined["status"] == "acknowledged"
    assert joined["acknowledged_at"] == _now(3) + dt.timedelta(hours=1)
    assert json.loads(joined["evidence"])["detectors"].keys() == {"ewma", "cusum"}
    # one clean date, then an alarm again: the run restarts; acknowledgement kept.
    assert states[4].row(0, named=True)["clean_dates"] == 1
    again = states[5].row(0, named=True)
    assert (again["clean_dates"], again["last_alarm_date"], again["status"]) == (
        0,
        DAYS[5],
        "acknowledged",
    )
    assert states[7].row(0, named=True)["status"] == "acknowledged"
    # three clean dates (6, 7, 8): resolved on DAYS[8].
    done = states[8].row(0, named=True)
    assert (done["status"], done["resolved_date"], done["resolved_at"]) == (
        "resolved",
        DAYS[8],
        _now(8),
    )
    assert states[9].row(0, named=True) == done
    # a new alarm opens a new alert; the resolved one stays resolved.
    final = states[10]
    assert final.height == 2
    assert final["status"].to_list() == ["resolved", "open"]
    assert final["alert_id"][1] == alert_id("venue", "XNAS", "cost_z", DAYS[10])
    assert final["alert_id"][1] != final["alert_id"][0]


def test_one_alert_per_subject_and_metric() -> None:
    rows = [
        *_rows(DAYS[0], {"cusum", "ewma"}),
        *_rows(DAYS[0], {"ewma"}, subject="ARCX"),
        *_rows(DAYS[0], {"cusum"}, metric="markout_5s_bps"),
        *_rows(DAYS[0], set(), subject="BATS"),
    ]
    table = update_alerts(empty_alerts(), pl.DataFrame(rows), DAYS[0], SETTINGS, T0)
    _valid(table)
    assert table.height == 3
    assert table.select("subject", "metric").n_unique() == 3
    assert "BATS" not in table["subject"].to_list()


def test_rerun_is_idempotent() -> None:
    detections = _detections()
    states = _run(detections, 10, ack_on=3)
    for i in range(11):
        # Rerun DAYS[i] on the table that already holds it, later and at another wall time.
        rerun = update_alerts(
            states[i], detections, DAYS[i], SETTINGS, _now(i) + dt.timedelta(hours=5)
        )
        assert rerun.equals(states[i]), DAYS[i]
    # Rerunning an earlier date on the latest table rolls back to that date's state, and
    # replaying the later dates rebuilds the same table.
    table = update_alerts(states[10], detections, DAYS[6], SETTINGS, _now(20))
    assert table.equals(states[6])
    for i in range(7, 11):
        table = update_alerts(table, detections, DAYS[i], SETTINGS, _now(i))
    assert table.equals(states[10])


def test_resolved_is_not_reopened_by_a_rerun() -> None:
    detections = _detections()
    states = _run(detections, 9)
    resolved_at = states[8]["resolved_at"][0]
    again = update_alerts(states[9], detections, DAYS[9], SETTINGS, _now(30))
    assert again["resolved_at"][0] == resolved_at
    assert again["status"].to_list() == ["resolved"]


def test_dates_without_rows_do_not_count() -> None:
    # The subject is not scored on DAYS[5..7]: the clean run needs 3 scored dates.
    script = [{"cusum"}, set(), set()] + [None] * 3 + [set(), set()]
    rows = [r for day, s in zip(DAYS, script, strict=False) if s is not None for r in _rows(day, s)]
    detections = pl.DataFrame(rows)
    table = empty_alerts()
    for i in (0, 1, 2, 6):
        table = update_alerts(table, detections, DAYS[i], SETTINGS, _now(i))
    assert table["status"].to_list() == ["resolved"]
    assert table["resolved_date"].to_list() == [DAYS[6]]


def test_severity_by_hand() -> None:
    s = AlertSettings()
    assert severity(1.0, None, False, s) == "info"
    assert severity(2.0, None, False, s) == "warning"
    assert severity(3.99, 9_999.0, False, s) == "warning"
    assert severity(4.0, None, False, s) == "critical"
    assert severity(0.5, 10_000.0, False, s) == "warning"
    assert severity(0.5, 100_000.0, False, s) == "critical"
    assert severity(None, None, True, s) == "warning"
    assert severity(None, None, False, s) == "info"


def test_severity_from_evidence() -> None:
    # shift 2.5 - 0 = 2.5 over the scale |3 - 0| / 3 = 1: 2.5 sd -> warning.
    table = update_alerts(
        empty_alerts(), pl.DataFrame(_rows(DAYS[0], {"cusum"})), DAYS[0], SETTINGS, T0
    )
    assert table["severity"][0] == "warning"
    assert json.loads(table["evidence"][0])["shift_sd"] == pytest.approx(2.5)
    # A bps metric on 50M a day: 2.5 bps x 50e6 / 1e4 = 12,500 a day -> warning; on 500M,
    # 125,000 a day -> critical, though the shift in sd is the same.
    for notional, expected, cost in ((50e6, "warning", 12_500.0), (500e6, "critical", 125_000.0)):
        rows = _rows(DAYS[0], {"cusum"}, metric="markout_5s_bps", notional=notional)
        table = update_alerts(empty_alerts(), pl.DataFrame(rows), DAYS[0], SETTINGS, T0)
        assert table["severity"][0] == expected
        assert json.loads(table["evidence"][0])["cost_per_day"] == pytest.approx(cost)
    # A small shift: 0.5 over a scale of 1 -> info.
    rows = _rows(DAYS[0], {"ewma"}, recent_level=0.5)
    table = update_alerts(empty_alerts(), pl.DataFrame(rows), DAYS[0], SETTINGS, T0)
    assert table["severity"][0] == "info"


def test_severity_keeps_its_highest() -> None:
    rows = [
        *_rows(DAYS[0], {"cusum"}, recent_level=5.0),
        *_rows(DAYS[1], {"cusum"}, recent_level=0.5),
    ]
    table = empty_alerts()
    for i in (0, 1):
        table = update_alerts(table, pl.DataFrame(rows), DAYS[i], SETTINGS, _now(i))
    assert table["severity"].to_list() == ["critical"]
    assert json.loads(table["evidence"][0])["recent_level"] == 0.5


def test_evidence_round_trips() -> None:
    table = _run(_detections(), 3)[-1]
    evidence = json.loads(table["evidence"][0])
    assert evidence == {
        "trade_date": DAYS[3].isoformat(),
        "detector": "cusum",
        "baseline": 0.0,
        "recent_level": 2.5,
        "value": 3.0,
        "se": 0.8,
        "z": 3.0,
        "statistic": 6.0,
        "threshold": 5.0,
        "weight": 500.0,
        "shift": 2.5,
        "shift_sd": 2.5,
        "notional": None,
        "cost_per_day": None,
        "detectors": {
            "ewma": {"statistic": 1.2, "threshold": 1.0},
            "cusum": {"statistic": 6.0, "threshold": 5.0},
        },
    }
    assert json.dumps(evidence, sort_keys=True) == table["evidence"][0]
    (alert,) = alerts_to_deliver(table)
    assert isinstance(alert, Alert)
    assert alert.evidence == evidence
    assert (alert.alert_id, alert.trade_date, alert.severity) == (
        table["alert_id"][0],
        DAYS[2],
        "warning",
    )


def test_deliver_only_open() -> None:
    states = _run(_detections(), 10, ack_on=3)
    assert [a.alert_id for a in alerts_to_deliver(states[2])] == [states[2]["alert_id"][0]]
    assert alerts_to_deliver(states[5]) == []  # acknowledged
    assert [a.alert_id for a in alerts_to_deliver(states[10])] == [states[10]["alert_id"][1]]


def test_acknowledge_errors_and_repeats() -> None:
    table = _run(_detections(), 3)[-1]
    with pytest.raises(KeyError, match="no alert 'alr-0000000000000000'"):
        acknowledge(table, "alr-0000000000000000", T0)
    once = acknowledge(table, table["alert_id"][0], _now(4))
    assert acknowledge(once, table["alert_id"][0], _now(5)).equals(once)
    resolved = _run(_detections(), 8)[-1]
    with pytest.raises(ValueError, match="resolved"):
        acknowledge(resolved, resolved["alert_id"][0], _now(9))


def test_missing_history_is_an_error() -> None:
    table = _run(_detections(), 3)[-1]
    only_today = _detections().filter(pl.col("trade_date") == DAYS[4])
    with pytest.raises(ValueError, match="pass every date since it opened"):
        update_alerts(table, only_today, DAYS[4], SETTINGS, _now(4))


def test_schema_rejects_a_broken_lifecycle() -> None:
    table = _run(_detections(), 8)[-1]
    _valid(table)
    broken = table.with_columns(status=pl.lit("open"))
    assert {c["check"] for c in validate_frame(SCHEMA, broken)} >= {
        "resolved_exactly_when_resolved"
    }
    early = table.with_columns(resolved_at=pl.col("opened_at") - dt.timedelta(days=1))
    assert {c["check"] for c in validate_frame(SCHEMA, early)} == {"resolved_after_opened"}
    bad = table.with_columns(severity=pl.lit("fatal"))
    assert validate_frame(SCHEMA, bad) != []


def test_from_detect_output() -> None:
    # 30 dates of a venue's cost_z near 0, then a 3 sd shift: detect's rows raise one alert.
    n = 40
    values = [0.1 * ((i * 7) % 5 - 2) for i in range(30)] + [3.0] * (n - 30)
    series = pl.DataFrame(
        {
            "dimension": "venue",
            "subject": "XNAS",
            "metric": "cost_z",
            "trade_date": [START + dt.timedelta(days=i) for i in range(n)],
            "value": values,
            "se": 0.5,
            "weight": 500.0,
        }
    )
    detections = detect(series, MonitorSettings())
    table = empty_alerts()
    for i in range(n):
        table = update_alerts(table, detections, START + dt.timedelta(days=i), SETTINGS, _now(i))
    _valid(table)
    assert table.height == 1
    assert table["trade_date"][0] >= START + dt.timedelta(days=30)
    assert table["status"][0] == "open"

"""Intraday monitoring (`monitor.intraday`, `monitor.intraday_state`, `eqs monitor`) on the
simulator's intraday test bed: the dark-lit desk at about 100 fills a minute, five ordinary
dates for the baselines, then a session on which LTB fills a tick worse and turns toxic from
minute 120. Known truth: the onset; what the monitor must do: alert about LTB within 15 minutes
of data time, nothing before the onset, and the same alerts, sent once, across a restart."""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from eqs_pipeline.monitor.alerts import alert_id
from eqs_pipeline.monitor.delivery import DeliverySettings
from eqs_pipeline.monitor.detectors import cusum_parameters, cusum_path, siegmund_arl
from eqs_pipeline.monitor.intraday import (
    IntradayMonitor,
    IntradaySettings,
    baselines,
    daily_series,
    intraday_alert_id,
)
from eqs_pipeline.monitor.intraday_state import DropError, Session
from eqs_pipeline.simulate import iter_days
from eqs_pipeline.simulate.intraday import batches, intraday_test_bed, write_session
from eqs_pipeline.storage import lake

ONSET_MINUTE = 120
VENUE = "LTB"
# Data time fed to the monitor in the unit tests: past the onset by 30 minutes.
UNTIL_S = (ONSET_MINUTE + 30) * 60


@pytest.fixture(scope="module")
def desk():
    """(each date's daily series, the SimulatedDays): six ordinary dates, then the degraded
    session."""
    _, days = iter_days(intraday_test_bed(6, VENUE, ONSET_MINUTE, seed=3))
    days = list(days)
    return [daily_series(d.tables, d.trade_date) for d in days[:-1]], days


@pytest.fixture(scope="module")
def bed(desk):
    """(baseline series, the degraded session's SimulatedDay)."""
    series, days = desk
    return pl.concat(series), days[-1]


def _feed(monitor: IntradayMonitor, day, until_s: float = UNTIL_S, batch_s: int = 60) -> None:
    for batch in batches(day, batch_s):
        if batch.index * batch_s >= until_s:
            break
        monitor.add_orders(batch.tables["orders"])
        monitor.add_children(batch.tables["child_orders"])
        monitor.add_quotes(batch.tables["quotes"])
        monitor.add_executions(batch.tables["executions"])


@pytest.fixture(scope="module")
def run(bed):
    series, day = bed
    monitor = IntradayMonitor(day.trade_date, baselines(series, day.trade_date))
    _feed(monitor, day)
    return monitor


def test_baselines_average_the_trailing_dates_of_the_daily_series() -> None:
    day = date(2026, 11, 10)
    dates = [date(2026, 11, 2) + timedelta(days=i) for i in range(7)]
    rows = [
        {"trade_date": d, "dimension": "venue", "subject": "V", "metric": "markout_5s_bps",
         "value": v, "se": 0.5, "n_eff": 100.0}
        for d, v in zip(dates, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 99.0], strict=True)
    ]  # fmt: skip
    rows[-1]["trade_date"] = day  # the session itself never counts
    rows.append({**rows[0], "subject": "THIN"})  # one date: not enough history
    settings = IntradaySettings(baseline_days=4, min_baseline_days=3)
    out = baselines(pl.DataFrame(rows), day, settings)
    assert out["subject"].to_list() == ["V"]
    row = out.row(0, named=True)
    values = np.array([3.0, 4.0, 5.0, 6.0])  # the last four dates before the session
    s2 = values.var(ddof=1)
    assert row["mu"] == pytest.approx(values.mean())
    assert row["days"] == 4
    assert row["sigma2"] == pytest.approx(0.25 * 100.0)
    assert row["baseline_var"] == pytest.approx(s2 / 4 + max(0.0, s2 - 0.25))


def test_cusum_is_set_for_one_false_alert_per_twenty_sessions_on_the_desk(run) -> None:
    settings = run.settings
    n = len(run.series)
    assert n >= 10  # five venues and five algos, two metrics, less what has no history
    arl0 = settings.desk_false_alarm_sessions * n * settings.scored_buckets
    assert (run.k, run.h) == cusum_parameters(arl0, settings.shift_sd)
    assert siegmund_arl(run.k, run.h) == pytest.approx(arl0, rel=1e-6)


def test_a_venue_turning_toxic_alerts_within_15_minutes_and_nothing_before(run, bed) -> None:
    _, day = bed
    onset = run.open + timedelta(minutes=ONSET_MINUTE)
    assert run.alerts, "no intraday alert after the injected shift"
    for alert in run.alerts:  # nothing at all before the onset
        assert datetime.fromisoformat(alert.evidence["bucket_start"]) >= onset, alert
    venue = [a for a in run.alerts if a.dimension == "venue"]
    assert {a.subject for a in venue} == {VENUE}
    first = min(venue, key=lambda a: a.evidence["bucket_start"])
    # Raised when its bucket closed: bucket end + settle_s of data time.
    raised = datetime.fromisoformat(first.evidence["bucket_start"]) + timedelta(
        seconds=run.settings.bucket_s + run.settings.settle_s
    )
    assert raised - onset <= timedelta(minutes=15)
    assert (
        first.metric == "markout_5s_bps"
        and first.evidence["recent_level"] < first.evidence["baseline"]
    )
    assert first.alert_id == intraday_alert_id("venue", VENUE, first.metric, day.trade_date)
    assert first.severity in ("warning", "critical")
    # One alert per subject and metric per session.
    keys = [(a.dimension, a.subject, a.metric) for a in run.alerts]
    assert len(keys) == len(set(keys))


def test_the_monitor_steps_the_detectors_cusum(run) -> None:
    """The one-bucket-at-a-time recursion is `detectors.cusum_path` on the clipped z's."""
    clip = run.settings.z_clip
    alerted = {(a.dimension, a.subject, a.metric): a for a in run.alerts}
    checked = 0
    for key, series in run.series.items():
        if not series.z:
            continue
        buckets = [b for b, _ in series.z]
        z = np.clip([z for _, z in series.z], -clip, clip)
        _, alarm = cusum_path(z[None, :], run.k, run.h)
        hits = np.flatnonzero(alarm[0])
        if key in alerted:
            start = datetime.fromisoformat(alerted[key].evidence["bucket_start"])
            assert start == run.open + timedelta(minutes=buckets[hits[0]])
        else:
            assert hits.size == 0
        checked += 1
    assert checked >= 10


def test_intraday_alert_ids_are_stable_and_not_the_daily_ones() -> None:
    day = date(2026, 11, 9)
    a = intraday_alert_id("venue", "LTB", "markout_5s_bps", day)
    assert a == intraday_alert_id("venue", "LTB", "markout_5s_bps", day)
    assert a != alert_id("venue", "LTB", "markout_5s_bps", day)
    assert a != intraday_alert_id("venue", "LTB", "markout_5s_bps", day + timedelta(days=1))
    assert a.startswith("alr-") and len(a) == 20


# ---------------------------------------------------------------------------------------------
# Files: checkpoint, restart, delivery


class _Receiver:
    """A sender that records what it is given (one per channel)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, alert, key: str) -> None:
        self.sent.append((alert.alert_id, key))


WEBHOOK = DeliverySettings(webhook_url="http://receiver.invalid/hook")


def _session(drop: Path, state: Path, bed) -> Session:
    series, day = bed
    clock = iter(datetime(2026, 11, 9, 17, 0, tzinfo=UTC) + timedelta(seconds=i) for i in range(99))
    monitor = IntradayMonitor(
        day.trade_date, baselines(series, day.trade_date), clock=lambda: next(clock)
    )
    return Session.open(drop, state, monitor)


# The file tests' session: 5-minute batch files up to 15 minutes past the onset.
FILES_UNTIL_S = (ONSET_MINUTE + 15) * 60


@pytest.fixture(scope="module")
def whole(bed, tmp_path_factory):
    """(drop folder, state root, Session): every batch processed in one go."""
    _, day = bed
    root = tmp_path_factory.mktemp("whole")
    write_session(root / "drop", day, batch_s=300, until_s=FILES_UNTIL_S)
    session = _session(root / "drop", root / "state", bed)
    session.poll()
    return root / "drop", root / "state", session


def test_a_restart_replays_the_checkpoint_and_sends_nothing_twice(bed, whole, tmp_path) -> None:
    _, day = bed
    expected = set(whole[2].alerts)
    assert any(whole[2].alerts[a].subject == VENUE for a in expected)
    drop, state = tmp_path / "drop", tmp_path / "state"
    receiver = _Receiver()
    # The first process sees the batches up to 5 minutes past the onset and delivers.
    write_session(drop, day, batch_s=300, until_s=(ONSET_MINUTE + 5) * 60)
    first = _session(drop, state, bed)
    raised = first.poll()
    first.deliver(WEBHOOK, senders={"webhook": receiver}, sleep=lambda _: None)
    assert raised and {a for a, _ in receiver.sent} == {a.alert_id for a in raised}
    opened = {a.alert_id: a.opened_at for a in raised}
    # It dies; more batches land; a new process replays the checkpoint and goes on.
    write_session(drop, day, batch_s=300, until_s=FILES_UNTIL_S)
    second = _session(drop, state, bed)
    assert {a: second.alerts[a].opened_at for a in opened} == opened  # the persisted ones
    second.poll()
    assert second.deliver(WEBHOOK, senders={"webhook": receiver}, sleep=lambda _: None) == len(
        expected - set(opened)
    )
    assert set(second.alerts) == expected  # as if it had never stopped
    assert sorted(a for a, _ in receiver.sent) == sorted(expected)  # each exactly once
    assert all(key == f"{a}:webhook" for a, key in receiver.sent)
    assert second.poll() == []
    assert second.deliver(WEBHOOK, senders={"webhook": receiver}) == 0
    checkpoint = json.loads((state / day.trade_date.isoformat() / "checkpoint.json").read_text())
    assert [tuple(f) for f in checkpoint["files"]] == second.processed


def test_an_alert_raised_but_not_persisted_before_a_crash_is_not_lost(bed, whole, tmp_path) -> None:
    _, day = bed
    drop, state, session = whole
    folder = tmp_path / day.trade_date.isoformat()
    shutil.copytree(state / day.trade_date.isoformat(), folder)
    (folder / "alerts.json").unlink()  # died after the checkpoint, before the alerts' file
    receiver = _Receiver()
    again = _session(drop, tmp_path, bed)
    assert set(again.alerts) == set(session.alerts)
    assert (folder / "alerts.json").is_file()
    again.deliver(WEBHOOK, senders={"webhook": receiver}, sleep=lambda _: None)
    assert sorted(a for a, _ in receiver.sent) == sorted(session.alerts)


def test_a_processed_batch_that_changed_stops_the_restart(bed, tmp_path) -> None:
    _, day = bed
    drop, state = tmp_path / "drop", tmp_path / "state"
    write_session(drop, day, batch_s=1800, until_s=3600)
    _session(drop, state, bed).poll()
    batch = next((drop / "quotes").rglob("*.parquet"))
    pl.read_parquet(batch).head(3).write_parquet(batch)
    with pytest.raises(DropError, match="changed"):
        _session(drop, state, bed)
    (batch.parent / "notes.txt").write_text("x")
    with pytest.raises(DropError, match=r"must be a \.parquet file"):
        _session(drop, tmp_path / "other-state", bed).poll()


# ---------------------------------------------------------------------------------------------
# The command


def test_eqs_monitor_once_reads_the_lake_and_stores_the_alerts(
    bed, whole, tmp_path, monkeypatch
) -> None:
    from eqs_pipeline.cli.main import main

    series, day = bed
    home = tmp_path / "home"
    for d, frame in series.partition_by("trade_date", as_dict=True).items():
        lake.write(home / "lake", "monitor.metric_series", frame, d[0])
    for name in ("EQS_ALERT_WEBHOOK_URL", "EQS_ALERT_SLACK_URL", "EQS_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    args = ["monitor", "--drop", str(whole[0]), "--warehouse", str(home / "eqs.duckdb")]
    result = CliRunner().invoke(main, [*args, "--once"])
    assert result.exit_code == 0, result.output
    assert not (home / "eqs.duckdb").exists()  # never opened, never created
    stored = json.loads(
        (home / "monitor" / "intraday" / day.trade_date.isoformat() / "alerts.json").read_text()
    )
    assert {a["alert_id"] for a in stored} == set(whole[2].alerts)
    assert all(a["evidence"]["intraday"] for a in stored)
    # Without a lake partition before the session: a clear error, exit code 2.
    result = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "none" / "eqs.duckdb"), "--once"])
    assert result.exit_code == 2
    assert "no daily partition of monitor.metric_series" in result.output


@pytest.mark.integration
def test_a_stable_session_raises_no_intraday_alert(desk) -> None:
    """A whole ordinary session of the same desk, its sixth date against the five before it
    (the statistic's false alarms: none in twelve such sessions, seeds 3 to 14, when the
    defaults were chosen)."""
    daily, days = desk
    series = pl.concat(daily[:-1])
    day = days[-2]
    monitor = IntradayMonitor(day.trade_date, baselines(series, day.trade_date))
    _feed(monitor, day, until_s=math.inf)
    counts = monitor.counts()
    # All but the last minute, which no later data closes.
    assert counts.buckets >= 385 and counts.scored > 0.99 * counts.fills
    assert monitor.alerts == []


def test_fills_wait_for_their_order_and_late_fills_are_counted(bed) -> None:
    series, day = bed
    monitor = IntradayMonitor(day.trade_date, baselines(series, day.trade_date))
    cut = list(batches(day, 60))
    i = next(b.index for b in cut if b.tables["executions"].height)
    for b in cut[: i + 1]:
        monitor.add_quotes(b.tables["quotes"])
    fills = cut[i].tables["executions"]
    monitor.add_executions(fills)  # before any order has landed
    assert monitor.counts().waiting == fills.height
    for b in cut[: i + 1]:
        monitor.add_orders(b.tables["orders"])
    assert monitor.counts().waiting == 0
    for b in cut[i + 1 : i + 3]:
        monitor.add_orders(b.tables["orders"])
        monitor.add_quotes(b.tables["quotes"])
        monitor.add_executions(b.tables["executions"])
    counts = monitor.counts()
    assert counts.buckets >= 1 and counts.scored >= fills.height and counts.late == 0
    monitor.add_executions(fills.head(2))  # its minute has long closed
    assert monitor.counts().late == 2

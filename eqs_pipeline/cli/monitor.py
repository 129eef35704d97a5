"""`eqs monitor`: follow an intraday drop folder, score fills as they land and raise intraday
alerts against the morning's baselines (docs/MONITORING.md, "Intraday monitoring").

The warehouse file only names where the lake and the state live by default: the monitor reads
the baselines from the lake's Parquet partitions of `monitor.metric_series` and never opens the
DuckDB file, whose one writer is the daily pipeline. Heavy modules are imported when the command
runs, so `eqs --help` stays fast.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, date, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from eqs_pipeline.cli.options import date_value
from eqs_pipeline.cli.render import fail

console = Console(stderr=True)


def _status(session, polls: int) -> str:
    c = session.monitor.counts()
    data_time = "-" if c.data_time is None else c.data_time.strftime("%H:%M:%S UTC")
    return (
        f"{session.trade_date} data time {data_time}: {len(session.processed)} batch files, "
        f"{c.fills:,} fills ({c.scored:,} scored, {c.late} late), {c.buckets} buckets, "
        f"{len(session.alerts)} alert(s); poll {polls}"
    )


def _interrupt(_signum, _frame) -> None:
    # SIGTERM (a service manager stopping the monitor) ends it as Ctrl-C does; every state
    # file is written atomically, so wherever it stops, the checkpoint resumes from there.
    raise KeyboardInterrupt


def _announce(alert) -> None:
    e = alert.evidence
    console.print(
        f"[bold]{escape(alert.severity.upper())}[/bold] {escape(alert.dimension)} "
        f"{escape(alert.subject)} {escape(alert.metric)}: {e['recent_level']:.3g} against a "
        f"baseline of {e['baseline']:.3g} since {escape(str(e['run_start']))} "
        f"(CUSUM {e['statistic']:.2f} > {e['threshold']:.2f}) [{escape(alert.alert_id)}]"
    )


@click.command("monitor")
@click.option(
    "--drop",
    required=True,
    type=click.Path(path_type=Path),
    help="Intraday drop folder (<drop>/<table>/date=YYYY-MM-DD/<batch>.parquet).",
)
@click.option(
    "--warehouse",
    "warehouse_path",
    required=True,
    type=click.Path(path_type=Path),
    help="DuckDB warehouse file: its folder holds the lake and the state by default (never opened).",
)
@click.option(
    "--lake", type=click.Path(path_type=Path), help="Lake root [<warehouse folder>/lake]."
)
@click.option(
    "--state",
    type=click.Path(path_type=Path),
    help="Intraday state root [<warehouse folder>/monitor/intraday].",
)
@click.option(
    "--trade-date",
    callback=date_value,
    help="Session to follow [the latest date folder in the drop].",
)
@click.option(
    "--poll-seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.05),
    help="Seconds between two looks at the drop folder.",
)
@click.option("--once", is_flag=True, help="Process what has landed, deliver, and exit.")
def monitor_command(
    drop: Path,
    warehouse_path: Path,
    lake: Path | None,
    state: Path | None,
    trade_date: date | None,
    poll_seconds: float,
    once: bool,
) -> None:
    """Follow an intraday drop folder and raise intraday quality alerts."""
    from eqs_pipeline.monitor.delivery import CHANNELS, DeliverySettings
    from eqs_pipeline.monitor.intraday import IntradayMonitor, read_baselines
    from eqs_pipeline.monitor.intraday_state import DropError, Session, session_dates

    lake = lake or warehouse_path.parent / "lake"
    state = state or warehouse_path.parent / "monitor" / "intraday"
    try:
        delivery = DeliverySettings.from_env(os.environ)
    except ValueError as exc:
        fail(str(exc))
    try:
        if trade_date is None:
            dates = session_dates(drop)
            if not dates:
                fail(f"no session in {drop}: no <table>/date=YYYY-MM-DD folder yet")
            trade_date = dates[-1]
        try:
            base = read_baselines(lake, trade_date)
        except FileNotFoundError as exc:
            fail(str(exc))
        if base.height == 0:
            fail(f"no subject in {lake} has enough daily history before {trade_date}")
        monitor = IntradayMonitor(trade_date, base)
        session = Session.open(drop, state, monitor)
    except DropError as exc:
        fail(str(exc))
    console.print(
        f"following {escape(str(drop))} for {trade_date}: {len(monitor.series)} series against "
        f"baselines from {escape(str(lake))}; CUSUM k={monitor.k:.2f}, h={monitor.h:.2f}; "
        f"state in {escape(str(session.state))}"
    )
    if not any(delivery.enabled(c) for c in CHANNELS):
        console.print(
            "[yellow]no alert channel is set (EQS_ALERT_*): alerts are only stored[/yellow]"
        )
    polls = 0
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with console.status(_status(session, polls)) as status:
            while True:
                polls += 1
                try:
                    for alert in session.poll():
                        _announce(alert)
                except DropError as exc:
                    fail(str(exc))
                session.deliver(delivery)
                status.update(_status(session, polls))
                if once:
                    break
                time.sleep(poll_seconds)
    except KeyboardInterrupt:
        console.print("stopped; the checkpoint resumes from here")
    console.print(_status(session, polls) + f" at {datetime.now(UTC):%H:%M:%S} UTC")

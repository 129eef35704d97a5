"""`eqs alerts`: list the monitoring's alerts; `eqs alerts ack ID`: acknowledge one.

The alerts are those of the daily monitoring (`monitor.alerts`, written by `eqs run`'s window
step); docs/MONITORING.md explains what raises them and their lifecycle."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
import polars as pl
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eqs_pipeline.cli.options import warehouse_file
from eqs_pipeline.cli.render import fail
from eqs_pipeline.monitor.alerts import acknowledge
from eqs_pipeline.storage import warehouse

TABLE = "monitor.alerts"
STATUSES = ("active", "open", "acknowledged", "resolved", "all")
_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def read_alerts(path) -> pl.DataFrame:
    """The stored alerts of the warehouse at `path` (read-only)."""
    if not path.exists():
        fail(f"no warehouse at {path}: run `eqs run` (or `eqs demo`) first")
    try:
        con = warehouse.connect(path, read_only=True)
    except warehouse.WarehouseError as exc:
        fail(str(exc))  # names the file and, when a run holds it, the run's process
    try:
        if not warehouse.table_exists(con, TABLE):
            fail(
                f"{path} has no {TABLE} yet: the window step of `eqs run` writes it after the "
                "daily dates are loaded"
            )
        return warehouse.read_table(con, TABLE)
    finally:
        con.close()


def _selected(alerts: pl.DataFrame, status: str) -> pl.DataFrame:
    if status == "all":
        return alerts
    wanted = ["open", "acknowledged"] if status == "active" else [status]
    return alerts.filter(pl.col("status").is_in(wanted))


def _evidence(text: str) -> str:
    e = json.loads(text)
    parts = []
    if e.get("baseline") is not None and e.get("recent_level") is not None:
        parts.append(f"{e['baseline']:.4g} -> {e['recent_level']:.4g}")
    elif e.get("value") is not None:
        parts.append(f"{e['value']:.4g} (limit {e['threshold']:.4g})")
    if e.get("shift_sd") is not None:
        parts.append(f"{e['shift_sd']:.1f} sd")
    if e.get("cost_per_day") is not None:
        parts.append(f"{e['cost_per_day']:,.0f}/day")
    if e.get("weight") is not None:
        parts.append(f"weight {e['weight']:,.0f}")
    return ", ".join(parts)


def render(alerts: pl.DataFrame, status: str, console: Console) -> None:
    order = {"critical": 0, "warning": 1, "info": 2}
    rows = alerts.with_columns(
        _rank=pl.col("severity").replace_strict(order, default=3, return_dtype=pl.Int8)
    ).sort("_rank", "trade_date", "alert_id")
    table = Table(
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        title=f"Alerts ({status}): {rows.height}",
        caption="since: the trade date it opened; evidence: baseline -> recent level, the shift "
        "in standard deviations, its cost per day and the weight behind it. "
        "`eqs alerts ack ID` acknowledges one.",
    )
    for name in ("id", "severity", "status", "subject", "metric", "since", "last", "detector"):
        table.add_column(name, overflow="fold")
    table.add_column("evidence", overflow="fold")
    for row in rows.iter_rows(named=True):
        style = _SEVERITY_STYLE.get(row["severity"], "")
        table.add_row(
            row["alert_id"],
            f"[{style}]{row['severity']}[/]" if style else row["severity"],
            row["status"],
            escape(f"{row['dimension']} {row['subject']}"),  # the desk's text, not markup
            row["metric"],
            str(row["trade_date"]),
            str(row["last_alarm_date"]),
            row["detector"],
            escape(_evidence(row["evidence"])),
        )
    console.print(table)


@click.group("alerts", invoke_without_command=True)
@warehouse_file
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default="active",
    show_default=True,
    help="Which alerts: active (open or acknowledged), open, acknowledged, resolved or all.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert (JSON Lines).")
@click.pass_context
def alerts_command(ctx: click.Context, warehouse_path, status: str, as_json: bool) -> None:
    """List the quality monitoring's alerts (docs/MONITORING.md), most severe first."""
    ctx.obj = warehouse_path
    if ctx.invoked_subcommand is not None:
        return
    alerts = _selected(read_alerts(warehouse_path), status)
    if as_json:
        for row in alerts.sort("trade_date", "alert_id").iter_rows(named=True):
            row["evidence"] = json.loads(row["evidence"])
            click.echo(json.dumps(row, default=str, sort_keys=True))
        return
    console = Console()
    if alerts.height == 0:
        console.print(f"no {status} alerts in {escape(str(warehouse_path))}")
        return
    render(alerts, status, console)


@alerts_command.command("ack")
@click.argument("alert_id")
@click.pass_obj
def ack_command(warehouse_path, alert_id: str) -> None:
    """Acknowledge the alert ALERT_ID: someone owns it; it is not delivered again and resolves
    on its own once its subject is back in control."""
    read_alerts(warehouse_path)  # a clear error for a missing warehouse or table
    try:
        con = warehouse.connect(warehouse_path)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    try:
        stored = warehouse.read_table(con, TABLE)
        try:
            updated = acknowledge(stored, alert_id, datetime.now(UTC))
        except (KeyError, ValueError) as exc:
            fail(str(exc.args[0]) if exc.args else str(exc))
        with warehouse.transaction(con):
            warehouse.replace_table(con, TABLE, updated)
        row = updated.filter(pl.col("alert_id") == alert_id).row(0, named=True)
    finally:
        con.close()
    Console().print(
        f"{alert_id} acknowledged at {row['acknowledged_at']:%Y-%m-%d %H:%M:%S} UTC "
        f"({escape(row['dimension'])} {escape(row['subject'])} {row['metric']})"
    )

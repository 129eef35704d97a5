"""The monitoring's window step (`monitor_alerts`) end to end: the series in the lake becomes
`monitor.alerts`, the open alert is delivered once to a webhook the test serves on 127.0.0.1,
the `open_alerts` check warns, `eqs alerts` lists it, `eqs alerts ack ID` acknowledges it, and
running the step again sends nothing and keeps the acknowledgement."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from eqs_pipeline.cli.main import main
from eqs_pipeline.defs.monitor.assets import monitor_alerts
from eqs_pipeline.defs.monitor.checks import OPEN_ALERTS_CHECK
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.storage import lake
from eqs_pipeline_tests.monitor.test_history import _series

pytestmark = pytest.mark.integration


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _materialize(paths: EqsPathsResource) -> dg.ExecuteInProcessResult:
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize([monitor_alerts], resources={"paths": paths}, instance=instance)


def test_alerts_are_raised_delivered_once_listed_and_acknowledged(
    tmp_path, webhook, monkeypatch
) -> None:
    url, received = webhook
    monkeypatch.setenv("EQS_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("EQS_ALERT_ROUTING", "info=webhook;warning=webhook;critical=webhook")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(tmp_path / "landing"))
    series = _series()  # V0 shifts from date 40 to 50 (resolves), V1 from date 45 (open)
    for (day,), frame in series.group_by("trade_date"):
        lake.write(paths.lake_root, "monitor.metric_series", frame, day)

    result = _materialize(paths)
    assert result.success
    check = result.get_asset_check_evaluations()
    warned = [c for c in check if c.check_name == OPEN_ALERTS_CHECK]
    assert len(warned) == 1 and not warned[0].passed
    assert warned[0].severity == dg.AssetCheckSeverity.WARN
    with duckdb.connect(str(paths.warehouse_path), read_only=True) as con:
        alerts = con.execute("select * from monitor.alerts").pl()
        deliveries = con.execute("select * from monitor.deliveries").pl()
    opened = alerts.filter(pl.col("status") == "open")
    assert opened["subject"].to_list() == ["V1"]
    assert sorted(alerts["status"]) == ["open", "resolved"]
    # Only the open alert is delivered, once.
    assert [r["alert"]["alert_id"] for r in received] == opened["alert_id"].to_list()
    assert deliveries.select("alert_id", "channel", "status").rows() == [
        (opened["alert_id"][0], "webhook", "delivered")
    ]

    runner = CliRunner()
    listed = runner.invoke(main, ["alerts", "--warehouse", str(paths.warehouse_path), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["subject"] for r in rows] == ["V1"]  # active ones: the resolved one is not
    assert rows[0]["evidence"]["baseline"] is not None
    ack = runner.invoke(
        main, ["alerts", "--warehouse", str(paths.warehouse_path), "ack", rows[0]["alert_id"]]
    )
    assert ack.exit_code == 0, ack.output
    assert "acknowledged" in ack.output
    unknown = runner.invoke(
        main, ["alerts", "--warehouse", str(paths.warehouse_path), "ack", "alr-0000000000000000"]
    )
    assert unknown.exit_code == 2 and "no alert" in unknown.output

    again = _materialize(paths)
    assert again.success
    assert len(received) == 1  # nothing sent twice
    with duckdb.connect(str(paths.warehouse_path), read_only=True) as con:
        kept = con.execute("select status from monitor.alerts where subject = 'V1'").fetchall()
    assert kept == [("acknowledged",)]
    warned = [c for c in again.get_asset_check_evaluations() if c.check_name == OPEN_ALERTS_CHECK]
    assert warned[0].passed  # acknowledged: nothing left open


def test_a_bad_channel_setting_fails_the_step_and_names_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EQS_SMTP_PORT", "not-a-port")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(tmp_path / "landing"))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [monitor_alerts], resources={"paths": paths}, instance=instance, raise_on_error=False
        )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "EQS_SMTP_PORT" in str(failure)

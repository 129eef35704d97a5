"""Alert delivery against real servers on 127.0.0.1, started and stopped by the tests.

The HTTP server is the stdlib's `http.server` in a thread; the SMTP server is the minimal one
below (`socketserver`, speaking EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT), since the
stdlib's `smtpd` is gone from 3.12 and warns before. The clock and the sleep are fakes, so no
test waits for a back-off.
"""

from __future__ import annotations

import email
import email.policy
import json
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pytest

from eqs_pipeline.monitor.delivery import (
    SCHEMA_VERSION,
    Alert,
    DeliveryRecord,
    DeliverySettings,
    deliver,
    delivery_schema,
    email_message,
    email_subject,
    records_from_frame,
    records_to_frame,
    slack_payload,
    webhook_payload,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def make_alert(subject: str = "XNAS", alert_id: str = "a-1", severity: str = "critical") -> Alert:
    return Alert(
        alert_id=alert_id,
        trade_date=date(2026, 3, 2),
        dimension="venue",
        subject=subject,
        metric="markout_5s_bps",
        severity=severity,
        detector="cusum",
        evidence={
            "baseline": -0.4,
            "recent": -1.9,
            "statistic": 6.2,
            "threshold": 5.0,
            "fills": 512,
        },
        opened_at=T0,
    )


class FakeTime:
    """A clock that the fake sleep advances: back-offs take no wall time."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


# ---------------------------------------------------------------------------------------------
# Servers


class FlakyWebhook:
    """An HTTP server that answers 503 to its first `failures` POSTs, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = 503 if len(outer.requests) < outer.failures else 200
                outer.requests.append((code, dict(self.headers), body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def accepted(self) -> list[bytes]:
        return [body for code, _, body in self.requests if code == 200]


@pytest.fixture
def webhook() -> Iterator[FlakyWebhook]:
    hook = FlakyWebhook(failures=2)
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()
    thread.join()


class SMTPHandler(socketserver.StreamRequestHandler):
    """Enough SMTP for smtplib: one message per DATA, kept in `server.messages`."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 127.0.0.1 test SMTP")
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 127.0.0.1")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.messages.append(data)  # type: ignore[attr-defined]
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        # Bound but not listening: a connection is refused until `start`, on the same port.
        super().__init__(("127.0.0.1", 0), SMTPHandler, bind_and_activate=False)
        self.server_bind()
        self.port = self.server_address[1]
        self.messages: list[bytes] = []
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.server_activate()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    yield server
    if server.thread is not None:
        server.shutdown()
        server.thread.join()
    server.server_close()


# ---------------------------------------------------------------------------------------------
# Delivery


@pytest.mark.integration
def test_webhook_failing_twice_then_up_gets_exactly_one_delivery(webhook: FlakyWebhook) -> None:
    fake = FakeTime()
    settings = DeliverySettings(webhook_url=webhook.url, timeout_s=2.0)
    persisted: list[DeliveryRecord] = []
    alert = make_alert()

    records = deliver(
        [alert], [], settings, clock=fake.clock, sleep=fake.sleep, on_record=persisted.append
    )

    assert len(records) == 1
    [record] = records
    assert (record.alert_id, record.channel, record.status) == ("a-1", "webhook", "delivered")
    assert record.attempts == 3
    assert record.last_error is None
    assert record.delivered_at == T0 + timedelta(seconds=3)
    assert fake.slept == [1.0, 2.0]  # exponential back-off between the attempts
    assert [r.status for r in persisted] == ["pending", "pending", "delivered"]
    assert persisted[0].last_error == "HTTP 503 Service Unavailable"

    assert [code for code, _, _ in webhook.requests] == [503, 503, 200]
    assert len(webhook.accepted) == 1
    headers = [h for _, h, _ in webhook.requests]
    assert {h["Idempotency-Key"] for h in headers} == {"a-1:webhook"}
    assert json.loads(webhook.accepted[0]) == webhook_payload(alert)

    # A later run (a restart with the persisted records) sends nothing.
    again = deliver(
        [alert],
        records_from_frame(records_to_frame(records)),
        settings,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert again == records
    assert len(webhook.requests) == 3


@pytest.mark.integration
def test_smtp_down_stays_pending_then_delivered_once_when_up(smtp_server: SMTPServer) -> None:
    fake = FakeTime()
    settings = DeliverySettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        email_to=("desk@example.com",),
        routing={"critical": ("email",)},
        timeout_s=1.0,
    )
    alert = make_alert()

    records = deliver([alert], [], settings, clock=fake.clock, sleep=fake.sleep)
    [record] = records
    assert (record.channel, record.status, record.attempts) == ("email", "pending", 3)
    assert record.last_error is not None and "ConnectionRefusedError" in record.last_error
    assert record.delivered_at is None
    # Back-off 1 s, 2 s between the attempts, then 4 s before the next run may retry.
    assert record.next_attempt_at == T0 + timedelta(seconds=3 + 4)

    # The records survive a restart through the persisted frame.
    records = records_from_frame(records_to_frame(records))
    smtp_server.start()

    # Not yet due: the next run leaves it alone, and the server sees nothing.
    assert deliver([alert], records, settings, clock=fake.clock, sleep=fake.sleep) == records
    assert smtp_server.messages == []

    fake.now += timedelta(seconds=4)
    records = deliver([alert], records, settings, clock=fake.clock, sleep=fake.sleep)
    [record] = records
    assert (record.status, record.attempts, record.last_error) == ("delivered", 4, None)
    assert len(smtp_server.messages) == 1
    received = email.message_from_bytes(smtp_server.messages[0], policy=email.policy.default)
    assert received["Subject"] == email_subject(alert)
    assert received["To"] == "desk@example.com"
    assert "markout_5s_bps" in received.get_content()

    # And a further run sends nothing.
    fake.now += timedelta(hours=1)
    assert deliver([alert], records, settings, clock=fake.clock, sleep=fake.sleep) == records
    assert len(smtp_server.messages) == 1


def test_rejected_webhook_fails_for_good_and_is_not_retried() -> None:
    calls: list[str] = []

    def reject(alert: Alert, key: str) -> None:
        from eqs_pipeline.monitor.delivery import DeliveryError

        calls.append(key)
        raise DeliveryError("HTTP 400 Bad Request", retryable=False)

    fake = FakeTime()
    settings = DeliverySettings(webhook_url="http://127.0.0.1:9/hook")
    records = deliver(
        [make_alert()],
        [],
        settings,
        senders={"webhook": reject},
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert [(r.status, r.attempts) for r in records] == [("failed", 1)]
    assert (
        deliver([make_alert()], records, settings, senders={"webhook": reject}, clock=fake.clock)
        == records
    )
    assert calls == ["a-1:webhook"]


def test_routing_sends_each_severity_to_its_enabled_channels() -> None:
    sent: list[str] = []
    senders = {c: (lambda alert, key: sent.append(key)) for c in ("webhook", "slack", "email")}
    settings = DeliverySettings(
        webhook_url="http://127.0.0.1:9/a", slack_webhook_url="http://127.0.0.1:9/b"
    )
    alerts = [
        make_alert(alert_id="i", severity="info"),
        make_alert(alert_id="c", severity="critical"),
    ]
    deliver(alerts, [], settings, senders=senders, clock=FakeTime().clock)
    # E-mail has no SMTP host, so it is off; info goes to the webhook only.
    assert sent == ["i:webhook", "c:webhook", "c:slack"]
    assert DeliverySettings().channels_for("critical") == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"routing": {"urgent": ("webhook",)}},
        {"routing": {"critical": ("pager",)}},
        {"webhook_url": "ftp://127.0.0.1/hook"},
        {"email_to": ("desk@example.com\r\nBcc: x@y",)},
        {"attempts_per_run": 0},
        {"backoff_base_s": 10.0, "backoff_max_s": 1.0},
        {"smtp_port": 0},
    ],
)
def test_settings_reject_invalid_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DeliverySettings(**kwargs)  # type: ignore[arg-type]


def test_backoff_grows_exponentially_to_its_cap() -> None:
    settings = DeliverySettings(backoff_base_s=1.0, backoff_factor=2.0, backoff_max_s=10.0)
    assert [settings.backoff_s(n) for n in (1, 2, 3, 4, 5, 1000)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
    ]


# ---------------------------------------------------------------------------------------------
# Payloads


def test_slack_payload_escapes_what_it_quotes() -> None:
    payload = slack_payload(make_alert(subject="<script>&<!channel>"))
    text = json.dumps(payload)
    assert "&lt;script&gt;&amp;&lt;!channel&gt;" in payload["text"]
    assert "<script>" not in text and "<!channel>" not in text
    assert payload["blocks"][0]["text"]["type"] == "mrkdwn"
    assert "&lt;script&gt;&amp;" in payload["blocks"][0]["text"]["text"]


def test_email_subject_cannot_carry_a_newline() -> None:
    alert = make_alert(subject="XNAS\r\nBcc: attacker@example.com\nX-Evil: 1")
    subject = email_subject(alert)
    assert "\r" not in subject and "\n" not in subject
    raw = email_message(alert, DeliverySettings(email_to=("desk@example.com",))).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert parsed["Subject"] == subject


def test_records_frame_round_trips_with_the_deliveries_schema() -> None:
    records = [
        DeliveryRecord("a-1", "webhook"),
        DeliveryRecord("a-1", "email", "pending", 3, "OSError: down", T0, T0, None),
        DeliveryRecord("a-2", "slack", "delivered", 1, None, T0, None, T0),
    ]
    frame = records_to_frame(records)
    assert frame.schema == pl.Schema(delivery_schema())
    assert records_from_frame(frame) == records
    assert records_to_frame([]).schema == pl.Schema(delivery_schema())
    with pytest.raises(ValueError, match="status"):
        records_from_frame(frame.with_columns(pl.lit("sent").alias("status")))


def test_webhook_payload_is_versioned_plain_json() -> None:
    alert = make_alert()
    alert = Alert(
        **{**alert.__dict__, "evidence": {"stat": float("nan"), "since": date(2026, 2, 27)}}
    )
    payload = webhook_payload(alert)
    assert payload["schema_version"] == SCHEMA_VERSION
    assert payload["alert"]["evidence"] == {"stat": None, "since": "2026-02-27"}
    assert payload["alert"]["opened_at"] == "2026-03-02T08:00:00+00:00"
    json.dumps(payload, allow_nan=False)


def test_settings_from_the_environment() -> None:
    settings = DeliverySettings.from_env(
        {
            "EQS_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "EQS_SMTP_HOST": "127.0.0.1",
            "EQS_SMTP_PORT": "2525",
            "EQS_ALERT_EMAIL_TO": "desk@example.com, head@example.com",
            "EQS_ALERT_ROUTING": "critical=webhook,email; warning=webhook",
            "EQS_ALERT_SLACK_URL": "",
        }
    )
    assert settings.webhook_url == "http://127.0.0.1:9/hook"
    assert settings.smtp_port == 2525
    assert settings.email_to == ("desk@example.com", "head@example.com")
    assert settings.channels_for("critical") == ("webhook", "email")
    assert settings.channels_for("info") == ()
    assert not settings.enabled("slack")
    with pytest.raises(ValueError, match="EQS_SMTP_PORT='x'"):
        DeliverySettings.from_env({"EQS_SMTP_PORT": "x"})
    with pytest.raises(ValueError, match="unknown channels"):
        DeliverySettings.from_env({"EQS_ALERT_ROUTING": "critical=pager"})

"""Alert delivery: webhook, Slack-compatible webhook and SMTP e-mail, with retries and records.

An alert goes to the channels its severity is routed to (`DeliverySettings.routing`). Each
(alert_id, channel) pair has one `DeliveryRecord`, which the caller keeps between runs (the
warehouse table `monitor.deliveries`; `records_to_frame` / `records_from_frame`). `deliver`
takes the alerts and the records so far and returns the updated records:

- a record `delivered` (or `failed`: the receiver rejected the alert for good, e.g. HTTP 400 or
  SMTP 550) is never sent again, so a restart repeats nothing;
- a channel that stays down leaves its record `pending` with `attempts`, `last_error` and
  `next_attempt_at` (exponential back-off), and a later run retries it once it is due, so
  nothing is lost;
- `on_record` is called after every attempt, so a caller that persists there loses at most the
  attempt in flight when it crashes. For that one window, webhooks carry the header
  `Idempotency-Key: <alert_id>:<channel>` and e-mails a `Message-ID` made from the same key,
  letting the receiver drop a repeat.

Whatever an alert quotes from the data (subject, metric, evidence) is escaped for the medium:
Slack's mrkdwn control characters `&`, `<` and `>` become entities (no `<!channel>` or link can
be injected), and an e-mail header never carries a line break (no header can be injected).

The generic webhook's JSON payload is versioned (`SCHEMA_VERSION`, semver: a new field is a
minor version, a removed or renamed one a major version). docs/MONITORING.md documents it.

Pure: no Dagster, no DuckDB. The clock and the sleep are arguments, so tests run in
milliseconds, and the senders are too, so a caller can swap one channel's transport.
"""

from __future__ import annotations

import json
import math
import os
import re
import smtplib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal, Protocol, get_args

import httpx
import polars as pl

SCHEMA_VERSION = "1.0.0"
PAYLOAD_TYPE = "eqs.alert"

# The alert severities, least to most severe: the keys of `DeliverySettings.routing`.
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

Channel = Literal["webhook", "slack", "email"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)

# pending: not yet accepted, retried when due; delivered: accepted by the receiver, never sent
# again; failed: rejected for good (a client error), never sent again until the operator
# removes the record.
Status = Literal["pending", "delivered", "failed"]
STATUSES: tuple[Status, ...] = get_args(Status)

# HTTP statuses worth retrying: timeouts, rate limits and server errors. Any other non-2xx
# (a 4xx, or a redirect, which is not followed: the URL is misconfigured) fails for good.
_RETRY_HTTP = frozenset({408, 425, 429})
# Longest text a Slack section holds (3000) and a readable e-mail subject; the rest is cut.
_SLACK_TEXT_MAX = 3000
_SUBJECT_MAX = 200
# Line breaks and other control characters, replaced by a space in single-line text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What a Message-ID's left part may hold (RFC 5322 dot-atom text, conservatively).
_NOT_ATOM = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Alert:
    """One alert as delivery sees it (the `monitor.alerts` row, without its lifecycle).

    alert_id: stable identifier of the alert; with the channel it keys its delivery record and
        its idempotency key, so the same alert raised again by a restarted detector is not
        delivered twice.
    trade_date: the trade date whose data raised it.
    dimension / subject: what is monitored (`venue` / `XNAS`, `algo` / `VWAP-2`, ...).
    metric: the monitored metric (`cost_z`, `markout_5s_bps`, ...).
    severity: one of `SEVERITIES`; chooses the channels.
    detector: what raised it (`threshold`, `ewma`, `cusum`).
    evidence: the numbers behind it (baseline, recent level, statistic, threshold, fills);
        JSON-like values.
    opened_at: when the alert was opened (timezone-aware).
    """

    alert_id: str
    trade_date: date
    dimension: str
    subject: str
    metric: str
    severity: str
    detector: str
    evidence: Mapping[str, Any]
    opened_at: datetime


@dataclass(frozen=True)
class DeliveryRecord:
    """Where the delivery of one alert to one channel stands; the caller persists these.

    attempts: sends tried so far, over all runs. last_error: why the last one failed (None once
    delivered). next_attempt_at: when a `pending` record is due again (None: now).
    """

    alert_id: str
    channel: str
    status: Status = "pending"
    attempts: int = 0
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(alert_id, channel): one record, one delivery, per pair."""
        return (self.alert_id, self.channel)


def _default_routing() -> dict[str, tuple[Channel, ...]]:
    return {
        "info": ("webhook",),
        "warning": ("webhook", "slack"),
        "critical": ("webhook", "slack", "email"),
    }


@dataclass(frozen=True)
class DeliverySettings:
    """Where alerts go and how hard delivery tries.

    routing: severity -> channels. By default every alert goes to the generic webhook (the
        machine-readable feed), warnings also to Slack, and critical alerts also by e-mail,
        the one channel that reaches someone away from the desk. A channel without its
        endpoint (no URL, no SMTP host or no recipient) is off: the default settings send
        nothing until an endpoint is set.
    webhook_url / slack_webhook_url: the generic and the Slack-compatible webhook.
    smtp_host / smtp_port / smtp_starttls / smtp_username / smtp_password_env: the SMTP relay;
        the password is read from the named environment variable at send time, so it is never
        a setting that could be logged or persisted.
    email_from / email_to: sender and recipients of the e-mails.
    timeout_s: connect and read timeout of one send; a receiver slower than this is down.
    attempts_per_run: sends tried per record within one `deliver` call before it is left
        `pending` for a later run (3: rides out a brief outage without holding the run up).
    backoff_base_s / backoff_factor / backoff_max_s: the wait after the n-th failed attempt is
        min(base x factor^(n-1), max): 1 s, 2 s, 4 s, ... up to 15 minutes, between sends
        within a run and before a later run retries.
    """

    routing: Mapping[str, tuple[Channel, ...]] = field(default_factory=_default_routing)
    webhook_url: str | None = None
    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password_env: str = "EQS_SMTP_PASSWORD"
    email_from: str = "eqs-monitor@localhost"
    email_to: tuple[str, ...] = ()
    timeout_s: float = 10.0
    attempts_per_run: int = 3
    backoff_base_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 900.0

    def __post_init__(self) -> None:
        for severity, channels in self.routing.items():
            if severity not in SEVERITIES:
                raise ValueError(f"routing: unknown severity {severity!r}; one of {SEVERITIES}")
            unknown = [c for c in channels if c not in CHANNELS]
            if unknown:
                raise ValueError(f"routing[{severity!r}]: unknown channels {unknown}; {CHANNELS}")
        for name in ("webhook_url", "slack_webhook_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http(s) URL, not {url!r}")
        if not 0 < self.smtp_port < 65536:
            raise ValueError(f"smtp_port must be in 1..65535, not {self.smtp_port}")
        for address in (self.email_from, *self.email_to):
            if _CONTROL.search(address) or "@" not in address:
                raise ValueError(f"not an e-mail address: {address!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, not {self.timeout_s}")
        if self.attempts_per_run < 1:
            raise ValueError(f"attempts_per_run must be >= 1, not {self.attempts_per_run}")
        if self.backoff_base_s < 0 or self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff: need 0 <= backoff_base_s <= backoff_max_s")
        if self.backoff_factor < 1:
            raise ValueError(f"backoff_factor must be >= 1, not {self.backoff_factor}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeliverySettings:
        """The settings named by environment variables (`ENV`), the defaults for the others:
        the daily assets and `eqs monitor` read the same ones, so one deployment's channels
        are set in one place. Raises ValueError naming the variable that is wrong."""
        values: dict[str, Any] = {}
        for name, (field_name, parse) in ENV.items():
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[field_name] = parse(raw.strip())
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r}: {exc}") from None
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"alert delivery settings from the environment: {exc}") from None

    def enabled(self, channel: str) -> bool:
        """Whether `channel` has the endpoint it needs."""
        if channel == "webhook":
            return self.webhook_url is not None
        if channel == "slack":
            return self.slack_webhook_url is not None
        return self.smtp_host is not None and bool(self.email_to)

    def channels_for(self, severity: str) -> tuple[str, ...]:
        """The enabled channels an alert of `severity` goes to (none for an unrouted one)."""
        return tuple(c for c in self.routing.get(severity, ()) if self.enabled(c))

    def backoff_s(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th consecutive failed attempt (attempts >= 1)."""
        exponent = max(attempts - 1, 0)
        # Capped before the power overflows a float on a record retried for weeks.
        if self.backoff_factor > 1 and exponent > 64:
            return self.backoff_max_s
        return min(self.backoff_base_s * self.backoff_factor**exponent, self.backoff_max_s)


def _routing(text: str) -> dict[str, tuple[str, ...]]:
    """`critical=webhook,slack,email;warning=webhook,slack;info=webhook` (a severity left out
    goes nowhere)."""
    out: dict[str, tuple[str, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        severity, sep, channels = part.partition("=")
        if not sep:
            raise ValueError(f"expected severity=channel,channel in {part!r}")
        out[severity.strip()] = tuple(c.strip() for c in channels.split(",") if c.strip())
    return out


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


# Environment variable -> (DeliverySettings field, parser). docs/MONITORING.md lists them.
ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "EQS_ALERT_ROUTING": ("routing", _routing),
    "EQS_ALERT_WEBHOOK_URL": ("webhook_url", str),
    "EQS_ALERT_SLACK_URL": ("slack_webhook_url", str),
    "EQS_SMTP_HOST": ("smtp_host", str),
    "EQS_SMTP_PORT": ("smtp_port", int),
    "EQS_SMTP_STARTTLS": ("smtp_starttls", _flag),
    "EQS_SMTP_USERNAME": ("smtp_username", str),
    "EQS_ALERT_EMAIL_FROM": ("email_from", str),
    "EQS_ALERT_EMAIL_TO": (
        "email_to",
        lambda t: tuple(a.strip() for a in t.split(",") if a.strip()),
    ),
    "EQS_ALERT_TIMEOUT_S": ("timeout_s", float),
}


class DeliveryError(Exception):
    """A send that did not go through. retryable: a later attempt may succeed (the receiver
    is down or overloaded); otherwise it rejected the alert and will again."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sender(Protocol):
    """Sends one alert to one channel; returns when accepted, raises `DeliveryError` if not."""

    def __call__(self, alert: Alert, idempotency_key: str) -> None: ...


# ---------------------------------------------------------------------------------------------
# Payloads


def idempotency_key(alert_id: str, channel: str) -> str:
    """`<alert_id>:<channel>`: the same for every attempt, across runs and restarts."""
    return f"{alert_id}:{channel}"


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The generic webhook's JSON body, schema `SCHEMA_VERSION` (docs/MONITORING.md).

    Plain JSON: dates as ISO 8601, a non-finite float in the evidence as null (JSON has no NaN),
    any other non-JSON value as its text.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "type": PAYLOAD_TYPE,
        "alert": {
            "alert_id": alert.alert_id,
            "trade_date": alert.trade_date.isoformat(),
            "dimension": alert.dimension,
            "subject": alert.subject,
            "metric": alert.metric,
            "severity": alert.severity,
            "detector": alert.detector,
            "evidence": _json_value(dict(alert.evidence)),
            "opened_at": alert.opened_at.isoformat(),
        },
    }


def slack_escape(text: str) -> str:
    """Text for Slack mrkdwn: `&`, `<`, `>` as entities (Slack's own rule), so data cannot
    open a link, a mention (`<!channel>`) or a fake entity; control characters as spaces."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _CONTROL.sub(" ", text)


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook body: `text` (the notification and fallback) and `blocks`
    (mrkdwn sections: the headline, the alert's fields, its evidence)."""
    e = slack_escape
    headline = (
        f"[{e(alert.severity.upper())}] {e(alert.metric)} on {e(alert.dimension)} "
        f"{e(alert.subject)} ({alert.trade_date.isoformat()})"
    )
    fields = [
        ("Detector", alert.detector),
        ("Trade date", alert.trade_date.isoformat()),
        ("Opened at", alert.opened_at.isoformat()),
        ("Alert", alert.alert_id),
    ]
    evidence = "\n".join(
        f"• {e(str(k))}: {e(_evidence_text(v))}" for k, v in alert.evidence.items()
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*{headline}*")}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _cut(f"*{k}*\n{e(v)}")} for k, v in fields],
        },
    ]
    if evidence:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*Evidence*\n{evidence}")}}
        )
    return {"text": _cut(headline), "blocks": blocks}


def header_text(text: str, limit: int = _SUBJECT_MAX) -> str:
    """One line of header text: line breaks and control characters as spaces, runs of
    white space as one, cut to `limit` characters; nothing in it can start a new header."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def email_subject(alert: Alert) -> str:
    """`[EQS CRITICAL] cost_z on venue XNAS (2026-03-02)`, one line whatever the data holds."""
    return header_text(
        f"[EQS {alert.severity.upper()}] {alert.metric} on {alert.dimension} {alert.subject} "
        f"({alert.trade_date.isoformat()})"
    )


def email_body(alert: Alert) -> str:
    """The plain-text body: the alert's fields and evidence, one per line. Each quoted value is
    kept on its line (control characters as spaces), so data cannot fake a field."""
    lines = [
        email_subject(alert),
        "",
        f"Alert:      {header_text(alert.alert_id, 1000)}",
        f"Trade date: {alert.trade_date.isoformat()}",
        f"Dimension:  {header_text(alert.dimension, 1000)}",
        f"Subject:    {header_text(alert.subject, 1000)}",
        f"Metric:     {header_text(alert.metric, 1000)}",
        f"Severity:   {header_text(alert.severity, 1000)}",
        f"Detector:   {header_text(alert.detector, 1000)}",
        f"Opened at:  {alert.opened_at.isoformat()}",
        "",
        "Evidence:",
        *(
            f"  {header_text(str(k), 1000)}: {header_text(_evidence_text(v), 1000)}"
            for k, v in alert.evidence.items()
        ),
        "",
    ]
    return "\n".join(lines)


def email_message(alert: Alert, settings: DeliverySettings) -> EmailMessage:
    """The e-mail of an alert; its `Message-ID` is derived from the idempotency key, so a
    repeat after a crash is recognisably the same message."""
    message = EmailMessage()
    message["Subject"] = email_subject(alert)
    message["From"] = settings.email_from
    message["To"] = ", ".join(settings.email_to)
    message["Date"] = format_datetime(alert.opened_at)
    key = idempotency_key(alert.alert_id, "email")
    message["Message-ID"] = f"<{_NOT_ATOM.sub('-', key)}@eqs-monitor>"
    message["X-EQS-Alert-Id"] = header_text(alert.alert_id, 1000)
    message.set_content(email_body(alert))
    return message


# ---------------------------------------------------------------------------------------------
# Senders


def webhook_sender(
    url: str, body: Callable[[Alert], dict[str, Any]], client: httpx.Client
) -> Sender:
    """POSTs `body(alert)` as JSON to `url` with the idempotency key; 2xx is delivered."""

    def send(alert: Alert, key: str) -> None:
        content = json.dumps(body(alert), ensure_ascii=False, allow_nan=False).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        try:
            response = client.post(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        code = response.status_code
        if 200 <= code < 300:
            return
        retryable = code >= 500 or code in _RETRY_HTTP
        raise DeliveryError(f"HTTP {code} {response.reason_phrase}", retryable=retryable)

    return send


def smtp_sender(settings: DeliverySettings) -> Sender:
    """Sends the alert's e-mail through `settings.smtp_host`; a 4xx reply or a connection that
    fails is retried, a 5xx reply (a refused sender, recipient or message) is not."""

    def send(alert: Alert, key: str) -> None:
        message = email_message(alert, settings)
        assert settings.smtp_host is not None  # only enabled channels get a sender
        try:
            with smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s
            ) as smtp:
                if settings.smtp_starttls:
                    smtp.starttls()
                if settings.smtp_username is not None:
                    smtp.login(
                        settings.smtp_username, os.environ.get(settings.smtp_password_env, "")
                    )
                # Recipients refused while others accepted are not retried: a retry would
                # send the others a second copy. The SMTP log shows the refusals.
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"SMTP recipients refused: {codes}", retryable=_smtp_retryable(codes)
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                retryable=_smtp_retryable([exc.smtp_code]),
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # OSError: refused, timed out
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc

    return send


def default_senders(settings: DeliverySettings, client: httpx.Client) -> dict[str, Sender]:
    """The built-in sender of every enabled channel, webhooks through `client`."""
    senders: dict[str, Sender] = {}
    if settings.webhook_url is not None:
        senders["webhook"] = webhook_sender(settings.webhook_url, webhook_payload, client)
    if settings.slack_webhook_url is not None:
        senders["slack"] = webhook_sender(settings.slack_webhook_url, slack_payload, client)
    if settings.enabled("email"):
        senders["email"] = smtp_sender(settings)
    return senders


# ---------------------------------------------------------------------------------------------
# Delivery


def deliver(
    alerts: Iterable[Alert],
    records: Iterable[DeliveryRecord],
    settings: DeliverySettings,
    *,
    senders: Mapping[str, Sender] | None = None,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_record: Callable[[DeliveryRecord], None] | None = None,
) -> list[DeliveryRecord]:
    """Send every alert to its channels and return all the records, updated.

    alerts: the alerts to deliver; pass every alert that may still have a `pending` record (a
        pending record whose alert is not passed is kept as it is, since there is nothing to
        send). records: the records of earlier runs, as persisted. senders: channel -> sender;
        by default the built-in ones of `settings` (`default_senders`). clock: now, aware (UTC
        by default). sleep: waits between attempts within this run. on_record: called with a
        record after each of its attempts, to persist it at once.

    A record `delivered` or `failed` is not sent again, nor a `pending` one whose
    `next_attempt_at` is later than now. A due record gets up to `attempts_per_run` attempts,
    `backoff_s(n)` apart; still failing, it stays `pending` with `next_attempt_at` = now +
    `backoff_s(attempts)`. Returns the records in their given order, then the new ones in
    the order of the alerts and the routing.
    """
    now = clock or (lambda: datetime.now(UTC))
    by_key: dict[tuple[str, str], DeliveryRecord] = {}
    for record in records:
        if record.key in by_key:
            raise ValueError(f"two delivery records for {record.key}")
        by_key[record.key] = record
    client: httpx.Client | None = None
    try:
        for alert in alerts:
            for channel in settings.channels_for(alert.severity):
                key = (alert.alert_id, channel)
                record = by_key.get(key) or DeliveryRecord(alert.alert_id, channel)
                by_key[key] = record
                if not is_due(record, now()):
                    continue
                if senders is None:  # built at the first send: a call with none due is free
                    client = httpx.Client(timeout=settings.timeout_s)
                    senders = default_senders(settings, client)
                if channel not in senders:
                    raise ValueError(f"no sender for the channel {channel!r}")
                by_key[key] = _deliver_one(
                    alert, record, senders[channel], settings, now, sleep, on_record
                )
    finally:
        if client is not None:
            client.close()
    return list(by_key.values())


def is_due(record: DeliveryRecord, now: datetime) -> bool:
    """Whether `record` is to be sent now: pending, and past its back-off (if any)."""
    return record.status == "pending" and (
        record.next_attempt_at is None or record.next_attempt_at <= now
    )


def _deliver_one(
    alert: Alert,
    record: DeliveryRecord,
    send: Sender,
    settings: DeliverySettings,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
    on_record: Callable[[DeliveryRecord], None] | None,
) -> DeliveryRecord:
    """Up to `attempts_per_run` attempts at one due record (`is_due`); the record after the
    last."""
    key = idempotency_key(record.alert_id, record.channel)
    for attempt in range(settings.attempts_per_run):
        if attempt:
            sleep(settings.backoff_s(record.attempts))
        started = now()
        try:
            send(alert, key)
        except DeliveryError as exc:
            attempts = record.attempts + 1
            status: Status = "pending" if exc.retryable else "failed"
            record = replace(
                record,
                status=status,
                attempts=attempts,
                last_error=str(exc)[:1000],
                last_attempt_at=started,
                next_attempt_at=(
                    now() + timedelta(seconds=settings.backoff_s(attempts))
                    if exc.retryable
                    else None
                ),
            )
            if on_record is not None:
                on_record(record)
            if not exc.retryable:
                return record
            continue
        record = replace(
            record,
            status="delivered",
            attempts=record.attempts + 1,
            last_error=None,
            last_attempt_at=started,
            next_attempt_at=None,
            delivered_at=now(),
        )
        if on_record is not None:
            on_record(record)
        return record
    return record


def delivery_schema() -> dict[str, pl.DataType]:
    """The columns of `monitor.deliveries` (declared in the table registry), in order."""
    from eqs_pipeline.tables.monitor_alerts import DELIVERIES

    return DELIVERIES.polars_schema


def records_to_frame(records: Sequence[DeliveryRecord]) -> pl.DataFrame:
    """The records as a `monitor.deliveries` frame (`delivery_schema`)."""
    schema = delivery_schema()
    rows = [{name: getattr(record, name) for name in schema} for record in records]
    return pl.DataFrame(rows, schema=schema)


def records_from_frame(frame: pl.DataFrame) -> list[DeliveryRecord]:
    """The records of a `monitor.deliveries` frame, as persisted by `records_to_frame`."""
    schema = delivery_schema()
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"monitor.deliveries lacks the columns {missing}")
    records = []
    for row in frame.select(list(schema)).iter_rows(named=True):
        if row["status"] not in STATUSES:
            raise ValueError(f"unknown delivery status {row['status']!r}")
        records.append(DeliveryRecord(**row))
    return records


# ---------------------------------------------------------------------------------------------
# Helpers


def _smtp_retryable(codes: Iterable[int]) -> bool:
    """A 4xx SMTP reply is temporary; a 5xx one is permanent (RFC 5321, 4.2.1)."""
    return all(code < 500 for code in codes)


def _json_value(value: Any) -> Any:
    """`value` as plain JSON: non-finite floats as null, dates as ISO text, others as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


def _evidence_text(value: Any) -> str:
    """An evidence value as short text: floats to 4 significant digits, others as JSON."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(_json_value(value), ensure_ascii=False)


def _cut(text: str, limit: int = _SLACK_TEXT_MAX) -> str:
    """`text` within Slack's limit, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"

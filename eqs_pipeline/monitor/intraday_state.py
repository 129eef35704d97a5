"""The intraday monitor's files: the drop folder it follows, its checkpoint, its alerts and their
delivery records (docs/MONITORING.md, "Intraday monitoring"; the drop folder's layout is in
docs/INGESTION.md, "Intraday drop folder").

    <drop>/<table>/date=YYYY-MM-DD/<batch>.parquet    orders, child_orders, quotes, executions
    <state>/<trade_date>/checkpoint.json              the batch files processed, in order
    <state>/<trade_date>/alerts.json                  the session's intraday alerts
    <state>/<trade_date>/deliveries.parquet           one record per (alert_id, channel)

Every state file is replaced atomically (a hidden temporary file in the same folder, then a
rename), so a crash leaves the previous or the new version, never half of one.

Restart: the monitor's state is a function of the batch files it processed, in the order it
processed them (`intraday.IntradayMonitor`), so the checkpoint lists them and a restart replays
them before following the folder again. Alert ids are derived from the subject, metric and
session, so a replayed alert has the id it had; the persisted alert (its `opened_at`) is kept,
and its delivery records say what was already sent: nothing is sent twice, and an alert
raised but not yet persisted when the process died is raised again, so nothing is lost.

Why polling and not file-system events: watchdog is not a dependency, inotify does not see
files written over NFS or by another host, and one listing every couple of seconds costs
nothing next to a minute of data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from eqs_pipeline.monitor.delivery import (
    Alert,
    DeliveryRecord,
    DeliverySettings,
    Sender,
    deliver,
    records_from_frame,
    records_to_frame,
    webhook_payload,
)
from eqs_pipeline.monitor.intraday import IntradayMonitor
from eqs_pipeline.storage import lake

# The tables a batch may hold, in the order one poll processes them: what a fill refers to
# (its order, its child order, the quotes before it) first.
TABLES: tuple[str, ...] = ("orders", "child_orders", "quotes", "executions")
CHECKPOINT_VERSION = 1


class DropError(Exception):
    """The drop folder or the state folder cannot be used as it is (the message says why)."""


def _ignored(name: str) -> bool:
    # As in the landing: editor files, temporary files and _SUCCESS markers.
    return name.startswith((".", "_"))


def session_dates(drop: Path) -> list[date]:
    """The trade dates with a batch folder in any table, ascending."""
    if not drop.is_dir():
        raise DropError(f"no drop folder at {drop}")
    out = set()
    for table in TABLES:
        for folder in (drop / table).glob("date=*"):
            try:
                out.add(date.fromisoformat(folder.name.removeprefix("date=")))
            except ValueError:
                raise DropError(f"{folder}: not a date=YYYY-MM-DD folder") from None
    return sorted(out)


def list_batches(drop: Path, trade_date: date) -> list[tuple[str, str]]:
    """Every (table, file name) of the session's batches, in processing order: by file name,
    then by table (`TABLES`)."""
    found = []
    for rank, table in enumerate(TABLES):
        folder = drop / table / f"date={trade_date.isoformat()}"
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if _ignored(path.name):
                continue
            if path.suffix != ".parquet" or not path.is_file():
                raise DropError(f"{path}: a batch must be a .parquet file")
            found.append((path.name, rank, table))
    return [(table, name) for name, _, table in sorted(found)]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def _write_json(target: Path, payload: Any) -> None:
    text = json.dumps(payload, indent=1, default=_json_default, allow_nan=False)
    lake.replace_local(target, lambda tmp: tmp.write_text(text + "\n"))


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """The alert as the webhook's payload holds it (plain JSON: ISO dates, null for a
    non-finite number)."""
    return webhook_payload(alert)["alert"]


def alert_from_json(row: dict[str, Any]) -> Alert:
    return Alert(
        alert_id=row["alert_id"],
        trade_date=date.fromisoformat(row["trade_date"]),
        dimension=row["dimension"],
        subject=row["subject"],
        metric=row["metric"],
        severity=row["severity"],
        detector=row["detector"],
        evidence=row["evidence"],
        opened_at=datetime.fromisoformat(row["opened_at"]),
    )


@dataclass
class Session:
    """One session followed from a drop folder, with its state folder."""

    drop: Path
    state: Path  # <state root>/<trade_date>
    monitor: IntradayMonitor
    processed: list[tuple[str, str, int]] = field(default_factory=list)  # (table, name, size)
    alerts: dict[str, Alert] = field(default_factory=dict)  # alert_id -> persisted alert
    records: list[DeliveryRecord] = field(default_factory=list)

    @property
    def trade_date(self) -> date:
        return self.monitor.trade_date

    @property
    def checkpoint_path(self) -> Path:
        return self.state / "checkpoint.json"

    @property
    def alerts_path(self) -> Path:
        return self.state / "alerts.json"

    @property
    def deliveries_path(self) -> Path:
        return self.state / "deliveries.parquet"

    # -- opening: the persisted alerts and records, then the checkpoint's batches replayed --

    @classmethod
    def open(cls, drop: Path, state_root: Path, monitor: IntradayMonitor) -> Session:
        session = cls(drop, state_root / monitor.trade_date.isoformat(), monitor)
        rows: list[dict[str, Any]] = []
        if session.alerts_path.is_file():
            rows = json.loads(session.alerts_path.read_text())
            session.alerts = {r["alert_id"]: alert_from_json(r) for r in rows}
        if session.deliveries_path.is_file():
            session.records = records_from_frame(pl.read_parquet(session.deliveries_path))
        if session.checkpoint_path.is_file():
            checkpoint = json.loads(session.checkpoint_path.read_text())
            if checkpoint.get("version") != CHECKPOINT_VERSION:
                raise DropError(
                    f"{session.checkpoint_path}: checkpoint version {checkpoint.get('version')}, "
                    f"this monitor reads {CHECKPOINT_VERSION}; move the state folder aside"
                )
            if checkpoint.get("trade_date") != monitor.trade_date.isoformat():
                raise DropError(f"{session.checkpoint_path}: the checkpoint of another session")
            for table, name, size in checkpoint["files"]:
                path = session._path(table, name)
                if not path.is_file() or path.stat().st_size != size:
                    raise DropError(
                        f"{path}: processed before the restart ({size} bytes) but now "
                        f"{'missing' if not path.is_file() else 'changed'}; a batch is written "
                        "once and never replaced"
                    )
                session._process(table, name, size)
        loaded = session.alerts_path.is_file()
        if session.alerts and (not loaded or len(session.alerts) > len(rows)):
            session.save_alerts()  # raised before the crash, not persisted yet: not lost
        return session

    def _path(self, table: str, name: str) -> Path:
        return self.drop / table / f"date={self.trade_date.isoformat()}" / name

    def _process(self, table: str, name: str, size: int) -> list[Alert]:
        try:
            frame = pl.read_parquet(self._path(table, name))
        except Exception as exc:  # a corrupt batch: say which
            raise DropError(
                f"{self._path(table, name)}: cannot read it as Parquet ({exc})"
            ) from exc
        feed = {
            "orders": self.monitor.add_orders,
            "child_orders": self.monitor.add_children,
            "quotes": self.monitor.add_quotes,
            "executions": self.monitor.add_executions,
        }[table]
        try:
            new = feed(frame)
        except pl.exceptions.ColumnNotFoundError as exc:
            raise DropError(
                f"{self._path(table, name)}: a contract column is missing ({exc})"
            ) from exc
        self.processed.append((table, name, size))
        for alert in new:
            # A replayed alert keeps the identity and opening time it was persisted with.
            self.alerts.setdefault(alert.alert_id, alert)
        return new

    # -- one poll ----------------------------------------------------------------------------

    def poll(self) -> list[Alert]:
        """Process the batches that landed since the last poll, persist the new alerts and then
        the checkpoint; returns the alerts raised. A file is processed once: one that appears
        with a name that sorts before a processed one is still processed (next), in landing
        order rather than name order."""
        done = {(t, n) for t, n, _ in self.processed}
        new: list[Alert] = []
        for table, name in list_batches(self.drop, self.trade_date):
            if (table, name) in done:
                continue
            size = self._path(table, name).stat().st_size
            new.extend(self._process(table, name, size))
        if new:
            self.save_alerts()
        if new or len(done) != len(self.processed) or not self.checkpoint_path.is_file():
            self.save_checkpoint()
        return new

    def save_alerts(self) -> None:
        _write_json(self.alerts_path, [alert_to_json(a) for a in self.alerts.values()])

    def save_checkpoint(self) -> None:
        counts = self.monitor.counts()
        _write_json(
            self.checkpoint_path,
            {
                "version": CHECKPOINT_VERSION,
                "trade_date": self.trade_date.isoformat(),
                "files": [list(f) for f in self.processed],
                "fills": counts.fills,
                "buckets": counts.buckets,
                "data_time": counts.data_time,
                "written_at": datetime.now(UTC),
            },
        )

    def save_records(self, records: list[DeliveryRecord]) -> None:
        frame = records_to_frame(records)
        lake.replace_local(self.deliveries_path, lambda tmp: frame.write_parquet(tmp))

    # -- delivery ----------------------------------------------------------------------------

    def deliver(
        self,
        settings: DeliverySettings,
        senders: dict[str, Sender] | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> int:
        """Deliver the alerts with a delivery due (`monitor.delivery.deliver`: a routed channel
        without a final record, past its back-off), persisting the records after every attempt;
        returns the attempts made (0, and nothing written, when none was due)."""
        now = clock or (lambda: datetime.now(UTC))
        by_key = {r.key: r for r in self.records}
        attempts = 0

        def persist(record: DeliveryRecord) -> None:
            nonlocal attempts
            attempts += 1
            by_key[record.key] = record
            self.records = list(by_key.values())
            self.save_records(self.records)

        kwargs: dict[str, Any] = {"senders": senders, "clock": now, "on_record": persist}
        if sleep is not None:
            kwargs["sleep"] = sleep
        records = deliver(list(self.alerts.values()), self.records, settings, **kwargs)
        if attempts:
            self.records = records
            self.save_records(self.records)
        return attempts

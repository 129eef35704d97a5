"""Tiny landing directories for the ingestion tests: one good partition and writers per format."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.settings import IngestSettings
from eqs_pipeline.ingest import IngestResult, read_table, validate_instruments, validate_partition
from eqs_pipeline.ingest.rules import PARTITION_TABLES

DAY = date(2024, 1, 2)
Row = dict[str, Any]


def at(hh: int, mm: int, ss: float = 0.0) -> datetime:
    """An instant on DAY, UTC."""
    return datetime(2024, 1, 2, hh, mm, tzinfo=UTC) + timedelta(seconds=ss)


def good_rows() -> dict[str, list[Row]]:
    """A consistent day: two orders, their children and fills, quotes before every fill, tape."""
    return {
        "instruments": [
            {"symbol": "AAPL", "currency": "USD", "tick_size": 0.01, "adv_shares": 5e7},
            {"symbol": "MSFT", "currency": "USD", "tick_size": 0.01, "adv_shares": 2e7},
        ],
        "orders": [
            {
                "order_id": "O1", "symbol": "AAPL", "side": "BUY", "order_qty": 1000.0,
                "order_type": "LIMIT", "limit_price": 190.5, "arrival_ts": at(14, 30),
                "end_ts": at(15, 0), "algo": "VWAP", "urgency": "HIGH", "broker": "BRK1",
            },
            {
                "order_id": "O2", "symbol": "MSFT", "side": "SELL_SHORT", "order_qty": 500.0,
                "order_type": "MARKET", "limit_price": None, "arrival_ts": at(14, 31),
                "end_ts": None, "algo": "TWAP", "urgency": None, "broker": "BRK2",
            },
        ],
        "child_orders": [
            {
                "child_id": "C1", "order_id": "O1", "venue": "XNAS", "sent_ts": at(14, 30, 1),
                "qty": 600.0, "order_type": "LIMIT", "limit_price": 190.5, "tif": "IOC",
            },
            {
                "child_id": "C2", "order_id": "O2", "venue": "ARCX", "sent_ts": at(14, 31, 1),
                "qty": 500.0, "order_type": "MIDPEG", "limit_price": None, "tif": "DAY",
            },
        ],
        "executions": [
            {
                "exec_id": "E1", "order_id": "O1", "child_id": "C1", "symbol": "AAPL",
                "venue": "XNAS", "exec_ts": at(14, 30, 2), "qty": 300.0, "price": 190.0,
                "liquidity_flag": "REMOVE", "fee": 0.9,
            },
            {
                "exec_id": "E2", "order_id": "O1", "child_id": None, "symbol": "AAPL",
                "venue": "XNAS", "exec_ts": at(14, 30, 3), "qty": 200.0, "price": 189.95,
                "liquidity_flag": "ADD", "fee": -0.4,
            },
            {
                "exec_id": "E3", "order_id": "O2", "child_id": "C2", "symbol": "MSFT",
                "venue": "ARCX", "exec_ts": at(14, 31, 5), "qty": 500.0, "price": 400.1,
                "liquidity_flag": "MID", "fee": None,
            },
        ],
        "quotes": [
            {"symbol": "AAPL", "ts": at(14, 29, 59), "bid_px": 189.9, "bid_sz": 100.0,
             "ask_px": 190.0, "ask_sz": 200.0},
            {"symbol": "AAPL", "ts": at(14, 30, 2.5), "bid_px": 189.9, "bid_sz": 100.0,
             "ask_px": 189.9, "ask_sz": 200.0},
            {"symbol": "MSFT", "ts": at(14, 31), "bid_px": 400.0, "bid_sz": 300.0,
             "ask_px": 400.2, "ask_sz": 100.0},
        ],
        "market_trades": [
            {"symbol": "AAPL", "ts": at(14, 30, 2), "price": 190.0, "size": 300.0, "venue": "XNAS"},
            {"symbol": "MSFT", "ts": at(14, 31, 5), "price": 400.1, "size": 500.0, "venue": None},
        ],
    }  # fmt: skip


def folder(landing: Path, table: str, day: date | None = DAY) -> Path:
    path = landing / table if not CONTRACT[table].dated else landing / table / f"date={day}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def write_csv(path: Path, rows: list[Row]) -> Path:
    """Rows as CSV; None is an empty field, datetimes ISO-8601 with offset."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([_text(row.get(c)) for c in columns] for row in rows)
    return path


def write_jsonl(path: Path, rows: list[Row]) -> Path:
    path.write_text("".join(json.dumps(row, default=_text) + "\n" for row in rows))
    return path


def write_parquet(path: Path, rows: list[Row]) -> Path:
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(path)
    return path


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}


def land(
    landing: Path, table: str, rows: list[Row], fmt: str, name: str = "part", day: date = DAY
) -> Path:
    """Write `rows` as one file of `table` for `day` in format `fmt`; returns the file."""
    return WRITERS[fmt](folder(landing, table, day) / f"{name}.{fmt}", rows)


def land_day(landing: Path, rows: dict[str, list[Row]] | None = None) -> Path:
    """Land a whole day, each table in a different format (instruments too)."""
    rows = good_rows() if rows is None else rows
    formats = {
        "instruments": "csv", "orders": "csv", "child_orders": "jsonl",
        "executions": "parquet", "quotes": "parquet", "market_trades": "jsonl",
    }  # fmt: skip
    for table, table_rows in rows.items():
        land(landing, table, table_rows, formats[table])
    return landing


def extra_row(table: str) -> Row:
    """A good extra row for each table, which the cases below break one way or another."""
    base = good_rows()
    return {
        "orders": {**base["orders"][1], "order_id": "O3"},
        "child_orders": {**base["child_orders"][1], "child_id": "C3"},
        "executions": {
            **base["executions"][0], "exec_id": "E4", "exec_ts": at(14, 30, 4), "qty": 100.0
        },
        "quotes": {**base["quotes"][0], "ts": at(14, 35), "bid_px": 189.0, "ask_px": 190.0},
        "market_trades": {**base["market_trades"][0], "ts": at(14, 35)},
    }[table]  # fmt: skip


def ingest_day(
    landing: Path,
    rows: dict[str, list[Row]] | None = None,
    with_instruments: bool = True,
    settings: IngestSettings = IngestSettings(),  # noqa: B008
) -> IngestResult:
    land_day(landing, rows)
    return ingest_landed(landing, with_instruments, settings)


def ingest_landed(
    landing: Path,
    with_instruments: bool = True,
    settings: IngestSettings = IngestSettings(),  # noqa: B008
) -> IngestResult:
    instruments = validate_instruments(read_table(landing, "instruments", None), landing=landing)
    raw = {t: read_table(landing, t, DAY) for t in PARTITION_TABLES}
    staged_instruments = instruments.staged["instruments"] if with_instruments else None
    return validate_partition(raw, DAY, staged_instruments, settings, landing=landing)

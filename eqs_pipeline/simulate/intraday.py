"""The simulator's intraday mode: a simulated day cut into micro-batches of data time, written
into an intraday drop folder as the desk's systems would land them during the session
(docs/INGESTION.md, "Intraday drop folder"; `eqs monitor` follows it).

    cfg = intraday_test_bed(baseline_days=5, venue="LTB", onset_minute=120)
    _, days = iter_days(cfg)                      # the last day degrades from minute 120
    for batch in batches(day, batch_s=60):        # minute by minute
        write_batch(drop, day.trade_date, batch)

Each row lands in the batch of the moment it happened: an order when it arrives
(`arrival_ts`), a child order when it is sent (`sent_ts`), an execution at `exec_ts`, a quote
and a print at `ts`. A row before the open lands with the first batch and one after the close
with the last. Files are written under a hidden name and renamed, so a reader never sees half
of one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import polars as pl

from eqs_pipeline.storage import lake

from .config import Degradation, SimulationConfig
from .curves import SESSION_S
from .engine import SimulatedDay, session_open_us, trading_dates

# table -> the column whose time decides its batch.
BATCH_TIME: dict[str, str] = {
    "orders": "arrival_ts",
    "child_orders": "sent_ts",
    "executions": "exec_ts",
    "quotes": "ts",
    "market_trades": "ts",
}
# The order a batch's tables are written in: what a fill refers to lands before it.
WRITE_ORDER: tuple[str, ...] = ("orders", "child_orders", "quotes", "market_trades", "executions")


@dataclass(frozen=True)
class Batch:
    """One micro-batch: its index (data time [index x batch_s, (index + 1) x batch_s) after
    the open) and each table's rows of that span."""

    index: int
    batch_s: int
    tables: dict[str, pl.DataFrame]

    @property
    def name(self) -> str:
        """The batch's file name: its start after the open as HHMMSS, sortable."""
        s = self.index * self.batch_s
        return f"batch-{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}.parquet"


def batches(day: SimulatedDay, batch_s: int = 60, timezone: str = "America/New_York"):
    """The day's rows as consecutive micro-batches of `batch_s` seconds of data time (every
    batch of the session, empty tables included), each row in exactly one batch."""
    if batch_s < 1:
        raise ValueError(f"batch_s must be >= 1, not {batch_s}")
    open_us = session_open_us(day.trade_date, timezone)
    last = int(SESSION_S // batch_s) - (1 if SESSION_S % batch_s == 0 else 0)
    indexed = {}
    for table, column in BATCH_TIME.items():
        frame = day.tables[table]
        k = ((pl.col(column).dt.epoch("us") - open_us) // (batch_s * 1_000_000)).clip(0, last)
        indexed[table] = frame.with_columns(_batch=k.fill_null(0).cast(pl.Int64))
    parts = {t: dict(f.partition_by("_batch", as_dict=True)) for t, f in indexed.items()}

    def gen() -> Iterator[Batch]:
        for i in range(last + 1):
            tables = {
                t: parts[t][(i,)].drop("_batch") if (i,) in parts[t] else day.tables[t].clear()
                for t in BATCH_TIME
            }
            yield Batch(i, batch_s, tables)

    return gen()


def write_batch(drop: str | Path, trade_date: date, batch: Batch) -> list[Path]:
    """Write a batch into `<drop>/<table>/date=YYYY-MM-DD/<batch name>` (empty tables too, so
    the reader sees time pass), each file atomically; returns the paths in write order."""
    out = []
    for table in WRITE_ORDER:
        target = Path(drop) / table / f"date={trade_date.isoformat()}" / batch.name
        frame = batch.tables[table]
        lake.replace_local(target, frame.write_parquet)
        out.append(target)
    return out


def write_session(
    drop: str | Path, day: SimulatedDay, batch_s: int = 60, until_s: float | None = None
) -> int:
    """Write a whole session (or its first `until_s` seconds) into the drop folder at once;
    returns the batches written."""
    n = 0
    for batch in batches(day, batch_s):
        if until_s is not None and batch.index * batch_s >= until_s:
            break
        write_batch(drop, day.trade_date, batch)
        n += 1
    return n


def intraday_test_bed(
    baseline_days: int = 5,
    venue: str | None = "LTB",
    onset_minute: float = 120.0,
    seed: int = 3,
    symbols: int = 20,
    orders_per_day: int = 750,
    start_date: date = date(2026, 11, 2),
    ticks: float = 1.0,
    kappa_bps: float = 10.0,
) -> SimulationConfig:
    """The intraday monitor's test bed: the dark-lit desk at about 100 fills a minute (20
    symbols, 750 orders a day), `baseline_days` ordinary dates and then a session on which
    `venue` fills `ticks` worse and turns toxic from `onset_minute` minutes after the open
    (no degradation with venue None: a stable session)."""
    cfg = SimulationConfig(
        days=baseline_days + 1,
        symbols=symbols,
        orders_per_day=orders_per_day,
        seed=seed,
        start_date=start_date,
        routing="dark-lit",
    )
    if venue is None:
        return cfg
    session = trading_dates(start_date, baseline_days + 1)[-1]
    return replace(
        cfg,
        degradation=Degradation(venue, session, onset_minute * 60.0, ticks, kappa_bps),
    )

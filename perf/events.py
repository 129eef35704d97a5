"""The event path: per-event latency of `score_fill`, and 10k-fill micro-batches end to end."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl

from perf.datasets import staged, trade_dates

EVENTS = 100_000
BATCH = 10_000


def _pct(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max()), "n": int(a.size)}  # fmt: skip


def run_events(folder: Path) -> dict:
    from eqs_pipeline.quality.asof import prepare_quotes, prepare_trades
    from eqs_pipeline.quality.fills import fill_quality
    from eqs_pipeline.quality.orders import order_quality
    from eqs_pipeline.quality.stream import QuoteBook, TradeExecutedEvent, score_fill

    day = [trade_dates(folder)[0]]
    ex, q, o, t = (
        staged(folder, table, day).collect()
        for table in ("executions", "quotes", "orders", "market_trades")
    )
    instruments = staged(folder, "instruments").collect()
    # Quote state of the session in memory (a replay: the whole day's NBBO is known).
    book = QuoteBook(day[0]).load(
        q.select("symbol", "ts", "bid_px", "ask_px", "bid_sz", "ask_sz").iter_rows()
    )
    book.close()
    names = list(TradeExecutedEvent.__dataclass_fields__)
    fills = ex.join(o.select("order_id", "side"), on="order_id").sort("exec_ts")
    events = [
        TradeExecutedEvent(**row)
        for row in fills.head(EVENTS)
        .select([n for n in names if n in fills.columns])
        .iter_rows(named=True)
    ]
    latencies = []
    for event in events:
        start = time.perf_counter_ns()
        score_fill(event, book)
        latencies.append((time.perf_counter_ns() - start) / 1e6)

    qbook, tbook = prepare_quotes(q), prepare_trades(t)
    batches = []
    for offset in range(0, fills.height, BATCH):
        start = time.perf_counter()
        batch = ex.slice(offset, BATCH)
        ids = batch["order_id"].unique()
        orders = o.filter(pl.col("order_id").is_in(ids.implode()))
        fq = fill_quality(batch, q, orders, prepared_quotes=qbook).collect()
        order_quality(
            orders, fq, q, t, instruments, prepared_quotes=qbook, prepared_trades=tbook
        ).collect()
        batches.append(time.perf_counter() - start)
    return {
        "fills": len(events),
        "event_ms": _pct(latencies),
        "batch_s": _pct(batches),
        "batch_size": BATCH,
        "day_fills": ex.height,
        "day_quotes": q.height,
    }

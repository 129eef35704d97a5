"""Small builders of staged contract frames for the metric tests.

Rows are plain dicts; a builder fills the optional contract columns with null, coerces every
column to its contract dtype and adds `trade_date`, exactly as staging hands them to the metric
engine. Times are given as seconds after `T0` (a Monday, 14:30 UTC) so that the hand-computed
examples read as "t=10" rather than as timestamps.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality

DAY = dt.date(2024, 3, 4)
T0 = dt.datetime(2024, 3, 4, 14, 30, tzinfo=dt.UTC)
SYM = "XYZ"


def at(seconds: float, day: dt.date = DAY) -> dt.datetime:
    """The instant `seconds` after 14:30 UTC of `day` (microsecond resolution)."""
    base = dt.datetime(day.year, day.month, day.day, 14, 30, tzinfo=dt.UTC)
    return base + dt.timedelta(microseconds=round(seconds * 1_000_000))


def staged(table: str, rows: list[dict[str, Any]]) -> pl.LazyFrame:
    """A staged table: contract columns with contract dtypes, plus trade_date (dated tables)."""
    contract = CONTRACT[table]
    schema: dict[str, pl.DataType] = dict(contract.polars_schema)
    if contract.dated:
        schema["trade_date"] = pl.Date()
    data = {
        name: [r.get(name, DAY if name == "trade_date" else None) for r in rows] for name in schema
    }
    return pl.DataFrame(data, schema=schema).lazy()


def quote(t: float, bid: float, ask: float, symbol: str = SYM, **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "ts": at(t), "bid_px": bid, "ask_px": ask, "bid_sz": 100.0,
            "ask_sz": 200.0, **extra}  # fmt: skip


def trade(t: float, price: float, size: float, symbol: str = SYM) -> dict[str, Any]:
    return {"symbol": symbol, "ts": at(t), "price": price, "size": size, "venue": "XNYS"}


def order(
    order_id: str,
    side: str,
    qty: float,
    arrival: float,
    end: float | None = None,
    symbol: str = SYM,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "symbol": symbol,
        "side": side,
        "order_qty": qty,
        "order_type": "MARKET",
        "arrival_ts": at(arrival),
        "end_ts": None if end is None else at(end),
        "algo": "VWAP",
        "urgency": "MEDIUM",
        "broker": "BRK1",
        "trader": "T1",
        "account": "ACC1",
        **extra,
    }


def fill(
    exec_id: str,
    order_id: str,
    t: float,
    qty: float,
    price: float,
    flag: str = "REMOVE",
    fee: float | None = None,
    venue: str = "XNAS",
    symbol: str = SYM,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "exec_id": exec_id,
        "order_id": order_id,
        "child_id": f"c-{exec_id}",
        "symbol": symbol,
        "venue": venue,
        "exec_ts": at(t),
        "qty": qty,
        "price": price,
        "liquidity_flag": flag,
        "fee": fee,
        **extra,
    }


def instrument(symbol: str = SYM, adv: float = 1_000_000.0, vol: float | None = 0.02) -> dict:
    return {"symbol": symbol, "currency": "USD", "tick_size": 0.01, "adv_shares": adv,
            "market": "US", "daily_volatility": vol}  # fmt: skip


def run_fills(
    fills: list[dict],
    quotes: list[dict],
    orders: list[dict],
    settings: QualitySettings | None = None,
) -> pl.DataFrame:
    """fill_quality collected; rows keyed by exec_id order."""
    return (
        fill_quality(staged("executions", fills), staged("quotes", quotes), staged("orders", orders), settings)
        .collect()
        .sort("exec_id")
    )  # fmt: skip


def run_orders(
    orders: list[dict],
    fills: list[dict],
    quotes: list[dict],
    trades: list[dict],
    instruments: list[dict] | None = None,
    settings: QualitySettings | None = None,
) -> pl.DataFrame:
    """fill_quality then order_quality, collected and sorted by order_id."""
    if instruments is None:
        instruments = [instrument(s) for s in sorted({o["symbol"] for o in orders})]
    fq = fill_quality(
        staged("executions", fills), staged("quotes", quotes), staged("orders", orders), settings
    )
    return (
        order_quality(
            staged("orders", orders),
            fq,
            staged("quotes", quotes),
            staged("market_trades", trades),
            staged("instruments", instruments),
            settings,
        )
        .collect()
        .sort("order_id")
    )


def row(df: pl.DataFrame, key: str, value: str) -> dict[str, Any]:
    """The one row of `df` whose `key` column equals `value`, as a dict."""
    rows = df.filter(pl.col(key) == value).to_dicts()
    assert len(rows) == 1, f"expected one row with {key}={value!r}, got {len(rows)}"
    return rows[0]

"""Randomized comparison of the engine with the independent reference (`reference.py`).

Each seed builds a small random day: a few symbols, irregular quotes with duplicate timestamps
landed in shuffled order (sometimes locked), orders of every side arriving before, at and after
quotes, with and without end_ts (zero-length intervals included), fills on quote instants,
over- and under-filled orders, a tape with duplicate and boundary timestamps (sometimes none),
and instruments with missing volatility or missing altogether. Every fill_quality and
order_quality column the reference computes must agree to 1e-9 relative, nulls in the same
places, NaN nowhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from typing import Any

import polars as pl
import pytest

from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline_tests.quality.conftest import DAY, instrument, staged
from eqs_pipeline_tests.quality.conftest import at as at_on
from eqs_pipeline_tests.quality.reference import mismatches, ref_fill_quality, ref_order_quality

SEEDS = range(60)
SIDES = ("BUY", "SELL", "SELL_SHORT")
FLAGS = ("ADD", "REMOVE", "MID", "AUCTION")


def random_day(seed: int, day: dt.date = DAY) -> dict[str, list[dict[str, Any]]]:
    """One trade date of random staged rows (ids carry the seed and the date)."""
    rng = random.Random(seed)

    def at(seconds: float) -> dt.datetime:
        return at_on(seconds, day)

    symbols = ["AAA", "BBB", "CCC"][: rng.randint(1, 3)]
    quotes: list[dict] = []
    trades: list[dict] = []
    orders: list[dict] = []
    execs: list[dict] = []
    for sym in symbols:
        base = rng.choice([9.5, 20.0, 101.0, 250.0])
        n = rng.randint(1, 25)
        times = sorted(
            rng.choice([rng.randint(0, 400), rng.randint(0, 400) + 0.25]) for _ in range(n)
        )
        mid_ticks = 0
        for t in times:
            mid_ticks += rng.randint(-3, 3)
            half = rng.choice([0, 1, 1, 2, 3])
            bid = round(base + (mid_ticks - half) * 0.01, 2)
            ask = round(base + (mid_ticks + half) * 0.01, 2)
            quotes.append({"symbol": sym, "ts": at(t), "bid_px": bid, "ask_px": ask,
                           "bid_sz": float(rng.randint(1, 9) * 100),
                           "ask_sz": float(rng.randint(1, 9) * 100), "trade_date": day})  # fmt: skip
        quote_times = sorted({q["ts"] for q in quotes if q["symbol"] == sym})
        first_t = min(times)

        def a_time(lo: float, hi: float, rng=rng, quote_times=quote_times) -> float:
            """A random instant in [lo, hi], often one with a quote on it."""
            on_quote = [(q - at(0)).total_seconds() for q in quote_times]
            on_quote = [x for x in on_quote if lo <= x <= hi]
            if on_quote and rng.random() < 0.4:
                return rng.choice(on_quote)
            return round(rng.uniform(lo, hi), rng.choice([0, 0, 3, 6]))

        for k in range(rng.randint(1, 4)):
            oid = f"{sym}-{day:%d}-{seed}-{k}"
            side = rng.choice(SIDES)
            size = float(rng.randint(1, 20) * 100)
            arrival = rng.choice([a_time(first_t - 30, 380)] * 8 + [first_t - 5, first_t])
            end = (
                None
                if rng.random() < 0.4
                else arrival + rng.choice([0, round(rng.uniform(0, 250), 3)])
            )
            orders.append({"order_id": oid, "symbol": sym, "side": side, "order_qty": size,
                           "order_type": "MARKET", "arrival_ts": at(arrival),
                           "end_ts": None if end is None else at(end), "algo": "VWAP",
                           "broker": "B1", "trade_date": day})  # fmt: skip
            n_fills = rng.choice([0, 1, 2, 3, 5])
            last = end if end is not None else arrival + 250
            for j in range(n_fills):
                t = a_time(arrival, last) if rng.random() < 0.85 else arrival
                qty = float(rng.randint(1, 8) * 100 * rng.choice([1, 1, 0.5]))
                ref = rng.choice(quotes_for(quotes, sym)) if rng.random() < 0.7 else None
                px = (
                    round(base + rng.randint(-6, 6) * 0.01, 2)
                    if ref is None
                    else rng.choice([ref["bid_px"], ref["ask_px"],
                                     round((ref["bid_px"] + ref["ask_px"]) / 2, 3),
                                     round(ref["ask_px"] + 0.01, 2)])
                )  # fmt: skip
                execs.append({"exec_id": f"{oid}-f{j}", "order_id": oid, "child_id": None,
                              "symbol": sym, "venue": rng.choice(["XNAS", "ARCX", "BATS"]),
                              "exec_ts": at(t), "qty": qty, "price": px,
                              "liquidity_flag": rng.choice(FLAGS),
                              "fee": rng.choice([None, 0.0, round(qty * 0.003, 4), -0.5]),
                              "trade_date": day})  # fmt: skip
                if rng.random() < 0.6:
                    trades.append(
                        {"symbol": sym, "ts": at(t), "price": px, "size": qty, "trade_date": day}
                    )
            for t in [arrival, end]:
                if t is not None and rng.random() < 0.5:
                    trades.append({"symbol": sym, "ts": at(t), "price": round(base, 2),
                                   "size": float(rng.randint(1, 5) * 100), "trade_date": day})  # fmt: skip
        if rng.random() < 0.85:
            for _ in range(rng.randint(0, 20)):
                t = rng.choice([rng.randint(-10, 420), rng.randint(0, 40)])
                trades.append({"symbol": sym, "ts": at(t),
                               "price": round(base + rng.randint(-5, 5) * 0.01, 2),
                               "size": float(rng.randint(1, 30) * 10), "trade_date": day})  # fmt: skip
    rng.shuffle(quotes)  # landing order: ties are broken by it, nothing else may depend on it
    rng.shuffle(trades)
    rng.shuffle(orders)
    rng.shuffle(execs)
    instruments = [
        instrument(
            sym, adv=float(rng.randint(1, 50) * 100_000), vol=rng.choice([None, 0.015, 0.03])
        )
        for sym in symbols
        if rng.random() < 0.9
    ]
    return {"quotes": quotes, "market_trades": trades, "orders": orders,
            "executions": execs, "instruments": instruments}  # fmt: skip


def random_days(seed: int) -> dict[str, list[dict[str, Any]]]:
    """One trade date, or (every third seed) two consecutive ones in one call, interleaved:
    quotes and tape of a date must serve that date's rows only."""
    first = random_day(seed)
    if seed % 3:
        return first
    second = random_day(seed + 10_000, DAY + dt.timedelta(days=1))
    merged = {k: first[k] + second[k] for k in first if k != "instruments"}
    rng = random.Random(-seed)
    for rows in merged.values():
        rng.shuffle(rows)
    merged["instruments"] = first["instruments"]
    return merged


def quotes_for(quotes: list[dict], sym: str) -> list[dict]:
    return [q for q in quotes if q["symbol"] == sym]


def _engine(day: dict, settings: QualitySettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    fq = fill_quality(
        staged("executions", day["executions"]),
        staged("quotes", day["quotes"]),
        staged("orders", day["orders"]),
        settings,
    )
    oq = order_quality(
        staged("orders", day["orders"]),
        fq,
        staged("quotes", day["quotes"]),
        staged("market_trades", day["market_trades"]),
        staged("instruments", day["instruments"]),
        settings,
    )
    return fq.collect(), oq.collect()


def _mismatches(expected: dict[str, dict], got: pl.DataFrame, key: str) -> list[tuple]:
    return mismatches(expected, got.to_dicts(), key)


@functools.cache
def _seeded(seed: int) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """The random day of a seed and the engine's fill and order quality of it (computed once
    for both tests below; read-only)."""
    day = random_days(seed)
    return day, *_engine(day, QualitySettings())


@pytest.mark.parametrize("seed", SEEDS)
def test_random_day_matches_reference(seed: int) -> None:
    day, fq, oq = _seeded(seed)
    settings = QualitySettings()
    assert fq.height == len(day["executions"])
    assert oq.height == len(day["orders"])
    exp_f = ref_fill_quality(day["executions"], day["quotes"], day["orders"], settings)
    exp_o = ref_order_quality(
        day["orders"], day["executions"], day["quotes"], day["market_trades"],
        day["instruments"], settings,
    )  # fmt: skip
    bad = _mismatches(exp_f, fq, "exec_id") + _mismatches(exp_o, oq, "order_id")
    assert not bad, "\n".join(f"{k} {c}: expected {v!r}, got {g!r}" for k, c, v, g in bad[:20])


def test_random_days_cover_the_edge_cases() -> None:
    """The generator reaches what it is meant to reach (else the comparison proves little)."""
    seen: dict[str, int] = {}

    def note(name: str, cond: bool) -> None:
        seen[name] = seen.get(name, 0) + int(cond)

    for seed in SEEDS:
        day, fq, oq = _seeded(seed)
        note("no_prior_quote", fq["null_reason"].is_not_null().any())
        note("locked", fq["spread_capture"].is_null().sum() > fq["mid"].is_null().sum())
        note("outside", (fq["quote_position"] == "outside").any())
        note("at_quote", (fq["quote_position"] == "at_quote").any())
        note("no_arrival", oq["arrival_mid"].is_null().any())
        note(
            "fills_all_unquoted",
            ((oq["fill_count"] > 0) & oq["effective_spread_bps"].fill_nan(None).is_null()).any(),
        )
        note("no_tape", oq["null_reason"].str.contains("no_tape").any())
        note("zero_duration", (oq["duration_s"] == 0).any())
        note("overfilled", (oq["fill_rate"] > 1).any())
        note("partial", (oq["status"] == "partial").any())
        note("unfilled_end", ((oq["status"] == "unfilled") & oq["end_ts"].is_not_null()).any())
        note("unfilled_no_end", ((oq["status"] == "unfilled") & oq["end_ts"].is_null()).any())
        note("unknown_instrument", oq["adv_shares"].is_null().any())
        note("sell_short", (oq["side"] == "SELL_SHORT").any())
        note("two_dates", oq["trade_date"].n_unique() > 1)
        ts = pl.DataFrame(day["quotes"]).group_by("symbol", "ts").len()
        note("dup_quotes", (ts["len"] > 1).any())
    missing = [k for k, v in seen.items() if v == 0]
    assert not missing, f"never generated: {missing}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_session_matches_reference(seed: int) -> None:
    """A full 6.5-hour session with ~1,500 quote changes per symbol and orders spanning hours:
    the TWAP of long intervals (the cumulative-integral path, beyond the quote-by-quote one)
    and every other metric still agree with the reference to 1e-9."""
    rng = random.Random(seed)
    quotes, trades, orders, execs = [], [], [], []
    t, mid = 0.0, 5000
    while t < 23_400:
        t = round(t + rng.choice([0.0, 0.5, rng.uniform(0, 30)]), 3)
        mid += rng.randint(-2, 2)
        half = rng.randint(1, 3)
        quotes.append({"symbol": "LNG", "ts": at_on(t), "bid_px": (mid - half) / 100,
                       "ask_px": (mid + half) / 100, "bid_sz": 100.0, "ask_sz": 100.0,
                       "trade_date": DAY})  # fmt: skip
        if rng.random() < 0.3:
            trades.append({"symbol": "LNG", "ts": at_on(t), "price": mid / 100,
                           "size": float(rng.randint(1, 9) * 100), "trade_date": DAY})  # fmt: skip
    for k in range(8):
        arrival = round(rng.uniform(0, 10_000), 3)
        end = round(arrival + rng.uniform(3_000, 13_000), 3) if k % 2 else None
        oid = f"L{k}"
        orders.append({"order_id": oid, "symbol": "LNG", "side": rng.choice(["BUY", "SELL"]),
                       "order_qty": 10_000.0, "order_type": "MARKET", "arrival_ts": at_on(arrival),
                       "end_ts": None if end is None else at_on(end), "algo": "TWAP",
                       "broker": "B1", "trade_date": DAY})  # fmt: skip
        for j in range(6):
            ts = round(arrival + rng.uniform(0, (end or arrival + 12_000) - arrival), 3)
            execs.append({"exec_id": f"{oid}-{j}", "order_id": oid, "symbol": "LNG",
                          "venue": "XNAS", "exec_ts": at_on(ts), "qty": 1000.0,
                          "price": rng.randint(4900, 5100) / 100, "liquidity_flag": "REMOVE",
                          "fee": 1.0, "trade_date": DAY})  # fmt: skip
    day = {"quotes": quotes, "market_trades": trades, "orders": orders, "executions": execs,
           "instruments": [instrument("LNG")]}  # fmt: skip
    settings = QualitySettings()
    fq, oq = _engine(day, settings)
    exp_f = ref_fill_quality(execs, quotes, orders, settings)
    exp_o = ref_order_quality(orders, execs, quotes, trades, day["instruments"], settings)
    bad = _mismatches(exp_f, fq, "exec_id") + _mismatches(exp_o, oq, "order_id")
    assert not bad, "\n".join(f"{k} {c}: expected {v!r}, got {g!r}" for k, c, v, g in bad[:20])
    widest = max(
        sum(r["arrival_ts"] < q["ts"] <= r["order_end_ts"] for q in quotes)
        for r in oq.to_dicts()
        if r["order_end_ts"] is not None
    )
    assert widest > 1000, widest

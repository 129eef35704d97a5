"""The event path scores a fill exactly as the batch path does (same formulas, same quotes)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import polars as pl
import pytest

from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.stream import QuoteBook, TradeExecutedEvent, score_fill
from eqs_pipeline_tests.quality.conftest import DAY, at, fill, order, quote, staged


def _events(fills: pl.DataFrame) -> list[TradeExecutedEvent]:
    names = TradeExecutedEvent.__dataclass_fields__
    return [
        TradeExecutedEvent(**{k: v for k, v in r.items() if k in names}) for r in fills.to_dicts()
    ]


def test_event_path_matches_batch_on_a_simulated_day():
    from eqs_pipeline.simulate import SimulationConfig, simulate
    from eqs_pipeline_tests.quality.test_performance_equivalence import _staged

    data = simulate(SimulationConfig(days=1, symbols=10, orders_per_day=150, seed=5))
    ex, q, o = (_staged(data, t).collect() for t in ("executions", "quotes", "orders"))
    batch = fill_quality(ex, q, o).collect()
    book = QuoteBook(q["trade_date"][0]).load(
        q.select("symbol", "ts", "bid_px", "ask_px", "bid_sz", "ask_sz").iter_rows()
    )
    book.close()  # a replay: the session's quotes are all in, every horizon is settled
    fills = ex.join(o.select("order_id", "side"), on="order_id")
    scored = {e.exec_id: score_fill(e, book) for e in _events(fills)}
    assert len(scored) == batch.height > 1000
    compared = 0
    for row in batch.iter_rows(named=True):
        event = scored[row["exec_id"]]
        for name, expected in row.items():
            if name not in event:
                continue
            got = event[name]
            if isinstance(expected, float) and got is not None:
                assert math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9), name
            else:
                assert got == expected, (row["exec_id"], name, expected, got)
            compared += 1
    assert compared > 30 * batch.height


def _event(t: float = 10.0, **changes) -> TradeExecutedEvent:
    ex = staged("executions", [fill("E1", "O1", t, 100, 10.02)]).collect()
    event = _events(ex.with_columns(side=pl.lit("BUY")))[0]
    return dataclasses.replace(event, **changes)


def _book(quotes: list[dict], trade_date: dt.date = DAY) -> QuoteBook:
    book = QuoteBook(trade_date)
    for q in quotes:
        book.on_quote(q["symbol"], q["ts"], q["bid_px"], q["ask_px"], q["bid_sz"], q["ask_sz"])
    return book


def test_pending_horizons_and_no_prior_quote():
    book = QuoteBook(DAY)
    event = _event()
    early = score_fill(event, book)
    assert early["mid"] is None and early["null_reason"] == "no_prior_quote"
    for q in [quote(5.0, 10.00, 10.04), quote(12.0, 10.02, 10.06)]:
        book.on_quote(q["symbol"], q["ts"], q["bid_px"], q["ask_px"], q["bid_sz"], q["ask_sz"])
    scored = score_fill(event, book)
    assert scored["mid"] == 10.02 and scored["effective_spread_bps"] == 0.0
    assert scored["mid_1s"] == 10.02  # t + 1 = 11: still the quote of t = 5
    assert scored["markout_1s_bps"] is not None
    assert scored["pending_horizons"] == [5, 15, 60, 300]
    # Unsettled horizons are null, not the latest quote so far: a quote at t = 14 changes t + 5.
    assert scored["mid_5s"] is None and scored["markout_5s_bps"] is None
    assert scored["realized_spread_5s_bps"] is None and scored["price_impact_5s_bps"] is None
    assert scored["quote_ts"] == at(5.0)
    assert staged("orders", [order("O1", "BUY", 100, 0.0)]).collect().height == 1
    assert scored["exec_ts"] - at(10.0) == dt.timedelta(0)


def test_a_later_quote_or_the_close_settles_a_horizon():
    book = _book([quote(5.0, 10.00, 10.04), quote(14.0, 10.20, 10.24)])
    scored = score_fill(_event(), book)
    assert scored["pending_horizons"] == [5, 15, 60, 300]
    book.on_quote("XYZ", at(16.0), 10.30, 10.34)
    scored = score_fill(_event(), book)
    assert scored["pending_horizons"] == [15, 60, 300]
    assert math.isclose(
        scored["mid_5s"], 10.22
    )  # the quote of t = 14, the last at or before t + 5 = 15
    book.close()
    closed = score_fill(_event(), book)
    assert closed["pending_horizons"] == []
    assert math.isclose(
        closed["mid_300s"], 10.32
    )  # after the session's last quote: that quote, as in batch
    batch = fill_quality(
        staged("executions", [fill("E1", "O1", 10.0, 100, 10.02)]),
        staged("quotes", [quote(5.0, 10.00, 10.04), quote(14.0, 10.20, 10.24),
                          quote(16.0, 10.30, 10.34)]),
        staged("orders", [order("O1", "BUY", 100, 0.0)]),
    ).collect().row(0, named=True)  # fmt: skip
    for name in ("mid_5s", "mid_15s", "mid_300s", "markout_300s_bps", "realized_spread_60s_bps"):
        assert math.isclose(closed[name], batch[name], rel_tol=1e-12), name


def test_one_book_per_session():
    """A fill before its session's first quote has no prevailing quote (batch: no_prior_quote),
    never the previous session's last; so a book refuses events of another trade date."""
    book = _book([quote(5.0, 10.00, 10.04)])
    with pytest.raises(ValueError, match="trade date 2024-03-05 scored against the quote book"):
        score_fill(_event(trade_date=DAY + dt.timedelta(days=1)), book)


def test_crossed_quotes_are_refused_as_staging_quarantines_them():
    book = _book([quote(5.0, 10.00, 10.04)])
    assert book.on_quote("XYZ", at(8.0), 10.06, 10.02) is False
    assert book.on_quote("XYZ", at(9.0), 10.02, 10.02) is True  # locked: staged, kept
    assert book.refused == 1
    scored = score_fill(_event(), book)
    assert (scored["nbb"], scored["nbo"], scored["quoted_spread_bps"]) == (10.02, 10.02, 0.0)

"""The event path scores a fill exactly as the batch path does (same formulas, same quotes)."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from eqs_pipeline.metrics.fills import fill_quality
from eqs_pipeline.metrics.stream import QuoteBook, TradeExecutedEvent, score_fill
from eqs_pipeline_tests.metrics.conftest import at, fill, order, quote, staged


def _events(fills: pl.DataFrame) -> list[TradeExecutedEvent]:
    names = TradeExecutedEvent.__dataclass_fields__
    return [
        TradeExecutedEvent(**{k: v for k, v in r.items() if k in names}) for r in fills.to_dicts()
    ]


def test_event_path_matches_batch_on_a_simulated_day():
    from eqs_pipeline.simulate import SimulationConfig, simulate
    from eqs_pipeline_tests.metrics.test_performance_equivalence import _staged

    data = simulate(SimulationConfig(days=1, symbols=10, orders_per_day=150, seed=5))
    ex, q, o = (_staged(data, t).collect() for t in ("executions", "quotes", "orders"))
    batch = fill_quality(ex, q, o).collect()
    book = QuoteBook().load(
        q.select("symbol", "ts", "bid_px", "ask_px", "bid_sz", "ask_sz").iter_rows()
    )
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


def test_pending_horizons_and_no_prior_quote():
    book = QuoteBook()
    ex = staged("executions", [fill("E1", "O1", 10.0, 100, 10.02)]).collect()
    event = _events(ex.with_columns(side=pl.lit("BUY")))[0]
    early = score_fill(event, book)
    assert early["mid"] is None and early["null_reason"] == "no_prior_quote"
    for q in [quote(5.0, 10.00, 10.04), quote(12.0, 10.02, 10.06)]:
        book.on_quote(q["symbol"], q["ts"], q["bid_px"], q["ask_px"], q["bid_sz"], q["ask_sz"])
    scored = score_fill(event, book)
    assert scored["mid"] == 10.02 and scored["effective_spread_bps"] == 0.0
    assert scored["mid_1s"] == 10.02  # t + 1 = 11: still the quote of t = 5
    assert scored["pending_horizons"] == [5, 15, 60, 300]
    assert scored["quote_ts"] == at(5.0)
    assert staged("orders", [order("O1", "BUY", 100, 0.0)]).collect().height == 1
    assert scored["exec_ts"] - at(10.0) == dt.timedelta(0)

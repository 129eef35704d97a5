"""The optimized fill and order quality give the numbers of the pre-optimization code.

`baseline` is a frozen copy of the metric engine before the performance work (Polars as-of joins
by string keys). Both run on mid-sized simulated trading days (tens of thousands of fills, two
trade dates in one call, plus a day with the awkward cases added by hand), and every column must
agree: same rows, same nulls, floats to 1e-9 relative or absolute, everything else exactly.
The rows are fed in three landing orders, since the optimized path sorts differently for each:
as simulated (per-symbol blocks), in time order across symbols (a consolidated feed), shuffled.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.quality.asof import prepare_quotes
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import SimulationConfig, simulate
from eqs_pipeline_tests.quality import baseline

TOL = 1e-9


def _staged(data, table: str) -> pl.LazyFrame:
    frame = data.tables[table]
    schema = CONTRACT[table].polars_schema
    return (
        frame.select(*schema, "trade_date")
        .with_columns(pl.col(c).cast(t) for c, t in schema.items())
        .lazy()
    )


@pytest.fixture(scope="module")
def day():
    data = simulate(SimulationConfig(days=2, symbols=40, orders_per_day=600, seed=3))
    tables = {t: _staged(data, t) for t in ("executions", "quotes", "orders", "market_trades")}
    instruments = data.instruments.lazy()
    return tables, instruments


def _awkward(tables):
    """The simulated day plus the edge cases: a fill before any quote of its symbol, a symbol
    without quotes or tape, quotes with equal timestamps, a fill and an arrival at exactly a
    quote's timestamp, an order with no fills and no end."""
    ex, q, o = (tables[t].collect() for t in ("executions", "quotes", "orders"))
    first = q.sort("ts").row(0, named=True)
    sym, date = first["symbol"], first["trade_date"]
    early = first["ts"] - dt.timedelta(seconds=5)
    dup = (
        q.filter(pl.col("symbol") == sym)
        .sort("ts")
        .head(50)
        .with_columns(bid_px=pl.col("bid_px") - 0.01)
    )
    tied = dup["ts"][10]
    orders = pl.concat(
        [
            o,
            o.filter(pl.col("symbol") == sym)
            .head(1)
            .with_columns(order_id=pl.lit("ATQUOTE"), arrival_ts=pl.lit(tied), end_ts=None),
            o.filter(pl.col("symbol") == sym)
            .head(1)
            .with_columns(order_id=pl.lit("EARLY"), arrival_ts=pl.lit(early), end_ts=None),
            o.head(1).with_columns(order_id=pl.lit("NOQUOTES"), symbol=pl.lit("ZZZZ")),
            o.head(1).with_columns(order_id=pl.lit("NOFILLS"), end_ts=None),
        ]
    )
    extra = ex.head(3).with_columns(
        exec_id=pl.Series(["X-EARLY", "X-NOQUOTES", "X-ATQUOTE"]),
        order_id=pl.Series(["EARLY", "NOQUOTES", "ATQUOTE"]),
        symbol=pl.Series([sym, "ZZZZ", sym]),
        exec_ts=pl.Series([early, early, tied + dt.timedelta(seconds=1)]).scatter(2, tied),
        trade_date=pl.lit(date),
    )
    return {
        **tables,
        "executions": pl.concat([ex, extra]).lazy(),
        "quotes": pl.concat([q, dup]).lazy(),
        "orders": orders.lazy(),
    }


def _landed(tables, layout: str):
    """The tables in another landing order (ties on time keep their landing order)."""
    if layout == "blocks":
        return tables
    time_of = {"executions": "exec_ts", "quotes": "ts", "market_trades": "ts"}
    out = dict(tables)
    for table, ts in time_of.items():
        frame = tables[table].collect()
        if layout == "time":
            frame = frame.sort(ts, maintain_order=True)
        else:
            frame = frame.sample(fraction=1.0, shuffle=True, seed=7)
        out[table] = frame.lazy()
    return out


def _assert_same(expected: pl.DataFrame, got: pl.DataFrame, key: str) -> None:
    assert got.columns == expected.columns
    assert got.height == expected.height
    expected, got = expected.sort(key), got.sort(key)
    for name in expected.columns:
        e, g = expected[name], got[name]
        assert (e.is_null() == g.is_null()).all(), f"{name}: nulls differ"
        if e.dtype.is_float():
            both = e.is_not_null()
            pairs = zip(e.filter(both).to_list(), g.filter(both).to_list(), strict=True)
            bad = [(a, b) for a, b in pairs if not math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)]
            assert not bad, f"{name}: {len(bad)} values differ, e.g. {bad[:3]}"
        else:
            assert e.cast(g.dtype).equals(g), f"{name}: values differ"


@pytest.mark.parametrize("layout", ["blocks", "time", "shuffled"])
@pytest.mark.parametrize("edge_cases", [False, True], ids=["simulated", "with-edge-cases"])
def test_optimized_path_matches_pre_optimization_semantics(day, edge_cases, layout):
    tables, instruments = day
    if edge_cases:
        tables = _awkward(tables)
    tables = _landed(tables, layout)
    settings = QualitySettings()
    ex, q, o, t = (tables[n] for n in ("executions", "quotes", "orders", "market_trades"))

    old_fills = baseline.fill_quality(ex, q, o, settings).collect()
    old_orders = baseline.order_quality(o, old_fills.lazy(), q, t, instruments, settings).collect()
    prepared = prepare_quotes(q)
    new_fills = fill_quality(ex, q, o, settings, prepared_quotes=prepared).collect()
    new_orders = order_quality(
        o, new_fills.lazy(), q, t, instruments, settings, prepared_quotes=prepared
    ).collect()

    assert new_fills.height > 10_000
    assert old_orders["interval_twap"].is_not_null().sum() > 100
    _assert_same(old_fills, new_fills, "exec_id")
    _assert_same(old_orders, new_orders, "order_id")
    # Rows come out in the same order as before, too.
    assert new_fills["exec_id"].equals(old_fills["exec_id"])
    assert new_orders["order_id"].equals(old_orders["order_id"])


def test_ids_repeating_across_dates_are_told_apart() -> None:
    """Ids are keys within a trade date only: over two dates whose order ids restart, every
    fill and order gets the figures its own date gives (order quality used to sum both dates'
    fills into each order; fill quality refused the call)."""
    from polars.testing import assert_frame_equal

    from eqs_pipeline.simulate import SimulationConfig, simulate

    data = simulate(SimulationConfig(days=2, symbols=4, orders_per_day=40, seed=9))
    ids = ("exec_id", "order_id", "child_id")

    def day_scoped(frame: pl.DataFrame) -> pl.DataFrame:  # O20261102-000001 -> O-000001
        return frame.with_columns(
            pl.col(c).str.replace(r"^([A-Z])\d{8}-", "${1}-") for c in ids if c in frame.columns
        )

    t = {name: day_scoped(data.tables[name]) for name in data.tables}
    assert t["orders"]["order_id"].n_unique() < t["orders"].height  # they do repeat

    def quality(dates) -> tuple[pl.DataFrame, pl.DataFrame]:
        part = {n: f.filter(pl.col("trade_date").is_in(dates)) for n, f in t.items()}
        fq = fill_quality(part["executions"], part["quotes"], part["orders"]).collect()
        oq = order_quality(
            part["orders"], fq, part["quotes"], part["market_trades"], data.instruments
        ).collect()
        return fq, oq

    both = quality(data.trade_dates)
    alone = [quality([d]) for d in data.trade_dates]
    for i, key in ((0, ["trade_date", "exec_id"]), (1, ["trade_date", "order_id"])):
        expected = pl.concat([a[i] for a in alone]).sort(key)
        assert_frame_equal(both[i].sort(key), expected, rel_tol=1e-9, abs_tol=1e-9)

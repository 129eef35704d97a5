"""The optimized fill and order quality do not depend on how the rows landed, and give the
independent reference's numbers on a simulated desk with awkward rows added by hand.

The optimized path sorts differently for each landing order, and takes shortcuts where rows
arrive sorted: rows fed as a consolidated feed lands them (time order across symbols) and
shuffled must give what the same rows in per-symbol time order give (the only thing landing
order may decide is which of two quotes with the same timestamp prevails: the last landed, so
the comparison keeps their order), every column alike: same rows, same nulls, floats to 1e-9
relative or absolute, everything else exactly, and rows in their documented order. A
simulated desk thinned to a few hundred fills, with the awkward rows, is compared with the
loop-based reference (`reference.py`) column by column. The whole small desk's warehouse is
compared with its golden files in `test_golden.py`.
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
from eqs_pipeline_tests.quality.reference import mismatches, ref_fill_quality, ref_order_quality

TOL = 1e-9
TABLES = ("executions", "quotes", "orders", "market_trades")
TIME_OF = {"executions": "exec_ts", "quotes": "ts", "market_trades": "ts"}
FILL_ORDER = ["trade_date", "symbol", "exec_ts", "exec_id"]  # quality.fill_quality's row order


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
    """Two trade dates of a dozen symbols (about 20k fills and 120k quotes)."""
    data = simulate(SimulationConfig(days=2, symbols=12, orders_per_day=150, seed=3))
    return {t: _staged(data, t) for t in TABLES}, data.instruments.lazy()


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
    out = dict(tables)
    for table, ts in TIME_OF.items():
        frame = tables[table].collect()
        if layout == "time":
            frame = frame.sort(ts, maintain_order=True)
        else:
            frame = frame.sample(fraction=1.0, shuffle=True, seed=7)
        out[table] = frame.lazy()
    return out


def _by_symbol(tables):
    """The same rows in per-symbol blocks in time order; rows with equal times keep the order
    they landed in, so the same quote of two at one instant prevails."""
    out = dict(tables)
    for table, ts in TIME_OF.items():
        out[table] = tables[table].sort("trade_date", "symbol", ts, maintain_order=True)
    return out


def _quality(tables, instruments, settings, *, share_quotes: bool):
    ex, q, o, t = (tables[n] for n in TABLES)
    prepared = prepare_quotes(q) if share_quotes else None
    fills = fill_quality(ex, q, o, settings, prepared_quotes=prepared).collect()
    orders = order_quality(
        o, fills.lazy(), q, t, instruments, settings, prepared_quotes=prepared
    ).collect()
    return fills, orders


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


@pytest.mark.parametrize("layout", ["time", "shuffled"])
@pytest.mark.parametrize("edge_cases", [False, True], ids=["simulated", "with-edge-cases"])
def test_the_landing_order_changes_no_figure(day, edge_cases, layout):
    tables, instruments = day
    if edge_cases:
        tables = _awkward(tables)
    landed = _landed(tables, layout)
    settings = QualitySettings()

    # The quotes prepared once for both, as the quality step does, against each on its own.
    fills, orders = _quality(landed, instruments, settings, share_quotes=True)
    want_fills, want_orders = _quality(
        _by_symbol(landed), instruments, settings, share_quotes=False
    )

    assert fills.height > 10_000
    assert want_orders["interval_twap"].is_not_null().sum() > 50
    if edge_cases:
        assert {"EARLY", "NOQUOTES", "ATQUOTE", "NOFILLS"} <= set(orders["order_id"])
    _assert_same(want_fills, fills, "exec_id")
    _assert_same(want_orders, orders, "order_id")
    # Rows come out in their documented order whatever the landing order.
    assert fills.select(FILL_ORDER).equals(fills.select(FILL_ORDER).sort(FILL_ORDER))
    assert orders["order_id"].equals(orders["order_id"].sort())


def test_a_simulated_desk_with_awkward_rows_matches_the_reference(day) -> None:
    """The desk's first two symbols, every 16th quote and every 10th fill (any subset is a valid
    landing), plus the awkward rows: every column the reference computes agrees to 1e-9."""
    tables, instruments = day
    symbols = tables["orders"].select(pl.col("symbol").unique().sort().head(2)).collect()
    small = {
        name: frame.filter(pl.col("symbol").is_in(symbols["symbol"].implode()))
        for name, frame in tables.items()
    }
    small["quotes"] = small["quotes"].gather_every(16)
    small["executions"] = small["executions"].gather_every(10)
    small = _awkward(small)
    settings = QualitySettings()
    fills, orders = _quality(small, instruments, settings, share_quotes=True)

    rows = {name: frame.collect().to_dicts() for name, frame in small.items()}
    inst = instruments.collect().to_dicts()
    assert 100 < len(rows["executions"]) < 1_000 and len(rows["quotes"]) < 2_000
    exp_f = ref_fill_quality(rows["executions"], rows["quotes"], rows["orders"], settings)
    exp_o = ref_order_quality(
        rows["orders"], rows["executions"], rows["quotes"], rows["market_trades"], inst, settings
    )
    bad = mismatches(exp_f, fills.to_dicts(), "exec_id")
    bad += mismatches(exp_o, orders.to_dicts(), "order_id")
    assert not bad, "\n".join(f"{k} {c}: expected {v!r}, got {g!r}" for k, c, v, g in bad[:20])
    # The awkward rows are there, and unpriced as they must be.
    early = fills.filter(pl.col("exec_id").is_in(["X-EARLY", "X-NOQUOTES"]))
    assert early["null_reason"].to_list() == ["no_prior_quote"] * 2
    assert orders.filter(pl.col("order_id") == "NOQUOTES")["quality_grade"].to_list() == [None]


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

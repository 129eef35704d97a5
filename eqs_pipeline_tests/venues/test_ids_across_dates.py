"""Ids unique per trade date only, over a window of several dates.

Ingestion checks keys and references per trade date (docs/INGESTION.md), so a desk whose ids
restart every day (FIX ClOrdIDs often do) stages fine. Every venue computation that can see
several dates must then tell the same order_id or child_id on two dates apart: the same desk
with day-scoped ids gives the same venue frames, daily figures, scorecard, routing and
`venue.scorecard_from_fills` view as with ids unique across dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eqs_pipeline.defs.venues import window as window_module
from eqs_pipeline.defs.venues.window import WINDOW_CHILD_COLUMNS, WINDOW_FILL_COLUMNS, load_window
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import SimulationConfig, simulate
from eqs_pipeline.storage import warehouse
from eqs_pipeline.venues.daily import venue_daily, venue_daily_buckets
from eqs_pipeline.venues.frames import venue_frames
from eqs_pipeline.venues.routing import delay_inputs, routing_recommendations
from eqs_pipeline.venues.scorecard import venue_scorecard
from eqs_pipeline.venues.settings import VenueSettings

IDS = ("exec_id", "order_id", "child_id")
# The window statistics are equal up to the last bits of their sums (which also differ from one
# run to the next on the same inputs).
CLOSE = {"rel_tol": 1e-9, "abs_tol": 1e-9}


@dataclass
class Inputs:
    fills: pl.DataFrame  # quality.fill_quality
    children: pl.DataFrame  # staging.child_orders
    orders: pl.DataFrame  # quality.order_quality


def _day_scoped(frame: pl.DataFrame) -> pl.DataFrame:
    """The simulator's ids carry their date (O20261102-000001) and count from 0 each day:
    without the date they repeat on every trade date (O-000001)."""
    return frame.with_columns(
        pl.col(c).str.replace(r"^([A-Z])\d{8}-", "${1}-") for c in IDS if c in frame.columns
    )


@pytest.fixture(scope="module")
def desk() -> tuple[Inputs, Inputs, pl.DataFrame, tuple[dt.date, dt.date, int]]:
    """(ids unique across dates, the same with day-scoped ids, tape volume, window)."""
    data = simulate(SimulationConfig(days=2, symbols=6, orders_per_day=150, seed=23))
    t = {k: v.lazy() for k, v in data.tables.items()}
    fq = fill_quality(t["executions"], t["quotes"], t["orders"]).collect()
    oq = order_quality(
        t["orders"], fq.lazy(), t["quotes"], t["market_trades"], data.instruments.lazy()
    ).collect()
    unique = Inputs(fq, data.tables["child_orders"], oq)
    reused = Inputs(*(_day_scoped(f) for f in (fq, data.tables["child_orders"], oq)))
    # Both kinds of id really repeat across the two dates (and only across dates).
    for frame, key in ((reused.orders, "order_id"), (reused.children, "child_id")):
        assert frame[key].n_unique() < frame.height
        assert frame.select("trade_date", key).is_unique().all()
    tape = (
        data.tables["market_trades"]
        .group_by("trade_date", "symbol", "venue")
        .agg(volume=pl.col("size").sum())
    )
    dates = data.trade_dates
    return unique, reused, tape, (dates[0], dates[-1], len(dates))


def _frames(inputs: Inputs, settings: VenueSettings | None = None):
    return venue_frames(inputs.fills, inputs.children, inputs.orders, settings)


@pytest.mark.parametrize("cluster", ["order", "symbol_day"])
def test_venue_frames_equal_with_day_scoped_ids(desk, cluster) -> None:
    unique, reused, _, _ = desk
    settings = VenueSettings(cluster=cluster)
    for u, r in zip(_frames(unique, settings), _frames(reused, settings), strict=True):
        assert u.height == r.height
        assert r["size_bucket"].ne("unknown").all()
        assert_frame_equal(
            u.drop(*IDS, "cluster", strict=False),
            r.drop(*IDS, "cluster", strict=False),
            check_exact=True,
        )
        # The same clusters: one cluster of one labelling is one cluster of the other.
        pairs = pl.DataFrame({"u": u["cluster"], "r": r["cluster"]}).unique()
        assert pairs.height == u["cluster"].n_unique() == r["cluster"].n_unique()
    fills, children = _frames(reused)
    # A cluster per order and date, not per order_id.
    assert fills["cluster"].n_unique() == fills.select("trade_date", "order_id").n_unique()
    assert fills["cluster"].n_unique() > fills["order_id"].n_unique()
    assert children["filled_qty"].sum() == pytest.approx(fills["qty"].sum())


def test_daily_scorecard_and_routing_equal_with_day_scoped_ids(desk) -> None:
    unique, reused, tape, window = desk
    (uf, uc), (rf, rc) = _frames(unique), _frames(reused)
    for build in (venue_daily, venue_daily_buckets):
        assert_frame_equal(build(uf, uc), build(rf, rc))
    u, r = venue_scorecard(uf, uc, window), venue_scorecard(rf, rc, window)
    assert u["clusters"].to_list() == r["clusters"].to_list()
    assert_frame_equal(u, r, **CLOSE)
    assert_frame_equal(
        routing_recommendations(uf, uc, tape, window, delay_inputs(uc, unique.orders)),
        routing_recommendations(rf, rc, tape, window, delay_inputs(rc, reused.orders)),
        **CLOSE,
    )


def test_unique_ids_give_the_scorecard_of_order_id_clusters(desk) -> None:
    """Where ids are unique across dates, clustering on the order within its date is
    clustering on the order_id: the same scorecard."""
    unique, _, _, window = desk
    fills, children = _frames(unique)
    by_id = [f.with_columns(cluster=pl.col("order_id")) for f in (fills, children)]
    assert_frame_equal(
        venue_scorecard(fills, children, window), venue_scorecard(*by_id, window), **CLOSE
    )


def test_one_date_equals_its_part_of_the_window(desk) -> None:
    """A daily partition (one date: the ids alone are keys) gets the rows the window gives."""
    _, reused, _, window = desk
    window_rows = _frames(reused)
    one = window[0]
    day = Inputs(
        *(
            f.filter(pl.col("trade_date") == one)
            for f in (reused.fills, reused.children, reused.orders)
        )
    )
    for whole, part in zip(window_rows, _frames(day), strict=True):
        whole = whole.filter(pl.col("trade_date") == one)
        assert_frame_equal(whole.drop("cluster"), part.drop("cluster"), check_exact=True)
        # The same clusters under other labels (within one date the order_id alone).
        pairs = pl.DataFrame({"w": whole["cluster"], "p": part["cluster"]}).unique()
        assert pairs.height == whole["cluster"].n_unique() == part["cluster"].n_unique()


def _load(con, desk) -> None:
    """The window's three tables of `desk` in the warehouse of `con`."""
    tables = {
        "quality.fill_quality": desk.fills,
        "staging.child_orders": desk.children,
        "quality.order_quality": desk.orders,
    }
    with warehouse.transaction(con):
        for table, frame in tables.items():
            warehouse.replace_table(con, table, frame)


def _memory_limit(con) -> str:
    return con.execute("select current_setting('memory_limit')").fetchall()[0][0]


def test_the_window_is_read_under_a_memory_limit_then_reset(desk, tmp_path, monkeypatch) -> None:
    """DuckDB evicts the blocks it read under the read's limit (instead of caching them until
    the database closes) and the connection has its own limit again afterwards."""
    seen = []

    def trailing_dates(con, days):
        seen.append(_memory_limit(con))
        return original(con, days)

    original = window_module.trailing_dates
    monkeypatch.setattr(window_module, "trailing_dates", trailing_dates)
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        _load(con, desk[1])
        before = _memory_limit(con)
        load_window(con, VenueSettings(), with_tape=False)
        assert _memory_limit(con) == before
        con.execute(f"set memory_limit = '{window_module.READ_MEMORY_LIMIT}'")
        assert seen == [_memory_limit(con)] != [before]
    finally:
        con.close()


@pytest.mark.parametrize("chunk_fills", [None, 150])
@pytest.mark.parametrize("cluster", ["order", "symbol_day"])
def test_the_window_read_date_by_date_equals_the_window_at_once(
    desk, tmp_path, cluster, chunk_fills
) -> None:
    """`load_window` reads and matches one date at a time (its peak memory is one date's rows;
    with `chunk_fills` below a date's fills, one symbol range's rows) and keeps its text as
    categoricals: the same fill and child rows, clusters included, as `venue_frames` over the
    whole window, and the same scorecard and routing."""
    _, reused, tape, window = desk
    settings = VenueSettings(cluster=cluster)
    if chunk_fills:  # every date in several ranges
        assert reused.fills.group_by("trade_date").len()["len"].min() > 3 * chunk_fills
    chunk = {"chunk_fills": chunk_fills} if chunk_fills else {}
    con = warehouse.connect(tmp_path / "warehouse.duckdb")  # with the warehouse's schemas
    try:
        _load(con, reused)
        loaded = load_window(con, settings, with_tape=False, **chunk)
    finally:
        con.close()
    assert (loaded.start, loaded.end, loaded.days) == window
    fills, children = _frames(reused, settings)
    for read, whole in (
        (loaded.fills, fills.select(WINDOW_FILL_COLUMNS)),
        (loaded.children, children.select(WINDOW_CHILD_COLUMNS)),
    ):
        text = [c for c, t in whole.schema.items() if t == pl.String]
        assert all(isinstance(read.schema[c], pl.Categorical) for c in text)
        read = read.with_columns(pl.col(text).cast(pl.String))
        assert_frame_equal(read.sort(pl.all()), whole.sort(pl.all()), check_exact=True)
    assert_frame_equal(
        venue_scorecard(loaded.fills, loaded.children, window, settings),
        venue_scorecard(fills, children, window, settings),
        **CLOSE,
    )
    # The delays summed date by date (and range by range) are those of the whole window.
    whole_delays = delay_inputs(children, reused.orders, settings)
    for read, whole in (
        (loaded.delays.waits, whole_delays.waits),
        (loaded.delays.drift, whole_delays.drift),
    ):
        keys = [c for c in whole.columns if whole.schema[c] == pl.String]
        assert_frame_equal(read.sort(keys), whole.sort(keys), **CLOSE)
    assert_frame_equal(
        routing_recommendations(
            loaded.fills,
            loaded.children,
            tape,
            window,
            loaded.delays,
            settings,
            symbol_days=loaded.symbol_days,
        ),
        routing_recommendations(fills, children, tape, window, whole_delays, settings),
        **CLOSE,
    )


@pytest.mark.parametrize("chunk_fills", [None, 150])
def test_the_window_labels_a_child_without_its_order_by_its_own_order_and_date(
    desk, tmp_path, chunk_fills
) -> None:
    """Each date's orders are labelled once and joined to the rows: a child order whose parent
    is missing from order_quality (hand-made inputs) is still its own order's cluster, read
    once when the date is read in symbol ranges."""
    _, reused, _, _ = desk
    missing = reused.orders.row(0, named=True)
    orphaned = Inputs(
        reused.fills,
        reused.children,
        reused.orders.filter(
            (pl.col("trade_date") != missing["trade_date"])
            | (pl.col("order_id") != missing["order_id"])
        ),
    )
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    try:
        _load(con, orphaned)
        chunk = {"chunk_fills": chunk_fills} if chunk_fills else {}
        loaded = load_window(con, VenueSettings(), with_tape=False, **chunk)
    finally:
        con.close()
    label = f"{missing['trade_date']}|{missing['order_id']}"
    for frame in (loaded.fills, loaded.children):
        assert frame["cluster"].null_count() == 0
        assert frame.filter(pl.col("cluster") == label).height > 0
    _, whole = _frames(orphaned)
    orphans = whole.filter(
        (pl.col("trade_date") == missing["trade_date"])
        & (pl.col("order_id") == missing["order_id"])
    )
    assert loaded.children.filter(pl.col("cluster") == label).height == orphans.height > 0


def test_detached_frames_keep_their_values(desk) -> None:
    fills = desk[1].fills
    assert_frame_equal(warehouse.detached(fills), fills, check_exact=True)
    assert warehouse.detached(fills.head(0)).schema == fills.schema


def test_a_child_id_twice_on_one_date_is_an_error(desk) -> None:
    _, reused, _, _ = desk
    filled = reused.fills.select("trade_date", "child_id").head(1)
    children = pl.concat([reused.children, reused.children.join(filled, on=filled.columns)])
    with pytest.raises(ValueError, match="child_id more than once on one trade date"):
        venue_frames(reused.fills, children, reused.orders)


def _view(inputs: Inputs, window: tuple[dt.date, dt.date, int]) -> pl.DataFrame:
    """`venue.scorecard_from_fills` over the inputs, in an in-memory warehouse."""
    con = duckdb.connect()
    try:
        for schema in ("quality", "staging", "venue"):
            con.execute(f"create schema {schema}")
        tables = {
            "quality.fill_quality": inputs.fills,
            "staging.child_orders": inputs.children,
            "venue.venue_scorecard": pl.DataFrame(
                {"window_start": [window[0]], "window_end": [window[1]]}
            ),
        }
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"create table {name} as select * from frame")
            con.unregister("frame")
        con.execute(warehouse.sql("create_scorecard_from_fills_view"))
        return con.execute("select * from venue.scorecard_from_fills order by venue").pl()
    finally:
        con.close()


def test_scorecard_from_fills_view_with_day_scoped_ids(desk) -> None:
    unique, reused, _, window = desk
    u, r = _view(unique, window), _view(reused, window)
    assert_frame_equal(u, r, **CLOSE)
    # ... and it reproduces the scorecard's unadjusted figures.
    scorecard = venue_scorecard(*_frames(reused), window).sort("venue")
    assert r["venue"].to_list() == scorecard["venue"].to_list()
    assert r["fills"].to_list() == scorecard["fills"].to_list()
    for column in ("fill_rate_unadjusted", "all_in_cost_bps_unadjusted"):
        assert r[column].to_list() == pytest.approx(scorecard[column].to_list(), rel=1e-9)

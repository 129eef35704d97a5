"""The simulated tables obey the landing contract and the desk's own invariants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from eqs_pipeline.core.contract import CONTRACT, DATED_TABLES
from eqs_pipeline.simulate import SimulatedData, SimulationConfig, simulate, trading_dates
from eqs_pipeline.simulate.engine import session_open_us

from .conftest import fills_with_quotes


@pytest.mark.parametrize("table", list(CONTRACT))
def test_columns_dtypes_required_enums_positive(small: SimulatedData, table: str) -> None:
    spec = CONTRACT[table]
    frame = small.instruments if table == "instruments" else small.day(table, small.trade_dates[0])
    assert frame.schema == pl.Schema(spec.polars_schema)
    assert frame.height > 0
    for col in spec.columns:
        s = frame[col.name]
        if col.required:
            assert s.null_count() == 0, f"{table}.{col.name} has nulls"
        if col.allowed is not None:
            assert set(s.drop_nulls().unique()) <= set(col.allowed), f"{table}.{col.name}"
        if col.positive:
            assert (s.drop_nulls() > 0).all(), f"{table}.{col.name} not positive"


def test_optional_columns_filled_where_a_desk_would(small: SimulatedData) -> None:
    orders = small.tables["orders"]
    for c in ("end_ts", "urgency", "trader", "account", "decision_ts"):
        assert orders[c].null_count() == 0, c
    limit = orders.filter(pl.col("order_type") == "LIMIT")
    assert limit.height > 0 and limit["limit_price"].null_count() == 0
    assert orders.filter(pl.col("order_type") == "MARKET")["limit_price"].null_count() > 0
    pov = orders.filter(pl.col("algo") == "POV")
    assert pov["target_participation"].null_count() == 0
    assert set(orders["algo"].unique()) == {"VWAP", "TWAP", "POV", "IS", "DARK"}
    children = small.tables["child_orders"]
    assert children.filter(pl.col("order_type") == "LIMIT")["limit_price"].null_count() == 0
    assert children.filter(pl.col("tif") == "DAY")["end_ts"].null_count() == 0
    fills = small.tables["executions"]
    assert fills["child_id"].null_count() == 0 and fills["fee"].null_count() == 0
    assert (fills["fee"] < 0).any() and (fills["fee"] > 0).any()  # rebates and charges


def test_keys_unique_across_days(small: SimulatedData) -> None:
    for table in DATED_TABLES:
        key = list(CONTRACT[table].key)
        if key:
            frame = small.tables[table]
            assert frame.select(key).is_unique().all(), table
    assert small.instruments["symbol"].is_unique().all()


def test_quotes_on_grid_never_crossed_and_strictly_increasing(small: SimulatedData) -> None:
    q = small.tables["quotes"].join(small.instruments.select("symbol", "tick_size"), on="symbol")
    assert (q["bid_px"] < q["ask_px"]).all()
    assert ((q["bid_sz"] > 0) & (q["ask_sz"] > 0)).all()
    for c in ("bid_px", "ask_px"):
        ticks = q[c] / q["tick_size"]
        assert ((ticks - ticks.round()).abs() < 1e-6).all(), c
    steps = q.select(
        d=pl.col("ts").diff().over("symbol", "trade_date").dt.total_microseconds()
    ).drop_nulls()["d"]
    assert (steps > 0).all()
    # Sub-second NBBO updates exist (bursts).
    assert (steps < 1_000_000).mean() > 0.3


def test_timestamps_inside_the_session_of_their_trade_date(small: SimulatedData) -> None:
    ny = ZoneInfo("America/New_York")
    for table, cols in {
        "quotes": ["ts"],
        "market_trades": ["ts"],
        "executions": ["exec_ts"],
        "child_orders": ["sent_ts"],
        "orders": ["arrival_ts", "end_ts"],
    }.items():
        for d in small.trade_dates:
            lo = datetime.combine(d, time(9, 30), ny).astimezone(UTC)
            hi = datetime.combine(d, time(16, 0), ny).astimezone(UTC)
            frame = small.day(table, d)
            for c in cols:
                assert frame[c].min() >= lo and frame[c].max() <= hi, (table, c, d)


def test_fills_belong_to_their_order_and_child(small: SimulatedData) -> None:
    o = small.tables["orders"].select(
        "order_id", "symbol", "order_qty", "arrival_ts", "end_ts", "trade_date"
    )
    c = small.tables["child_orders"].select(
        "child_id",
        c_order="order_id",
        c_venue="venue",
        c_type="order_type",
        tif="tif",
        sent_ts="sent_ts",
        c_qty="qty",
    )
    f = small.tables["executions"].join(o, on="order_id", suffix="_o").join(c, on="child_id")
    assert f.height == small.tables["executions"].height
    assert (f["symbol"] == f["symbol_o"]).all()
    assert (f["trade_date"] == f["trade_date_o"]).all()
    assert (f["order_id"] == f["c_order"]).all() and (f["venue"] == f["c_venue"]).all()
    assert (f["exec_ts"] >= f["arrival_ts"]).all() and (f["exec_ts"] >= f["sent_ts"]).all()
    assert (f["exec_ts"] <= f["end_ts"]).all()
    per_order = f.group_by("order_id").agg(pl.col("qty").sum(), pl.col("order_qty").first())
    assert (per_order["qty"] <= per_order["order_qty"]).all()
    per_child = f.group_by("child_id").agg(pl.col("qty").sum(), pl.col("c_qty").first())
    assert (per_child["qty"] <= per_child["c_qty"]).all()
    expected_flag = (
        pl.when(pl.col("c_type") == "MIDPEG")
        .then(pl.lit("MID"))
        .when(pl.col("tif") == "IOC")
        .then(pl.lit("REMOVE"))
        .otherwise(pl.lit("ADD"))
    )
    assert (f.select(ok=pl.col("liquidity_flag") == expected_flag)["ok"]).all()
    children = small.tables["child_orders"].join(o, on="order_id")
    assert (children["sent_ts"] >= children["arrival_ts"]).all()
    assert children.select(pl.col("trade_date") == pl.col("trade_date_right")).to_series().all()


def test_fill_prices_consistent_with_prevailing_quotes(small: SimulatedData) -> None:
    f = fills_with_quotes(small)
    assert f["mid"].null_count() == 0
    buy = pl.col("D") > 0
    add = f.filter(pl.col("liquidity_flag") == "ADD")
    assert (
        add.select(
            pl.when(buy)
            .then(pl.col("price") == pl.col("bid_px"))
            .otherwise(pl.col("price") == pl.col("ask_px"))
        )
        .to_series()
        .all()
    )
    mid = f.filter(pl.col("liquidity_flag") == "MID")
    assert ((mid["price"] - mid["mid"]).abs() < 1e-9).all()
    rem = f.filter(pl.col("liquidity_flag") == "REMOVE")
    inside = rem.select(
        pl.when(buy)
        .then(
            (pl.col("price") <= pl.col("ask_px") + 1e-9) & (pl.col("price") >= pl.col("mid") - 1e-9)
        )
        .otherwise(
            (pl.col("price") >= pl.col("bid_px") - 1e-9) & (pl.col("price") <= pl.col("mid") + 1e-9)
        )
    ).to_series()
    assert inside.all()
    # Sub-penny price improvement exists on some marketable fills.
    assert ((rem["price"] * 100 - (rem["price"] * 100).round()).abs() > 1e-6).any()


def test_limit_parents_respect_their_limit(small: SimulatedData) -> None:
    o = (
        small.tables["orders"]
        .filter(pl.col("order_type") == "LIMIT")
        .select("order_id", "side", "limit_price")
    )
    f = small.tables["executions"].join(o, on="order_id")
    ok = pl.when(pl.col("side") == "BUY").then(pl.col("price") <= pl.col("limit_price") + 1e-9)
    assert f.select(ok.otherwise(pl.col("price") >= pl.col("limit_price") - 1e-9)).to_series().all()


@pytest.mark.parametrize(
    ("day", "utc_open"),
    [(date(2026, 11, 2), "14:30"), (date(2026, 3, 6), "14:30"), (date(2026, 3, 9), "13:30")],
)
def test_session_open_follows_new_york_daylight_saving(day: date, utc_open: str) -> None:
    opened = datetime.fromtimestamp(session_open_us(day, "America/New_York") / 1e6, UTC)
    assert opened.strftime("%H:%M") == utc_open


def test_trading_days_are_weekdays_and_empty_desks_work() -> None:
    assert trading_dates(date(2026, 3, 6), 3) == [
        date(2026, 3, 6),
        date(2026, 3, 9),
        date(2026, 3, 10),
    ]
    data = simulate(SimulationConfig(days=1, symbols=2, orders_per_day=0, seed=1))
    assert data.tables["orders"].height == 0 and data.tables["quotes"].height > 0
    assert data.tables["executions"].schema == pl.Schema(
        {**CONTRACT["executions"].polars_schema, "trade_date": pl.Date}
    )

"""Plausibility bounds and the trade-date window: where they lie, and what follows a row off
its date (the single-rule cases are in test_rules.py's CASES)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.settings import IngestSettings
from eqs_pipeline.ingest import (
    discover_trade_dates,
    read_table,
    validate_instruments,
    validate_partition,
)
from eqs_pipeline.ingest.plausibility import trade_day_window
from eqs_pipeline.ingest.rules import PARTITION_TABLES
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import SimulationConfig, simulate_to_landing
from eqs_pipeline.simulate.config import ROUTINGS
from eqs_pipeline_tests.ingest.builders import (
    DAY,
    at,
    extra_row,
    good_rows,
    ingest_day,
    land,
)
from eqs_pipeline_tests.ingest.test_rules import quarantined, staged_ids


def test_the_trade_date_is_counted_on_the_market_clock_with_its_tolerance() -> None:
    start, end = trade_day_window(DAY, "America/New_York", 6.0)
    # 2024-01-02 00:00 New York (EST, UTC-5) less 6 h; 2024-01-03 00:00 plus 6 h.
    assert start == datetime(2024, 1, 2, 5, tzinfo=UTC) - timedelta(hours=6)
    assert end == datetime(2024, 1, 3, 5, tzinfo=UTC) + timedelta(hours=6)
    tokyo = trade_day_window(DAY, "Asia/Tokyo", 0.0)
    assert tokyo == (datetime(2024, 1, 1, 15, tzinfo=UTC), datetime(2024, 1, 2, 15, tzinfo=UTC))


def test_a_late_report_within_the_tolerance_is_staged(tmp_path) -> None:
    rows = good_rows()
    late = datetime(2024, 1, 3, 10, tzinfo=UTC)  # 05:00 on 3 January in New York
    rows["market_trades"].append({**extra_row("market_trades"), "ts": late})
    result = ingest_day(tmp_path / "a", rows)
    assert result.quarantine.height == 0
    strict = IngestSettings(off_date_tolerance_hours=0.0)
    result = ingest_day(tmp_path / "b", rows, settings=strict)
    assert result.quarantine["reasons"].to_list() == [["off_date:ts"]]


def test_each_symbol_uses_its_markets_clock(tmp_path) -> None:
    """09:30 in Tokyo on the trade date is the evening before in New York."""
    rows = good_rows()
    rows["instruments"][1]["market"] = "XTKS"  # MSFT, for the test's sake
    tokyo_open = datetime(2024, 1, 2, 0, 30, tzinfo=UTC)
    for symbol in ("AAPL", "MSFT"):
        rows["quotes"].append({**extra_row("quotes"), "symbol": symbol, "ts": tokyo_open})
    result = ingest_day(tmp_path, rows, settings=IngestSettings(off_date_tolerance_hours=0.0))
    bad = result.quarantine.filter(pl.col("source_table") == "quotes")
    assert bad["reasons"].to_list() == [["off_date:ts"]]
    assert result.staged["quotes"].filter(pl.col("ts") == tokyo_open)["symbol"].to_list() == [
        "MSFT"
    ]


def test_an_order_off_its_date_takes_its_children_and_fills_along(tmp_path) -> None:
    rows = good_rows()
    days = timedelta(days=3)
    rows["orders"][1]["arrival_ts"] += days  # O2, its child C2 and its fill E3, all moved
    rows["child_orders"][1]["sent_ts"] += days
    rows["executions"][2]["exec_ts"] += days
    result = ingest_day(tmp_path, rows)
    assert quarantined(result, "orders") == {"O2": ["off_date:arrival_ts"]}
    assert quarantined(result, "child_orders") == {"C2": ["unknown_order", "off_date:sent_ts"]}
    assert quarantined(result, "executions") == {
        "E3": ["unknown_order", "unknown_child", "off_date:exec_ts"]
    }
    assert staged_ids(result, "executions") == ["E1", "E2"]


def test_quotes_far_off_the_date_are_quarantined_and_the_day_still_computes(tmp_path) -> None:
    """Quotes 400 days early made the quality step fail the whole date; now they are
    quarantined and the fills of that symbol have no prior quote."""
    rows = good_rows()
    for quote in rows["quotes"]:
        if quote["symbol"] == "MSFT":
            quote["ts"] -= timedelta(days=400)
    result = ingest_day(tmp_path, rows)
    assert set(quarantined(result, "quotes")) == {"row3"}
    s = result.staged
    instruments = validate_instruments(
        read_table(tmp_path, "instruments", None), landing=tmp_path
    ).staged["instruments"]
    fq = fill_quality(s["executions"], s["quotes"], s["orders"]).collect()
    oq = order_quality(s["orders"], fq, s["quotes"], s["market_trades"], instruments).collect()
    assert fq.filter(pl.col("symbol") == "MSFT")["null_reason"].to_list() == ["no_prior_quote"]
    assert oq.height == 2


def test_an_instrument_with_an_absurd_volatility_adv_or_tick_is_quarantined(tmp_path) -> None:
    rows = good_rows()["instruments"]
    rows[0]["daily_volatility"] = 1e300
    rows[1]["daily_volatility"] = 0.03
    rows += [
        {**rows[1], "symbol": "TINY", "adv_shares": 5e-324},
        {**rows[1], "symbol": "HUGE", "adv_shares": 1e300, "tick_size": 1e9},
    ]
    land(tmp_path, "instruments", rows, "csv")
    result = validate_instruments(read_table(tmp_path, "instruments", None), landing=tmp_path)
    assert quarantined(result, "instruments") == {
        "AAPL": ["implausible_value:daily_volatility"],
        "TINY": ["implausible_value:adv_shares"],
        "HUGE": ["implausible_value:adv_shares", "implausible_value:tick_size"],
    }


def test_without_instruments_the_absolute_bounds_and_the_default_clock_apply(tmp_path) -> None:
    rows = good_rows()
    extra = extra_row("orders")
    rows["orders"] += [
        {**extra, "order_qty": 1e11},  # no ADV to judge by, below 10 x max_adv_shares
        {**extra, "order_id": "O4", "arrival_ts": at(14, 31) + timedelta(days=2)},
        {**extra, "order_id": "O5", "order_qty": 1e15},
        {**extra, "order_id": "O6", "order_type": "LIMIT", "limit_price": 1e9},
    ]
    result = ingest_day(tmp_path, rows, with_instruments=False)
    assert quarantined(result, "orders") == {
        "O4": ["off_date:arrival_ts"],
        "O5": ["implausible_size:order_qty"],
        "O6": ["implausible_price:limit_price"],
    }
    assert "O3" in staged_ids(result, "orders")


@pytest.mark.parametrize("routing", ROUTINGS)
def test_every_simulated_desk_passes_the_bounds_untouched(tmp_path, routing) -> None:
    """The defaults never reject a normal day (the LOBSTER samples: lobster/test_import.py)."""
    cfg = SimulationConfig(days=2, symbols=8, orders_per_day=80, seed=3, routing=routing)
    simulate_to_landing(cfg, tmp_path)
    landing = tmp_path
    instruments = validate_instruments(read_table(landing, "instruments", None), landing=landing)
    assert instruments.quarantine.height == 0
    for day in discover_trade_dates(landing):
        raw = {t: read_table(landing, t, day) for t in PARTITION_TABLES}
        result = validate_partition(raw, day, instruments.staged["instruments"], landing=landing)
        assert result.quarantine["reasons"].to_list() == [], day


def test_absurd_magnitudes_on_a_simulated_desk_are_quarantined(tmp_path) -> None:
    """A fill of 1e-300 shares, a fee of 1e300 and an order of 1e308 shares were staged and
    made every venue's all-in cost about 1e297 bps."""
    cfg = SimulationConfig(days=2, symbols=4, orders_per_day=50, seed=3)
    simulate_to_landing(cfg, tmp_path)
    day = discover_trade_dates(tmp_path)[0]
    fills = read_table(tmp_path, "executions", day).select(CONTRACT["executions"].names)
    orders = read_table(tmp_path, "orders", day).select(CONTRACT["orders"].names)
    hostile_fills = fills.head(2).with_columns(
        exec_id=pl.Series(["TINY", "FEE"]),
        qty=pl.Series([1e-300, 10.0]),
        fee=pl.Series([0.0, 1e300]),
    )
    hostile_order = orders.head(1).with_columns(order_id=pl.lit("HUGE"), order_qty=pl.lit(1e308))
    hostile_fills.write_parquet(tmp_path / "executions" / f"date={day}" / "z.parquet")
    hostile_order.write_parquet(tmp_path / "orders" / f"date={day}" / "z.parquet")

    instruments = validate_instruments(read_table(tmp_path, "instruments", None), landing=tmp_path)
    raw = {t: read_table(tmp_path, t, day) for t in PARTITION_TABLES}
    result = validate_partition(raw, day, instruments.staged["instruments"], landing=tmp_path)
    assert quarantined(result, "orders") == {"HUGE": ["implausible_size:order_qty"]}
    assert quarantined(result, "executions") == {
        "TINY": ["implausible_size:qty"],
        "FEE": ["implausible_fee"],
    }

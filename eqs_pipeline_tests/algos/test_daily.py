"""algo.algo_daily and the window's order frame against hand-computed values."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from eqs_pipeline.algos.daily import algo_daily
from eqs_pipeline.algos.frames import WEIGHT, algo_orders, order_columns, with_difficulty
from eqs_pipeline.algos.settings import AlgoSettings

DAY = date(2026, 11, 2)


def _orders(**overrides) -> pl.DataFrame:
    """Three orders of one date: two VWAP (brokers A and B), one IS; every column
    `order_columns` reads."""
    n = 3
    base = {
        "trade_date": [DAY] * n,
        "order_id": ["o1", "o2", "o3"],
        "symbol": ["AAA", "AAA", "BBB"],
        "side": ["BUY", "SELL", "BUY"],
        "side_sign": [1, -1, 1],
        "order_type": ["MARKET"] * n,
        "limit_price": [None] * n,
        "algo": ["VWAP", "VWAP", "IS"],
        "urgency": ["LOW", None, "HIGH"],
        "target_participation": [None, None, 0.1],
        "broker": ["A", "B", "A"],
        # 09:45, 12:00 and 15:45 New York (EST: UTC-5).
        "arrival_ts": [
            datetime(2026, 11, 2, 14, 45, tzinfo=UTC),
            datetime(2026, 11, 2, 17, 0, tzinfo=UTC),
            datetime(2026, 11, 2, 20, 45, tzinfo=UTC),
        ],
        "end_ts": [None] * n,
        "order_qty": [1000.0, 3000.0, 2000.0],
        "filled_qty": [1000.0, 1500.0, 2000.0],
        "fill_rate": [1.0, 0.5, 1.0],
        "notional": [10_050.0, 14_970.0, 40_100.0],
        "arrival_mid": [10.0, 10.0, 20.0],
        "arrival_spread_bps": [2.0, 10.0, 30.0],
        "arrival_bid_size": [100.0] * n,
        "arrival_ask_size": [100.0] * n,
        "arrival_imbalance": [0.0] * n,
        "pre_arrival_volatility_bps": [None] * n,
        "pre_arrival_volume_pct_adv": [0.01] * n,
        "size_pct_adv": [0.001, 0.005, 0.02],
        "daily_volatility": [0.01, 0.02, 0.04],
        "implementation_shortfall_bps": [50.0, 20.0, 25.0],
        "arrival_slippage_bps": [50.0, 20.0, 25.0],
        "interval_vwap_slippage_bps": [1.0, 2.0, 3.0],
        "interval_twap_slippage_bps": [2.0, 4.0, 6.0],
        "expected_cost_bps": [3.0, 8.0, 40.0],
        "expected_cost_source": ["formula:almgren"] * n,
        "cost_vs_expected_bps": [47.0, 12.0, -15.0],
        "cost_z": [1.0, 2.0, -3.0],
        "cost_percentile": [0.2, 0.3, 0.9],
        "participation_rate": [0.1, 0.2, 0.3],
        "duration_s": [100.0, 200.0, 600.0],
        "spread_capture": [0.5, None, -1.0],
        "pct_passive": [1.0, 0.0, 0.5],
        "venue_count": [1, 2, 3],
        "reversion_300s_bps": [1.0, 3.0, None],
    }
    return pl.DataFrame(base | overrides)


@pytest.fixture
def orders() -> pl.DataFrame:
    settings = AlgoSettings()
    return with_difficulty(algo_orders(_orders(), settings), None, settings)


def test_order_frame_buckets_weight_and_conditions(orders: pl.DataFrame) -> None:
    assert orders[WEIGHT].to_list() == [10_000.0, 30_000.0, 40_000.0]
    assert orders["size_bucket"].to_list() == ["small", "medium", "large"]
    assert orders["volatility_bucket"].to_list() == ["calm", "normal", "volatile"]
    assert orders["spread_bucket"].to_list() == ["tight", "normal", "wide"]
    assert orders["time_bucket"].to_list() == ["open", "midday", "close"]
    assert orders["difficulty_bucket"].to_list() == ["easy", "medium", "hard"]
    assert orders["conditions"].cast(pl.String).to_list() == [
        "calm|tight|open|LOW",
        "normal|normal|midday|unknown",
        "volatile|wide|close|HIGH",
    ]
    # Clustered by symbol and date: the two AAA orders share a cluster.
    assert orders["cluster"].to_list() == ["AAA|2026-11-02", "AAA|2026-11-02", "BBB|2026-11-02"]
    # Without the optional wheel columns, they read as null.
    assert orders["allocation"].null_count() == 3


def test_order_columns_takes_the_reversion_and_optional_columns_present() -> None:
    available = [*_orders().columns, "allocation"]
    columns = order_columns(available)
    assert "reversion_300s_bps" in columns and "allocation" in columns
    assert "allocation_prob" not in columns


def test_difficulty_from_the_model_replaces_the_own_expected_cost(orders) -> None:
    settings = AlgoSettings()
    model = with_difficulty(orders, pl.Series([20.0, 1.0, None]), settings)
    assert model["difficulty_bucket"].to_list() == ["hard", "easy", "unknown"]
    assert model["difficulty_source"][2] is None
    with pytest.raises(ValueError, match="2 values for 3 orders"):
        with_difficulty(orders, pl.Series([1.0, 2.0]), settings)


def test_daily_weights_each_figure_as_its_name_says(orders: pl.DataFrame) -> None:
    daily = algo_daily(orders)
    vwap = daily.filter((pl.col("algo") == "VWAP") & (pl.col("breakdown") == "all")).row(
        0, named=True
    )
    assert vwap["orders"] == 2
    assert vwap["fill_rate"] == pytest.approx(2500 / 4000)
    # Arrival-notional-weighted: (50 x 10k + 20 x 30k) / 40k.
    assert vwap["implementation_shortfall_bps"] == pytest.approx(27.5)
    # Executed-notional-weighted: (1 x 10,050 + 2 x 14,970) / 25,020.
    assert vwap["interval_vwap_slippage_bps"] == pytest.approx((10_050 + 2 * 14_970) / 25_020)
    # Share-weighted over the orders that have it: only o1's fills have a spread capture.
    assert vwap["spread_capture"] == pytest.approx(0.5)
    assert vwap["pct_passive"] == pytest.approx(1000 / 2500)
    assert vwap["cost_z"] == pytest.approx(1.5)
    assert vwap["reversion_bps"] == pytest.approx((10_050 + 3 * 14_970) / 25_020)


def test_daily_breakdowns_partition_each_algo(orders: pl.DataFrame) -> None:
    daily = algo_daily(orders)
    totals = daily.group_by("algo", "breakdown").agg(pl.col("orders").sum())
    assert totals.group_by("algo").agg(pl.col("orders").n_unique())["orders"].to_list() == [1, 1]
    brokers = daily.filter((pl.col("algo") == "VWAP") & (pl.col("breakdown") == "broker"))
    assert sorted(brokers["broker"].to_list()) == ["A", "B"]
    assert brokers["urgency"].null_count() == 2
    urgencies = daily.filter((pl.col("algo") == "VWAP") & (pl.col("breakdown") == "urgency"))
    assert sorted(urgencies["urgency"].to_list()) == ["LOW", "unknown"]

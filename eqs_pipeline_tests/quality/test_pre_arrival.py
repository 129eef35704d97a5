"""The market before an order's arrival (`quality.order_quality`'s arrival_* and pre_arrival_*
columns, the cost model's market features), worked out by hand."""

from __future__ import annotations

import math

import pytest

from eqs_pipeline_tests.quality.conftest import order, quote, run_orders, trade

# Mids every 5 minutes before an arrival at t = 1800 s (30 min after 14:30 UTC).
MIDS = (100.0, 100.2, 100.1, 100.4, 100.3, 100.0, 100.5)  # at t = 0, 300, ..., 1800


def _quotes() -> list[dict]:
    return [
        quote(300.0 * k, m - 0.05, m + 0.05, bid_sz=300.0, ask_sz=100.0) for k, m in enumerate(MIDS)
    ]


def test_pre_arrival_volatility_volume_and_imbalance() -> None:
    trades = [trade(800.0, 100.0, 5_000.0), trade(1000.0, 100.0, 7_000.0),
              trade(1799.0, 100.0, 3_000.0), trade(1800.0, 100.0, 9_999.0)]  # fmt: skip
    row = run_orders([order("o1", "BUY", 1_000.0, 1800.0, 2400.0)], [], _quotes(), trades).row(
        0, named=True
    )
    returns = [math.log(MIDS[k + 1] / MIDS[k]) for k in range(6)]
    # Six 5-minute returns, scaled to a 6.5-hour session (78 five-minute steps), in bps.
    expected = math.sqrt(sum(r * r for r in returns) / 6 * 78) * 1e4
    assert row["pre_arrival_volatility_bps"] == pytest.approx(expected, rel=1e-9)
    # Prints strictly before arrival and within the 15 minutes before it (t > 900 s).
    assert row["pre_arrival_volume_pct_adv"] == pytest.approx((7_000 + 3_000) / 1e6, rel=1e-12)
    assert row["arrival_bid_size"] == 300.0 and row["arrival_ask_size"] == 100.0
    assert row["arrival_imbalance"] == pytest.approx(0.5)


def test_early_arrival_has_no_pre_arrival_volatility() -> None:
    """Five minutes into the day there is one 5-minute return: too few for a volatility."""
    row = run_orders([order("o1", "SELL", 1_000.0, 300.0, 900.0)], [], _quotes(), []).row(
        0, named=True
    )
    assert row["pre_arrival_volatility_bps"] is None
    assert row["pre_arrival_volume_pct_adv"] == 0.0

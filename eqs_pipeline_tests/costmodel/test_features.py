"""The model's inputs are what is known at arrival: `arrival_features` reads nothing of
`quality.order_quality` beyond ORDER_INPUTS, and those hold no outcome but the target."""

from __future__ import annotations

from eqs_pipeline.costmodel.features import NUMERIC, ORDER_INPUTS, TARGET, arrival_features
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import simulate
from eqs_pipeline.simulate.config import cost_test_bed

# Columns of quality.order_quality that only exist once the order has traded.
OUTCOMES = {
    "filled_qty", "fill_rate", "avg_px", "notional", "fees", "end_ts", "order_end_ts",
    "first_fill_ts", "last_fill_ts", "status", "end_mid", "interval_vwap", "interval_twap",
    "market_volume", "participation_rate", "duration_s", "time_to_first_fill_s", "pct_passive",
    "effective_spread_bps", "price_improvement_bps", "arrival_slippage_bps",
    "opportunity_cost_bps", "reversion_300s_bps", "quality_score", "cost_percentile",
}  # fmt: skip


def test_features_read_only_what_is_known_at_arrival() -> None:
    data = simulate(cost_test_bed(days=2, orders_per_day=150, seed=1, symbols=6))
    t = data.tables
    fills = fill_quality(t["executions"], t["quotes"], t["orders"])
    orders = order_quality(
        t["orders"], fills, t["quotes"], t["market_trades"], data.instruments
    ).collect()
    assert not OUTCOMES & set(ORDER_INPUTS) and TARGET in ORDER_INPUTS
    assert set(orders.columns) >= OUTCOMES  # the list above names real columns
    whole = arrival_features(orders, data.instruments)
    assert whole.equals(arrival_features(orders.select(ORDER_INPUTS), data.instruments))
    assert whole.height == orders.height and whole["model_null_reason"].null_count() == 300
    assert whole.select(NUMERIC).null_count().sum_horizontal().item() == 0

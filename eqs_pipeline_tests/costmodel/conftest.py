"""A small designed desk (`simulate.costs`) scored by the quality engine: rows of
`quality.order_quality` with known true expected costs, for the cost model's tests."""

from __future__ import annotations

import polars as pl
import pytest

from eqs_pipeline.core.settings import CostNetSettings, CostTrainingSettings
from eqs_pipeline.costmodel.features import arrival_features
from eqs_pipeline.costmodel.train import TrainingOutcome, train_cost_model
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import simulate
from eqs_pipeline.simulate.config import cost_test_bed


def designed_desk(days: int, orders_per_day: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(arrival features with the realized shortfall, the truth per order)."""
    cfg = cost_test_bed(days, orders_per_day, seed)
    data = simulate(cfg)
    t = data.tables
    fq = fill_quality(t["executions"], t["quotes"], t["orders"])
    oq = order_quality(t["orders"], fq, t["quotes"], t["market_trades"], data.instruments).collect()
    truth = data.truth_orders.select(
        "trade_date", "order_id", "true_expected_cost_bps", "true_cost_sd_bps"
    )
    return arrival_features(oq, data.instruments), truth


@pytest.fixture(scope="session")
def small_desk() -> tuple[pl.DataFrame, pl.DataFrame]:
    """6 dates of 500 orders: enough to train and score, not to judge accuracy."""
    return designed_desk(6, 500, 3)


# Quick training settings of the small desk's tests: six dates, two held out, one calibrating.
QUICK = CostTrainingSettings(
    window_days=10, holdout_days=2, min_train_orders=500, net=CostNetSettings(steps=100)
)


@pytest.fixture(scope="session")
def small_outcome(small_desk) -> TrainingOutcome:
    """The small desk trained once with QUICK (tests that only read the outcome share it)."""
    return train_cost_model(small_desk[0], QUICK)

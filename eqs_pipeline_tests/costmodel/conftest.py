"""A small designed desk (`simulate.costs`) scored by the quality engine: rows of
`quality.order_quality` with known true expected costs, for the cost model's tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import polars as pl
import pytest

from eqs_pipeline.core.settings import CostNetSettings, CostTrainingSettings
from eqs_pipeline.costmodel.features import arrival_features
from eqs_pipeline.costmodel.train import TrainingOutcome, train_cost_model
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import simulate
from eqs_pipeline.simulate.config import cost_test_bed


@dataclass(frozen=True)
class ScoredDesk:
    """A designed desk as the quality engine scores it: its rows of `quality.order_quality`,
    the instruments and the simulator's truth per order."""

    order_quality: pl.DataFrame
    instruments: pl.DataFrame
    truth: pl.DataFrame


def scored_desk(days: int, orders_per_day: int, seed: int) -> ScoredDesk:
    cfg = cost_test_bed(days, orders_per_day, seed)
    data = simulate(cfg)
    t = data.tables
    fq = fill_quality(t["executions"], t["quotes"], t["orders"])
    oq = order_quality(t["orders"], fq, t["quotes"], t["market_trades"], data.instruments).collect()
    return ScoredDesk(oq, data.instruments, data.truth_orders)


def designed_desk(days: int, orders_per_day: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(arrival features with the realized shortfall, the truth per order)."""
    desk = scored_desk(days, orders_per_day, seed)
    truth = desk.truth.select(
        "trade_date", "order_id", "true_expected_cost_bps", "true_cost_sd_bps"
    )
    return arrival_features(desk.order_quality, desk.instruments), truth


# Quick training settings of the small desk's tests: six dates, two held out, one calibrating.
QUICK = CostTrainingSettings(
    window_days=10, holdout_days=2, min_train_orders=500, net=CostNetSettings(steps=100)
)


@cache
def small_scored_desk() -> tuple[ScoredDesk, TrainingOutcome]:
    """6 dates of 500 orders, trained once with QUICK: enough to train and score, not to judge
    accuracy. Cached per test process: the cost model's tests and the algo choice tests
    (`eqs_pipeline_tests/algos/choice_desk.py`) share it."""
    desk = scored_desk(6, 500, 3)
    return desk, train_cost_model(arrival_features(desk.order_quality, desk.instruments), QUICK)


@pytest.fixture(scope="session")
def small_desk() -> tuple[pl.DataFrame, pl.DataFrame]:
    """The small desk's arrival features and truth (`small_scored_desk`)."""
    desk, _ = small_scored_desk()
    truth = desk.truth.select(
        "trade_date", "order_id", "true_expected_cost_bps", "true_cost_sd_bps"
    )
    return arrival_features(desk.order_quality, desk.instruments), truth


@pytest.fixture(scope="session")
def small_outcome() -> TrainingOutcome:
    """The small desk trained once with QUICK (tests that only read the outcome share it)."""
    return small_scored_desk()[1]

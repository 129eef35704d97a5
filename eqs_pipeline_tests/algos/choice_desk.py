"""The designed desk the choice tests (selection, parameter curves, recommendations) share:
`cost_test_bed` orders scored by the quality engine, the algo analysis' window frame, a cost
model trained quickly on them and its candidate support: the cost model's tests' small desk and
quick model (`costmodel.conftest.small_scored_desk`, built once per test process)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import polars as pl

from eqs_pipeline.algos.frames import algo_orders
from eqs_pipeline.algos.selection import candidate_support
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.costmodel.artifact import CostModelArtifact
from eqs_pipeline.simulate.config import ALGOS
from eqs_pipeline_tests.costmodel.conftest import small_scored_desk


@dataclass(frozen=True)
class ChoiceDesk:
    """order_quality rows, their `algo_orders` frame, the instruments, the trained model, its
    training window's `candidate_support` (the whole desk: 6 dates of 500 orders), the true
    expected cost of every order under every algo (the simulator's truth) and the
    settings."""

    order_quality: pl.DataFrame
    orders: pl.DataFrame
    instruments: pl.DataFrame
    artifact: CostModelArtifact
    support: pl.DataFrame
    truth: pl.DataFrame
    settings: AlgoSettings


@cache
def choice_desk() -> ChoiceDesk:
    desk, outcome = small_scored_desk()
    assert outcome.artifact is not None
    settings = AlgoSettings()
    oq = desk.order_quality
    return ChoiceDesk(
        oq,
        algo_orders(oq, settings),
        desk.instruments,
        outcome.artifact,
        candidate_support(oq, settings),
        desk.truth.select("trade_date", "order_id", *(f"true_cost_{a}_bps" for a in ALGOS)),
        settings,
    )

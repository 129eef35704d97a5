"""The designed desk the choice tests (selection, parameter curves, recommendations) share:
`cost_test_bed` orders scored by the quality engine, the algo analysis' window frame, a cost
model trained quickly on them and its candidate support. Built once per test process (`cache`:
a session fixture of one test module would be built again by the next)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import polars as pl

from eqs_pipeline.algos.frames import algo_orders
from eqs_pipeline.algos.selection import candidate_support
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.costmodel.artifact import CostModelArtifact
from eqs_pipeline.costmodel.features import arrival_features
from eqs_pipeline.costmodel.train import train_cost_model
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import simulate
from eqs_pipeline.simulate.config import ALGOS, cost_test_bed
from eqs_pipeline_tests.costmodel.conftest import QUICK


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
    cfg = cost_test_bed(6, 500, 3)
    data = simulate(cfg)
    t = data.tables
    fills = fill_quality(t["executions"], t["quotes"], t["orders"])
    oq = order_quality(
        t["orders"], fills, t["quotes"], t["market_trades"], data.instruments
    ).collect()
    settings = AlgoSettings()
    outcome = train_cost_model(arrival_features(oq, data.instruments), QUICK)
    assert outcome.artifact is not None
    orders = algo_orders(oq, settings)
    return ChoiceDesk(
        oq,
        orders,
        data.instruments,
        outcome.artifact,
        candidate_support(oq, settings),
        data.truth_orders.select("trade_date", "order_id", *(f"true_cost_{a}_bps" for a in ALGOS)),
        settings,
    )

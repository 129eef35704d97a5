"""The designed desk the choice tests (selection, parameter curves, recommendations) share:
`cost_test_bed` orders scored by the quality engine, the algo analysis' window frame, a cost
model trained quickly on them and its candidate support. Built once per test process (`cache`:
a session fixture of one test module would be built again by the next)."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time
from functools import cache

import numpy as np
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
from eqs_pipeline.simulate.config import ALGOS, URGENCIES, cost_test_bed
from eqs_pipeline.simulate.costs import ArrivalState, CostDesign, expected_cost
from eqs_pipeline.simulate.curves import SESSION_S
from eqs_pipeline_tests.costmodel.conftest import QUICK


@dataclass(frozen=True)
class ChoiceDesk:
    """order_quality rows, their `algo_orders` frame, the instruments, the trained model, its
    training window's `candidate_support` (the whole desk: 6 dates of 500 orders), the true
    expected cost of every order under every algo (`designed_costs`) and the settings."""

    order_quality: pl.DataFrame
    orders: pl.DataFrame
    instruments: pl.DataFrame
    artifact: CostModelArtifact
    support: pl.DataFrame
    truth: pl.DataFrame
    settings: AlgoSettings


def designed_costs(orders: pl.DataFrame, truth: dict, design: CostDesign) -> pl.DataFrame:
    """trade_date, order_id and `true_cost_<ALGO>_bps`: the designed expected cost
    (`simulate.costs.expected_cost`) of each order had it been worked by each algo, rebuilt
    from what the order's row holds (its arrival quote, session time, size, volatility) and
    its broker's latent skill."""
    zone = zoneinfo.ZoneInfo(truth["session"]["timezone"])
    opens = {
        d: datetime.combine(d, time(9, 30), zone).timestamp()
        for d in orders["trade_date"].unique().to_list()
    }
    brokers = {b: v["impact_multiplier"] for b, v in truth["brokers"].items()}
    arrival = orders["arrival_ts"].dt.epoch("us").to_numpy() / 1e6
    start = orders["trade_date"].replace_strict(opens, return_dtype=pl.Float64).to_numpy()
    state = {
        "urgency": orders["urgency"]
        .replace_strict({u: i for i, u in enumerate(URGENCIES)}, return_dtype=pl.Int64)
        .to_numpy(),
        "is_limit": (orders["order_type"] == "LIMIT").to_numpy(),
        "is_short": (orders["side"] == "SELL_SHORT").to_numpy(),
        "tau": (arrival - start) / SESSION_S,
        "spread_bps": orders["arrival_spread_bps"].to_numpy(),
        "sigma_bps": orders["daily_volatility"].to_numpy() * 1e4,
        "size_adv": orders["size_pct_adv"].to_numpy(),
        "broker_multiplier": orders["broker"]
        .replace_strict(brokers, return_dtype=pl.Float64)
        .to_numpy(),
    }
    n = orders.height
    costs = {
        f"true_cost_{a}_bps": expected_cost(design, ArrivalState(algo=np.full(n, i), **state))[0]
        for i, a in enumerate(ALGOS)
    }
    return orders.select("trade_date", "order_id").with_columns(**costs)


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
    assert cfg.costs is not None
    return ChoiceDesk(
        oq,
        orders,
        data.instruments,
        outcome.artifact,
        candidate_support(oq, settings),
        designed_costs(orders, data.truth, cfg.costs),
        settings,
    )

"""Designed costs (`simulate.costs`): the cost model's test bed has a known truth.

The pipeline, reading the landed files, must find each designed order's shortfall exactly at
its recorded draw mu + sd * z; the design formula is checked on hand-computed orders; and the
default mode (the golden desk) records no designed truth.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.ingest import read_table, validate_instruments, validate_partition
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import SimulationConfig, simulate, simulate_to_landing
from eqs_pipeline.simulate.costs import ArrivalState, CostDesign, expected_cost

DESIGNED = SimulationConfig(
    days=2,
    symbols=12,
    orders_per_day=400,
    seed=5,
    cancel_share=0.0,
    max_children_per_order=6,
    costs=CostDesign(),
)


def _state(**over) -> ArrivalState:
    base = dict(
        algo=np.array([0]),
        urgency=np.array([1]),
        is_limit=np.array([False]),
        is_short=np.array([False]),
        tau=np.array([0.5]),
        spread_bps=np.array([10.0]),
        sigma_bps=np.array([200.0]),
        size_adv=np.array([0.01]),
        broker_multiplier=np.array([1.0]),
    )
    return ArrivalState(**(base | over))


def test_expected_cost_by_hand() -> None:
    d = CostDesign()
    mu, sd = expected_cost(d, _state())
    # VWAP, MEDIUM, mid-day, 10 bps spread, sigma 200 bps, 1% of ADV.
    regime = 1 - 0.5 / (1 + math.exp(-(10 - 15) / 3))
    spread_part = 0.5 * 10 * 0.55 * 1.0 * regime
    tod = 1 + 0.8 * math.exp(-0.5 / 0.06) + 0.3 * math.exp(-0.5 / 0.05)
    impact = 0.9 * 200 * 0.1 * 0.8 * 1.0 * tod
    assert mu[0] == pytest.approx(spread_part + impact, rel=1e-12)
    risk = 200 * math.sqrt(0.25 / 3)
    assert sd[0] == pytest.approx(math.sqrt(risk**2 + 3.5**2 + (0.5 * impact) ** 2), rel=1e-12)
    # A LIMIT short sale: 20% off, plus the short cost.
    mu_ls, _ = expected_cost(d, _state(is_limit=np.array([True]), is_short=np.array([True])))
    assert mu_ls[0] == pytest.approx(0.8 * (spread_part + impact) + 1.5, rel=1e-12)


@pytest.mark.parametrize(
    ("change", "cheaper"),
    [
        ({"urgency": np.array([0])}, True),  # LOW urgency pays less spread and impact
        ({"algo": np.array([4])}, True),  # DARK
        ({"tau": np.array([0.01])}, False),  # the open costs more
        ({"spread_bps": np.array([40.0])}, False),
        ({"broker_multiplier": np.array([0.8])}, True),
    ],
)
def test_costs_move_beyond_the_textbook_form(change: dict, cheaper: bool) -> None:
    base, _ = expected_cost(CostDesign(), _state())
    moved, _ = expected_cost(CostDesign(), _state(**change))
    assert (moved[0] < base[0]) == cheaper


def test_wide_spread_regime_saves_part_of_the_spread() -> None:
    """Beyond 15 bps the spread paid grows more slowly than the spread."""
    d = CostDesign(impact_y=0.0)
    mu, _ = expected_cost(d, _state(spread_bps=np.array([5.0, 30.0]), algo=np.array([0, 0]),
                                    urgency=np.array([1, 1]), is_limit=np.array([False, False]),
                                    is_short=np.array([False, False]), tau=np.array([0.5, 0.5]),
                                    sigma_bps=np.array([200.0, 200.0]), size_adv=np.array([0.01, 0.01]),
                                    broker_multiplier=np.array([1.0, 1.0])))  # fmt: skip
    assert mu[1] / 30.0 < 0.6 * mu[0] / 5.0


@pytest.fixture(scope="module")
def designed_landing(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("designed")
    simulate_to_landing(DESIGNED, root)
    return root, simulate(DESIGNED)


def test_pipeline_finds_each_designed_shortfall(designed_landing) -> None:
    """Ingest the landed files and score them: every designed order's shortfall is its draw,
    and no row is quarantined (the moved fills stay plausible)."""
    root, data = designed_landing
    instruments = validate_instruments(read_table(root, "instruments", None), landing=root).staged[
        "instruments"
    ]
    rows = []
    for day in data.trade_dates:
        result = validate_partition(
            lambda table, d=day: read_table(root, table, d), day, instruments, landing=root
        )
        staged = result.staged
        assert result.quarantine.height == 0
        fq = fill_quality(staged["executions"], staged["quotes"], staged["orders"])
        rows.append(
            order_quality(
                staged["orders"], fq, staged["quotes"], staged["market_trades"], instruments
            ).collect()
        )
    got = pl.concat(rows).join(data.truth_orders, on=["trade_date", "order_id"], how="inner")
    assert got.height == DESIGNED.days * DESIGNED.orders_per_day
    designed = got.filter(pl.col("true_expected_cost_bps").is_not_null())
    assert designed.height >= 0.99 * got.height
    draw = pl.col("true_expected_cost_bps") + pl.col("true_cost_sd_bps") * pl.col("true_cost_z")
    gap = designed.select((pl.col("implementation_shortfall_bps") - draw).abs().max()).item()
    assert gap < 1e-8
    # The draws are standard normal: a test that the truth is not, say, mu alone.
    z = designed["true_cost_z"]
    assert abs(z.mean()) < 0.15 and 0.9 < z.std() < 1.1


def test_default_mode_records_no_designed_truth() -> None:
    data = simulate(SimulationConfig(days=1, symbols=3, orders_per_day=30, seed=1))
    assert data.truth_orders["true_expected_cost_bps"].null_count() == 30
    with pytest.raises(ValueError, match="min_fill_fraction"):
        CostDesign(min_fill_fraction=0.0)

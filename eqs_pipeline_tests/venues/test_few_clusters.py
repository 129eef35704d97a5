"""A venue whose evidence is one cluster (one parent order) has no interval, no rank and keeps
its flow; the optimizer's switching cost is charged once per share moved."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.simulate import SimulationConfig
from eqs_pipeline.stats import METHODS, adjusted_means, inference
from eqs_pipeline.venues.routing import routing_recommendations, solve_allocation
from eqs_pipeline.venues.scorecard import venue_scorecard
from eqs_pipeline_tests.venues.truth import Desk, simulated_desk

LONE = "ELPX"  # the venue whose fills and children are put in one cluster


def _frame(orders_of_c: int) -> pl.DataFrame:
    """A and B: 40 orders of 3 fills each; C: 40 noisy fills from `orders_of_c` orders."""
    rng = np.random.default_rng(0)
    rows = [
        {"venue": v, "cluster": f"{v}{o}", "y": rng.normal(0, 10)}
        for v in ("A", "B")
        for o in range(40)
        for _ in range(3)
    ]
    rows += [
        {"venue": "C", "cluster": f"C{k % orders_of_c}", "y": rng.normal(0, 10)} for k in range(40)
    ]
    return pl.DataFrame(rows).with_columns(
        cell=pl.lit("x"), flag=pl.lit("REMOVE"), qty=pl.lit(100.0), spread=pl.lit(5.0)
    )


@pytest.mark.parametrize("method", METHODS)
def test_one_cluster_gives_an_estimate_without_an_interval(method: str) -> None:
    kwargs = {"method": method, "flag": "flag", "spread": "spread"}
    one = adjusted_means(_frame(1), "y", **kwargs)
    c = one.table.filter(pl.col("venue") == "C").row(0, named=True)
    assert c["estimate"] is not None and c["n"] == 40
    # Before: se 2e-14 and a zero-width interval, for 40 fills with a per-fill sd of 10 bps.
    assert c["se"] is None and c["ci_low"] is None and c["ci_high"] is None
    assert one.influence["C"].is_nan().all()  # any statistic built on it has no interval
    assert one.table.filter(pl.col("venue") != "C")["se"].null_count() == 0
    two = adjusted_means(_frame(2), "y", **kwargs).table.filter(pl.col("venue") == "C")
    assert two["se"].item() > 0  # two orders: an interval
    if method == "conditional":  # and, on t with its one effective degree of freedom, wide
        naive = 10 / math.sqrt(40)
        assert (two["ci_high"].item() - two["ci_low"].item()) / 2 > 2 * naive


@pytest.fixture(scope="module")
def lone_desk() -> Desk:
    """A simulated desk where every fill and child order of one venue is one cluster."""
    desk = simulated_desk(SimulationConfig(days=2, symbols=6, orders_per_day=120, seed=7))
    lone = pl.when(pl.col("venue") == LONE).then(pl.lit("one order")).otherwise("cluster")
    return Desk(
        desk.fills.with_columns(cluster=lone),
        desk.children.with_columns(cluster=lone),
        desk.tape,
        desk.window,
        desk.truth,
        desk.delays,
    )


def test_a_one_cluster_venue_is_not_ranked(lone_desk: Desk) -> None:
    card = venue_scorecard(lone_desk.fills, lone_desk.children, lone_desk.window)
    row = card.filter(pl.col("venue") == LONE).row(0, named=True)
    assert row["fills"] >= 30 and row["score"] is not None
    assert row["rank"] is None and row["score_ci_low"] is None and row["score_ci_high"] is None
    assert row["price_improvement_bps_ci_low"] is None
    ranked = card.filter(pl.col("rank").is_not_null())
    assert ranked.height >= 3 and LONE not in ",".join(ranked["rank_tier_members"])


def test_a_one_cluster_venue_keeps_its_flow(lone_desk: Desk) -> None:
    recs = routing_recommendations(
        lone_desk.fills, lone_desk.children, lone_desk.tape, lone_desk.window, lone_desk.delays
    )
    lone = recs.filter(pl.col("venue") == LONE)
    assert lone.height >= 2
    assert lone["all_in_cost_se_bps"].null_count() == lone.height
    assert not lone["movable"].any()
    assert lone["share_change"].abs().max() < 1e-12
    assert recs.filter(pl.col("venue") != LONE)["movable"].any()


@pytest.mark.parametrize(("cheaper_by", "moves"), [(0.2, False), (0.24, False), (0.3, True)])
def test_switching_cost_is_charged_once_per_share_moved(cheaper_by: float, moves: bool) -> None:
    """switching_cost_bps = 0.25: a venue cheaper by more than that per share takes the flow."""
    current = np.array([0.5, 0.5])
    shares, status = solve_allocation(
        current,
        np.array([5.0, 5.0 - cheaper_by]),
        np.array([1.0, 1.0]),
        np.array([True, True]),
        switching_cost_bps=0.25,
    )
    assert status == "optimal"
    assert math.isclose(shares[1], 1.0 if moves else 0.5, abs_tol=1e-9)


def test_clusters_per_venue_are_counted_alike_by_table_and_by_hash(monkeypatch) -> None:
    """`venue_clusters` marks (venue, cluster) pairs in a dense table when it is small enough,
    else finds the distinct pairs: the same counts, a venue without rows included."""
    rng = np.random.default_rng(3)
    v_idx = rng.integers(0, 4, 5000)  # venue 4 of 5 has no rows
    g_idx = np.where(v_idx == 3, 7, rng.integers(0, 300, 5000))  # venue 3: one cluster
    dense = inference.venue_clusters(v_idx, g_idx, 5, 300)
    monkeypatch.setattr(inference, "_DENSE_PAIRS", 0)
    hashed = inference.venue_clusters(v_idx, g_idx, 5, 300)
    assert dense.tolist() == hashed.tolist()
    assert dense[3] == 1 and dense[4] == 0 and dense[:3].min() > 250

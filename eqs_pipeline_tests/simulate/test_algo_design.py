"""The algo scenario (`simulate.algos`, docs/SIMULATOR.md "The algo scenario"): the algo
comparison's test bed has the truth it claims.

Each order's true cost under every algo and urgency is the design's formula with that one
input swapped, recomputed here from the landed files; the algos differ as designed (TWAP
dominated by every other algo, DARK cheapest for small orders and IS for large ones, HIGH
urgency dearer); the discretionary choice follows the order's size and the wheel's draws their
stated probabilities; and a run without the design lands no allocation columns.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from eqs_pipeline.ingest import read_table, validate_instruments, validate_partition
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import SimulatedData, load_truth, simulate, simulate_to_landing
from eqs_pipeline.simulate.algos import ALGO_COSTS, AlgoAssignment, dominated
from eqs_pipeline.simulate.config import ALGOS, URGENCIES, algo_test_bed
from eqs_pipeline.simulate.costs import ArrivalState, expected_cost
from eqs_pipeline.simulate.curves import SESSION_S
from eqs_pipeline.simulate.engine import session_open_us

from .conftest import SMALL

COSTS = [f"true_cost_{a}_bps" for a in ALGOS]
BY_URGENCY = [f"true_cost_urgency_{u}_bps" for u in URGENCIES]
SMALL_ORDER, LARGE_ORDER = AlgoAssignment().size_edges  # order_qty / ADV


@pytest.fixture(scope="module")
def desk() -> SimulatedData:
    """Three days of 600 orders, the algo chosen by size (about 1,800 designed orders)."""
    return simulate(algo_test_bed(days=3, orders_per_day=600, seed=1))


@pytest.fixture(scope="module")
def wheel_desk() -> SimulatedData:
    """Half the orders allocated by the wheel (about 1,200 wheel orders)."""
    return simulate(algo_test_bed(days=3, orders_per_day=800, seed=2, wheel=True))


def _orders(data: SimulatedData) -> pl.DataFrame:
    """The landed orders with their truth (the truth's allocation is the landed one)."""
    return data.tables["orders"].join(
        data.truth_orders.drop("symbol", "allocation", "allocation_prob"),
        on=["trade_date", "order_id"],
        validate="1:1",
    )


def _designed(data: SimulatedData) -> pl.DataFrame:
    return _orders(data).filter(pl.col("true_expected_cost_bps").is_not_null())


def _arrival_state(data: SimulatedData, orders: pl.DataFrame) -> ArrivalState:
    """What the design reads of each order, rebuilt from the landed files and the truth: the
    spread of the last quote at or before arrival, the instrument's volatility and ADV, the
    broker's multiplier, the arrival's share of the session."""
    quotes = data.tables["quotes"].select("symbol", "ts", "bid_px", "ask_px").sort("ts")
    rows = (
        orders.with_row_index("_row")
        .sort("arrival_ts")
        .join_asof(
            quotes,
            left_on="arrival_ts",
            right_on="ts",
            by="symbol",
            strategy="backward",
            check_sortedness=False,  # both sorted by time above
        )
        .join(
            data.instruments.select("symbol", "adv_shares", sigma="daily_volatility"), on="symbol"
        )
        .sort("_row")
    )
    mid = (rows["bid_px"] + rows["ask_px"]) / 2
    brokers = data.truth["brokers"]
    opens = {d: session_open_us(d, "America/New_York") for d in data.trade_dates}
    arrival_us = rows["arrival_ts"].dt.epoch("us").to_numpy()
    open_us = np.array([opens[d] for d in rows["trade_date"].to_list()])
    return ArrivalState(
        algo=np.array([ALGOS.index(a) for a in rows["algo"]]),
        urgency=np.array([URGENCIES.index(u) for u in rows["urgency"]]),
        is_limit=(rows["order_type"] == "LIMIT").to_numpy(),
        is_short=(rows["side"] == "SELL_SHORT").to_numpy(),
        tau=(arrival_us - open_us) / 1e6 / SESSION_S,
        spread_bps=((rows["ask_px"] - rows["bid_px"]) / mid * 1e4).to_numpy(),
        sigma_bps=(rows["sigma"] * 1e4).to_numpy(),
        size_adv=(rows["order_qty"] / rows["adv_shares"]).to_numpy(),
        broker_multiplier=np.array([brokers[b]["impact_multiplier"] for b in rows["broker"]]),
    )


def test_true_costs_are_the_design_with_one_input_swapped(desk: SimulatedData) -> None:
    orders = _designed(desk)
    state = _arrival_state(desk, orders)
    n = orders.height
    # (The landed arrival is rounded to the microsecond: 1e-10 of the time of day.)
    own, _ = expected_cost(ALGO_COSTS, state)
    assert np.allclose(own, orders["true_expected_cost_bps"].to_numpy(), rtol=1e-8, atol=0)
    for k, column in enumerate(COSTS):
        swapped, _ = expected_cost(ALGO_COSTS, replace(state, algo=np.full(n, k)))
        assert np.allclose(swapped, orders[column].to_numpy(), rtol=1e-8, atol=0), column
    for k, column in enumerate(BY_URGENCY):
        swapped, _ = expected_cost(ALGO_COSTS, replace(state, urgency=np.full(n, k)))
        assert np.allclose(swapped, orders[column].to_numpy(), rtol=1e-8, atol=0), column
    # The order's own algo and urgency give its true expected cost, to the bit.
    for name, options, columns in (("algo", ALGOS, COSTS), ("urgency", URGENCIES, BY_URGENCY)):
        position = pl.col(name).replace_strict(list(options), list(range(len(options))))
        mine = orders.select(pl.concat_list(columns).list.get(position)).to_series()
        assert (mine == orders["true_expected_cost_bps"]).all(), name


def test_twap_is_dominated_by_every_algo_for_every_order_and_worst_on_average(
    desk: SimulatedData,
) -> None:
    orders = _designed(desk)
    twap = orders["true_cost_TWAP_bps"]
    # By at least its fixed cost over IS's (the dearest after its own), less the LIMIT discount.
    fixed = dict(zip(ALGOS, ALGO_COSTS.algo_fixed_bps, strict=True))
    least = (1 - ALGO_COSTS.limit_discount) * (fixed["TWAP"] - fixed["IS"])
    for column in COSTS:
        if column != "true_cost_TWAP_bps":
            assert (twap - orders[column]).min() > least - 1e-9, column
    means = orders.select(COSTS).mean().row(0, named=True)
    worst, second = sorted(means.values(), reverse=True)[:2]
    assert means["true_cost_TWAP_bps"] == worst
    assert worst > 1.5 * second
    # At the desk's notional mix, where large orders weigh most, still well ahead of the next:
    # what a notional-weighted scorecard compares.
    notional = orders["order_qty"] * orders["latent_arrival_mid"]
    at_mix = {c: (orders[c] * notional).sum() / notional.sum() for c in COSTS}
    worst, second = sorted(at_mix.values(), reverse=True)[:2]
    assert at_mix["true_cost_TWAP_bps"] == worst
    assert worst > 1.3 * second
    design = desk.truth["algo_design"]
    assert design["dominated"] == {"TWAP": ["VWAP", "POV", "IS", "DARK"]}
    assert design["worst_on_average"] == "TWAP"


def test_dark_is_cheapest_for_small_orders_and_is_for_large_ones(desk: SimulatedData) -> None:
    orders = _designed(desk)
    costs = orders.select(COSTS).to_numpy()
    cheapest = costs.argmin(axis=1)
    ordered = np.sort(costs, axis=1)
    margin = (ordered[:, 1] - ordered[:, 0]) / ordered[:, 0]
    size = orders["pct_adv"].to_numpy()
    for bucket, algo in ((size < SMALL_ORDER, "DARK"), (size >= LARGE_ORDER, "IS")):
        assert bucket.sum() > 250
        assert (cheapest[bucket] == ALGOS.index(algo)).mean() >= 0.9, algo
        assert np.median(margin[bucket]) >= 0.15, algo  # the second best is well behind
    # VWAP, POV and TWAP lie above the two: never the cheapest.
    assert set(np.unique(cheapest)) == {ALGOS.index("IS"), ALGOS.index("DARK")}
    design = desk.truth["algo_design"]
    assert (design["cheapest_small"], design["cheapest_large"]) == ("DARK", "IS")
    shares = design["realized"]["large"]["cheapest_share"]
    assert shares["IS"] == pytest.approx((cheapest[size >= LARGE_ORDER] == 3).mean())


def test_high_urgency_costs_more_than_low_for_the_same_order(desk: SimulatedData) -> None:
    orders = _designed(desk)
    low, medium, high = (orders[c] for c in BY_URGENCY)
    assert ((low < medium) & (medium < high)).all()
    assert high.mean() > 1.5 * low.mean()


def test_the_discretionary_choice_follows_the_size_and_misleads_raw_averages(
    desk: SimulatedData,
) -> None:
    orders = _designed(desk)
    design = AlgoAssignment()
    size = pl.col("pct_adv")
    buckets = {
        "small": size < SMALL_ORDER,
        "medium": (size >= SMALL_ORDER) & (size < LARGE_ORDER),
        "large": size >= LARGE_ORDER,
    }
    assert set(orders["allocation"]) == {"discretionary"}
    for k, (name, bucket) in enumerate(buckets.items()):
        got = orders.filter(bucket)["algo"].value_counts().rows()
        counts = dict(got)
        n = sum(counts.values())
        for a, p in zip(ALGOS, design.probs[k], strict=True):
            # Within 4.5 binomial standard errors of the design, and support everywhere.
            assert abs(counts.get(a, 0) / n - p) < 4.5 * (p * (1 - p) / n) ** 0.5, (name, a)
            assert counts.get(a, 0) / n >= 0.05, (name, a)
    # IS gets the large orders: its own orders cost more on average than those of any algo
    # but the dominated TWAP, and more than IS would cost over every order, although it is the
    # cheapest algo for large orders and, over every order, on average.
    raw = dict(orders.group_by("algo").agg(pl.col("true_expected_cost_bps").mean()).rows())
    assert max((a for a in raw if a != "TWAP"), key=raw.get) == "IS"
    population = orders.select(COSTS).mean().row(0, named=True)
    assert raw["IS"] > 1.2 * population["true_cost_IS_bps"]
    assert min(population, key=population.get) == "true_cost_IS_bps"


def test_the_wheel_draws_with_the_probabilities_it_lands(wheel_desk: SimulatedData) -> None:
    orders = _orders(wheel_desk)
    design = wheel_desk.truth["algo_design"]
    share = design["wheel_share"]
    wheel = orders.filter(pl.col("allocation") == "wheel")
    n = orders.height
    assert abs(wheel.height / n - share) < 4.5 * (share * (1 - share) / n) ** 0.5
    probs = design["wheel_probs"]
    assert probs == {"VWAP": 0.4, "IS": 0.3, "DARK": 0.3}
    # Each wheel order lands the probability of the algo drawn; the others land none.
    assert (wheel["allocation_prob"] == wheel["algo"].replace_strict(probs)).all()
    others = orders.filter(pl.col("allocation") == "discretionary")
    assert others.height + wheel.height == n
    assert others["allocation_prob"].null_count() == others.height
    # The draws follow those probabilities, whatever the order's size.
    for subset in (wheel, wheel.filter(pl.col("pct_adv") < SMALL_ORDER),
                   wheel.filter(pl.col("pct_adv") >= LARGE_ORDER)):  # fmt: skip
        counts = dict(subset["algo"].value_counts().rows())
        assert set(counts) <= set(probs)
        observed = [counts.get(a, 0) for a in probs]
        expected = [p * subset.height for p in probs.values()]
        assert stats.chisquare(observed, expected).pvalue > 1e-3, observed


def test_a_wheel_that_favours_one_algo_is_seen_to(wheel_desk: SimulatedData) -> None:
    """The chi-square check above can fail: draws from other probabilities are rejected."""
    wheel = _orders(wheel_desk).filter(pl.col("allocation") == "wheel")
    counts = dict(wheel["algo"].value_counts().rows())
    observed = [counts["VWAP"], counts["IS"], counts["DARK"]]
    assert stats.chisquare(observed, [wheel.height / 3] * 3).pvalue < 1e-3


def test_the_assignment_is_checked() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        AlgoAssignment(wheel_probs=(0.5, 0.0, 0.0, 0.3, 0.3))
    with pytest.raises(ValueError, match="wheel_share"):
        AlgoAssignment(wheel_share=1.5)
    with pytest.raises(ValueError, match="size_edges"):
        AlgoAssignment(size_edges=(0.01, 0.002))


def test_dominance_is_read_from_the_coefficients() -> None:
    assert dominated(ALGO_COSTS) == {ALGOS.index("TWAP"): [0, 2, 3, 4]}  # by every other algo
    # TWAP paying IS's spread is still dominated by it (more impact, a higher fixed cost).
    even = replace(ALGO_COSTS, pay=(0.55, 0.9, 0.6, 0.9, 0.2))
    assert dominated(even) == {ALGOS.index("TWAP"): [0, 2, 3, 4]}
    # Paying less of the spread than IS, it is no longer dominated by IS; paying the least of
    # all, by none.
    below_is = replace(ALGO_COSTS, pay=(0.55, 0.85, 0.6, 0.9, 0.2))
    assert dominated(below_is) == {ALGOS.index("TWAP"): [0, 2, 4]}
    cheapest = replace(ALGO_COSTS, pay=(0.55, 0.15, 0.6, 0.9, 0.2))
    assert dominated(cheapest) == {}


def test_without_the_design_no_allocation_lands_and_no_truth_is_recorded(tmp_path: Path) -> None:
    simulate_to_landing(SMALL, tmp_path, formats=("parquet", "csv"))
    for path in sorted((tmp_path / "orders").glob("date=*/part-0.*")):
        header = (
            pl.read_parquet_schema(path)
            if path.suffix == ".parquet"
            else path.read_text().splitlines()[0].split(",")
        )
        assert not {"allocation", "allocation_prob"} & set(header), path
    truth = load_truth(tmp_path)
    assert "algo_design" not in truth and truth["config"]["algos"] is None
    orders = pl.read_parquet(str(tmp_path / "_truth" / "orders" / "*" / "*.parquet"))
    columns = [*COSTS, *BY_URGENCY, "allocation", "allocation_prob"]
    assert orders.select(columns).null_count().row(0) == (orders.height,) * len(columns)


def test_the_allocation_lands_and_reaches_order_quality(tmp_path: Path) -> None:
    """A wheel day, landed in CSV and Parquet, ingested and scored: nothing is quarantined,
    each order keeps its allocation, and its shortfall is still its designed draw."""
    cfg = algo_test_bed(days=2, orders_per_day=200, seed=4, wheel=True)
    simulate_to_landing(cfg, tmp_path, formats=("csv", "parquet"))
    data = simulate(cfg)
    instruments = validate_instruments(read_table(tmp_path, "instruments", None), landing=tmp_path)
    scored = []
    for day in data.trade_dates:
        result = validate_partition(
            lambda table, d=day: read_table(tmp_path, table, d),
            day,
            instruments.staged["instruments"],
            landing=tmp_path,
        )
        assert result.quarantine.height == 0
        staged = result.staged
        fills = fill_quality(staged["executions"], staged["quotes"], staged["orders"])
        scored.append(
            order_quality(
                staged["orders"],
                fills,
                staged["quotes"],
                staged["market_trades"],
                instruments.staged["instruments"],
            ).collect()
        )
    got = pl.concat(scored).join(_orders(data), on=["trade_date", "order_id"], suffix="_landed")
    assert got.height == cfg.days * cfg.orders_per_day
    assert set(got["allocation"]) == {"wheel", "discretionary"}
    assert (got["allocation"] == got["allocation_landed"]).all()
    assert got["allocation_prob"].eq_missing(got["allocation_prob_landed"]).all()
    assert got["allocation_prob"].null_count() == (got["allocation"] == "discretionary").sum()
    designed = got.filter(pl.col("true_expected_cost_bps").is_not_null())
    draw = (
        designed["true_expected_cost_bps"] + designed["true_cost_sd_bps"] * designed["true_cost_z"]
    )
    assert (designed["implementation_shortfall_bps"] - draw).abs().max() < 1e-6

"""The algo scorecards (`algos.scorecard`) on synthetic desks whose costs are known: the
adjustment removes the confounding of who got the hard orders, the dominated algo is alone in
the last tier, the standardization over size buckets by hand (an algo effect that differs by
size; each metric's own weight), the unranked, the incomparable and an algo or pair missing a
size bucket say why, the broker x algo pairs, the wheel's columns and the tables' schemas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.algos.frames import WEIGHT, algo_orders, with_difficulty
from eqs_pipeline.algos.scorecard import algo_scorecard, broker_algo_scorecard
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.tables.algo_scorecard import ALGO_SCORECARD, BROKER_ALGO_SCORECARD
from eqs_pipeline.tables.schemas import schema, validate_frame

SETTINGS = AlgoSettings()
WINDOW = (date(2024, 3, 4), date(2024, 3, 15), 10)
IS = "implementation_shortfall_bps"

# True costs: additive in the order-size bucket, the volatility bucket and the algo.
SIZE_COST = {"small": 3.0, "medium": 8.0, "large": 20.0}
SIZE_PCT_ADV = {"small": 0.05, "medium": 0.5, "large": 2.0}  # percent of ADV
VOLATILITY_COST = {"calm": 0.0, "volatile": 6.0}
DAILY_VOLATILITY = {"calm": 0.01, "volatile": 0.04}  # 100 and 400 bps
ALGO_COST = {"IS": 0.0, "VWAP": 2.0, "TWAP": 6.0}


@dataclass(frozen=True)
class Desk:
    """The orders as the scorecards read them and each order's true expected cost under its
    own algo, without the algo's effect (`base`)."""

    orders: pl.DataFrame
    base: np.ndarray

    def true_adjusted(self, algo: str) -> float:
        """The algo's cost at the desk's pooled mix: the arrival-notional-weighted mean base
        cost of every order, plus its effect (the model is additive, so this is its
        estimand)."""
        w = self.orders[WEIGHT].to_numpy()
        return float(np.sum(w * self.base) / w.sum()) + ALGO_COST[algo]


def quality_rows(
    algo: list[str] | np.ndarray,
    size: list[str] | np.ndarray,
    cost: list[float] | np.ndarray,
    *,
    volatility: list[str] | np.ndarray | None = None,
    broker: list[str] | np.ndarray | None = None,
    order_qty: list[float] | np.ndarray | None = None,
    cluster: list[int] | np.ndarray | None = None,
    allocation: list[str | None] | None = None,
    allocation_prob: list[float | None] | None = None,
) -> pl.DataFrame:
    """Rows of `quality.order_quality` (the columns `algo_orders` reads) with these algos,
    size buckets and shortfalls; one symbol-day cluster per order unless `cluster` says."""
    n = len(algo)
    cluster = np.arange(n) if cluster is None else np.asarray(cluster)
    volatility = np.full(n, "calm") if volatility is None else np.asarray(volatility)
    qty = np.full(n, 1000.0) if order_qty is None else np.asarray(order_qty, dtype=float)
    cost = np.asarray(cost, dtype=float)
    day = cluster % 10
    rows = {
        "trade_date": [WINDOW[0] + timedelta(days=int(d)) for d in day],
        "order_id": [f"o{i}" for i in range(n)],
        "symbol": [f"S{g}" for g in cluster],
        "algo": list(algo),
        "broker": ["B1"] * n if broker is None else list(broker),
        "urgency": "MEDIUM",
        "arrival_ts": [
            datetime(2024, 3, 4, 16, 0, tzinfo=UTC) + timedelta(days=int(d)) for d in day
        ],
        "order_qty": qty,
        "arrival_mid": 50.0,
        "size_pct_adv": [SIZE_PCT_ADV[s] / 100 for s in size],
        "daily_volatility": [DAILY_VOLATILITY[v] for v in volatility],
        "arrival_spread_bps": 4.0,
        IS: cost,
        "cost_vs_expected_bps": cost - 5.0,
        "arrival_slippage_bps": cost - 1.0,
        "interval_vwap_slippage_bps": cost - 2.0,
        "fill_rate": 0.9,
        "notional": qty * 50.0 * 0.9,
        "expected_cost_bps": 5.0,
        "expected_cost_source": "formula:almgren",
    }
    frame = pl.DataFrame(rows)
    if allocation is not None:
        frame = frame.with_columns(
            allocation=pl.Series(allocation, dtype=pl.String),
            allocation_prob=pl.Series(allocation_prob, dtype=pl.Float64),
        )
    return frame


def orders_of(rows: pl.DataFrame, settings: AlgoSettings = SETTINGS) -> pl.DataFrame:
    return with_difficulty(algo_orders(rows, settings), None, settings)


def confounded_desk(seed: int = 0, n: int = 1500, **rows) -> Desk:
    """The traders send IS the large orders and the volatile days (which cost more whatever
    the algo), TWAP the small calm ones; TWAP is 6 bps dearer than IS everywhere, VWAP 2."""
    rng = np.random.default_rng(seed)
    size = rng.choice(list(SIZE_COST), n, p=[0.5, 0.3, 0.2])
    volatility = rng.choice(list(VOLATILITY_COST), n, p=[0.6, 0.4])
    hard = (size == "large").astype(float) + (volatility == "volatile")
    p_is = np.array([0.15, 0.6, 0.9])[hard.astype(int)]
    u = rng.random(n)
    algo = np.where(u < p_is, "IS", np.where(u < p_is + (1 - p_is) * 0.5, "VWAP", "TWAP"))
    base = np.vectorize(SIZE_COST.get)(size) + np.vectorize(VOLATILITY_COST.get)(volatility)
    cluster = rng.integers(0, 200, n)  # 20 symbols x 10 dates
    shock = rng.normal(0.0, 2.0, 200)[cluster]
    cost = base + np.vectorize(ALGO_COST.get)(algo) + shock + rng.normal(0.0, 6.0, n)
    frame = quality_rows(
        algo,
        size,
        cost,
        volatility=volatility,
        order_qty=rng.lognormal(7.0, 0.5, n),
        cluster=cluster,
        broker=rng.choice(["B1", "B2"], n),
        **rows,
    )
    return Desk(orders_of(frame), base)


@pytest.fixture(scope="module")
def desk() -> Desk:
    return confounded_desk()


@pytest.fixture(scope="module")
def card(desk: Desk) -> pl.DataFrame:
    return algo_scorecard(desk.orders, WINDOW, SETTINGS)


def _row(frame: pl.DataFrame, algo: str) -> dict:
    return frame.filter(pl.col("algo") == algo).row(0, named=True)


def test_the_algo_given_the_hard_orders_is_not_penalized_for_them(
    desk: Desk, card: pl.DataFrame
) -> None:
    """Raw, IS looks dearer than VWAP; adjusted, it is the cheapest, its shortfall below its
    raw one and within three standard errors of the truth (as every algo's)."""
    is_row = _row(card, "IS")
    assert is_row[f"{IS}_unadjusted"] > _row(card, "VWAP")[f"{IS}_unadjusted"]
    assert is_row[IS] < is_row[f"{IS}_unadjusted"] - 3.0
    for algo in ALGO_COST:
        row = _row(card, algo)
        se = (row[f"{IS}_ci_high"] - row[f"{IS}_ci_low"]) / (2 * 1.97)
        assert abs(row[IS] - desk.true_adjusted(algo)) < 3 * se, (algo, row[IS])
    assert is_row["score"] == pytest.approx(-is_row[IS])


def test_without_the_controls_the_volatile_days_stay_confounded(desk: Desk) -> None:
    """Size alone (controls=()) leaves IS with the volatile days' cost: it reads dearer than
    with the volatility control, by about its excess share of volatile orders x 6 bps."""
    size_only = AlgoSettings(controls=())
    card = algo_scorecard(orders_of_settings(desk, size_only), WINDOW, size_only)
    full = algo_scorecard(desk.orders, WINDOW, SETTINGS)
    assert _row(card, "IS")[IS] > _row(full, "IS")[IS] + 1.0
    assert _row(card, "IS")["adjusted_for"] == "order size against ADV"
    assert "daily volatility" in _row(full, "IS")["adjusted_for"]


def orders_of_settings(desk: Desk, settings: AlgoSettings) -> pl.DataFrame:
    """The desk's orders with the conditions of other settings."""
    controls = [pl.col("urgency_level" if c == "urgency" else c) for c in settings.controls] or [
        pl.lit("")
    ]
    return desk.orders.with_columns(
        conditions=pl.concat_str(controls, separator="|").cast(pl.Categorical)
    )


def test_the_dominated_algo_is_alone_in_the_last_tier(card: pl.DataFrame) -> None:
    twap = _row(card, "TWAP")
    assert twap["rank"] == card["rank"].max() > 1
    assert twap["rank_tier_members"] == "TWAP"
    assert card["algo"].to_list()[-1] == "TWAP"  # sorted by rank
    assert _row(card, "IS")["rank"] == 1


def _pairs(cells: list[tuple[str, str, float]]) -> tuple[list[str], list[str], list[float]]:
    """Two orders per (algo, size bucket, cost) entry, at the cost -1 and +1."""
    algo, size, cost = [], [], []
    for a, s, c in cells:
        algo += [a, a]
        size += [s, s]
        cost += [c - 1.0, c + 1.0]
    return algo, size, cost


def test_adjusted_estimates_by_hand() -> None:
    """Two size buckets (the strata), two algos, B's disadvantage 2 bps on small orders and 10
    on large ones. A: 1 small order pair at 2 bps, 3 large pairs at 10; B: 3 small pairs at 4,
    1 large pair at 20 (each pair at its value -/+ 1; equal weights, one cluster per order).
    The desk's mix is half small, half large, so each algo's figure is the mean of its two
    bucket means: A = (2 + 10) / 2 = 6, B = (4 + 20) / 2 = 12; raw, A = (2 + 3 x 10) / 4 = 8
    and B = (3 x 4 + 20) / 4 = 8. One additive algo effect would average B's disadvantage
    over the buckets by precision (equal here: 6) and read A = 5, B = 11, both a bps low.

    The interval by hand: within a bucket an order's influence is pi_s w_i (y_i - theta_as) /
    W_as, pi_s = 1/2; A's small orders (W = 2) each -/+ 1/4, its large ones (W = 6) -/+ 1/12:
    var = G / (G - 1) sum IF^2 = 16/15 x (2/16 + 6/144) = 16/15 x 1/6, with t(15)."""
    from scipy.stats import t

    cells = [("A", "small", 2.0)] + [("A", "large", 10.0)] * 3
    cells += [("B", "small", 4.0)] * 3 + [("B", "large", 20.0)]
    algo, size, cost = _pairs(cells)
    settings = AlgoSettings(controls=(), min_orders=1)
    card = algo_scorecard(orders_of(quality_rows(algo, size, cost), settings), WINDOW, settings)
    a, b = _row(card, "A"), _row(card, "B")
    assert a[IS] == pytest.approx(6.0) and b[IS] == pytest.approx(12.0)
    assert a[f"{IS}_unadjusted"] == pytest.approx(8.0) and b[f"{IS}_unadjusted"] == pytest.approx(
        8.0
    )
    half = t.ppf(0.975, 15) * np.sqrt(16 / 15 * (2 / 16 + 6 / 144))
    assert a[f"{IS}_ci_low"] == pytest.approx(6.0 - half)
    assert a[f"{IS}_ci_high"] == pytest.approx(6.0 + half)
    # The other metrics are the shortfall shifted: the same standardization.
    assert a["cost_vs_expected_bps"] == pytest.approx(1.0)
    assert a["interval_vwap_slippage_bps"] == pytest.approx(4.0)
    assert a["orders"] == 8 and a["flow_share"] == pytest.approx(0.5)
    assert a["arrival_notional"] == pytest.approx(8 * 1000 * 50.0)
    assert a["score"] == pytest.approx(-6.0) and a["clusters"] == 16
    assert a["rank"] == 1 and b["rank"] == 2 and a["note"] is None
    assert "standardized over size buckets" in a["ci_method"]


def test_the_size_buckets_weigh_by_the_desks_mix_of_each_metrics_weight() -> None:
    """The large orders weigh three times the small ones: pi = (1/4, 3/4) of the arrival
    notional; the slippages weigh by the executed notional, here the same shares."""
    cells = [("A", "small", 2.0), ("A", "large", 10.0), ("B", "small", 4.0), ("B", "large", 20.0)]
    algo, size, cost = _pairs(cells)
    qty = [3000.0 if s == "large" else 1000.0 for s in size]
    settings = AlgoSettings(controls=(), min_orders=1)
    rows = quality_rows(algo, size, cost, order_qty=qty)
    card = algo_scorecard(orders_of(rows, settings), WINDOW, settings)
    assert _row(card, "A")[IS] == pytest.approx(0.25 * 2 + 0.75 * 10)
    assert _row(card, "B")[IS] == pytest.approx(0.25 * 4 + 0.75 * 20)
    assert _row(card, "B")["arrival_slippage_bps"] == pytest.approx(0.25 * 3 + 0.75 * 19)


def test_an_algo_missing_a_size_bucket_has_no_adjusted_figure_and_says_why() -> None:
    """SMALL works only small orders, which A and B also work: it is comparable, but nothing
    says what it would cost on the large orders, a third of the desk's notional. It keeps its raw
    figures, gets no adjusted one, no score and no rank; A and B keep theirs."""
    rng = np.random.default_rng(6)
    n = 40
    algo = ["A"] * n + ["B"] * n + ["SMALL"] * n
    size = ["small", "large"] * n + ["small"] * n
    cost = rng.normal(5.0, 3.0, 3 * n)
    card = algo_scorecard(orders_of(quality_rows(algo, size, cost)), WINDOW, SETTINGS)
    small = _row(card, "SMALL")
    assert small[IS] is None and small[f"{IS}_ci_low"] is None and small["score"] is None
    assert small["rank"] is None and small[f"{IS}_unadjusted"] is not None
    assert small["note"] == (
        "not comparable: no estimable cost of the algo on the desk's large orders (33.3% of "
        "the desk's notional; it has no order there, or none the controls can compare), so no "
        "figure puts it on the desk's whole flow"
    )
    for name in ("A", "B"):
        row = _row(card, name)
        assert row[IS] is not None and row["rank"] == 1 and row["note"] is None


def test_an_algo_below_min_orders_is_not_ranked_and_says_why(desk: Desk) -> None:
    few = confounded_desk(1, n=20).orders.with_columns(
        algo=pl.lit("POV"), order_id=pl.format("pov{}", "order_id")
    )
    orders = pl.concat([desk.orders, few], how="vertical_relaxed")
    card = algo_scorecard(orders, WINDOW, SETTINGS)
    pov = _row(card, "POV")
    assert pov["rank"] is None and pov[IS] is not None and pov["score_ci_low"] is not None
    assert pov["note"] == "not ranked: 20 orders, fewer than the 30 needed"
    assert card["algo"].to_list()[-1] == "POV"  # unranked last
    assert _row(card, "IS")["note"] is None


def test_an_algo_sharing_no_size_bucket_is_not_comparable() -> None:
    """ALONE works only medium orders, which no other algo works: no figure puts it on the
    desk's mix."""
    n = 120
    algo = ["A"] * 40 + ["B"] * 40 + ["ALONE"] * 40
    size = ["small", "large"] * 40 + ["medium"] * 40
    cost = np.random.default_rng(2).normal(5.0, 3.0, n)
    card = algo_scorecard(orders_of(quality_rows(algo, size, cost)), WINDOW, SETTINGS)
    alone = _row(card, "ALONE")
    assert alone[IS] is None and alone["rank"] is None and alone["score"] is None
    assert alone[f"{IS}_unadjusted"] is not None
    assert alone["note"].startswith("not comparable: the algo works no order-size bucket")
    assert _row(card, "A")["rank"] == 1


def test_an_algo_from_one_cluster_has_no_interval_and_says_why() -> None:
    n = 120
    rng = np.random.default_rng(3)
    algo = ["A"] * 50 + ["B"] * 50 + ["ONE"] * 20
    size = list(rng.choice(["small", "large"], n))
    cluster = list(range(100)) + [500] * 20
    card = algo_scorecard(
        orders_of(quality_rows(algo, size, rng.normal(5, 3, n), cluster=cluster)),
        WINDOW,
        AlgoSettings(min_orders=10),
    )
    one = _row(card, "ONE")
    assert one[IS] is not None and one[f"{IS}_ci_low"] is None and one["rank"] is None
    assert (
        "no interval, not ranked: all its orders come from one symbol on one date" in (one["note"])
    )


def test_an_algo_with_one_cluster_in_a_size_bucket_has_no_interval_and_says_why() -> None:
    """SPLIT's small orders come from 20 symbol-days, its large ones from one: its large-order
    figure has no interval, so its figure on the desk's flow has none either."""
    n = 120
    rng = np.random.default_rng(4)
    algo = ["A"] * 50 + ["B"] * 50 + ["SPLIT"] * 20
    size = list(rng.choice(["small", "large"], 100)) + ["small"] * 10 + ["large"] * 10
    cluster = list(range(100)) + list(range(200, 210)) + [500] * 10
    card = algo_scorecard(
        orders_of(quality_rows(algo, size, rng.normal(5, 3, n), cluster=cluster)),
        WINDOW,
        AlgoSettings(min_orders=10),
    )
    split = _row(card, "SPLIT")
    assert split[IS] is not None and split[f"{IS}_ci_low"] is None and split["rank"] is None
    assert split["note"] == (
        "no interval, not ranked: its orders of a size bucket all come from one symbol on one "
        "date, so the data cannot say how far its figure there is from luck"
    )


def test_the_scorecards_validate_against_their_tables(desk: Desk, card: pl.DataFrame) -> None:
    # The window asset adds the inputs' fingerprint to the algo scorecard.
    stamped = card.with_columns(inputs_fingerprint=pl.lit("ab" * 32))
    assert validate_frame(schema(ALGO_SCORECARD), stamped) == []
    pairs = broker_algo_scorecard(desk.orders, WINDOW, SETTINGS)
    assert validate_frame(schema(BROKER_ALGO_SCORECARD), pairs) == []
    conditional = AlgoSettings(ci_method="conditional")
    stamped = algo_scorecard(desk.orders, WINDOW, conditional).with_columns(
        inputs_fingerprint=pl.lit("ab" * 32)
    )
    assert validate_frame(schema(ALGO_SCORECARD), stamped) == []
    # And a frame the tables reject: an interval that does not contain its estimate.
    broken = card.with_columns(pl.col(f"{IS}_ci_low") + 100.0).with_columns(
        inputs_fingerprint=pl.lit("ab" * 32)
    )
    failures = validate_frame(schema(ALGO_SCORECARD), broken)
    assert {f["check"] for f in failures} == {f"ci_contains_{IS}"}


def test_broker_algo_pairs_below_min_pair_orders_are_left_out(desk: Desk) -> None:
    """B3 works 12 VWAP orders: the pair is left out; the published pairs are estimated on all
    the orders and ranked among themselves."""
    few = (
        desk.orders.filter(pl.col("algo") == "VWAP")
        .head(12)
        .with_columns(broker=pl.lit("B3"), order_id=pl.format("b3{}", "order_id"))
    )
    orders = pl.concat([desk.orders, few])
    pairs = broker_algo_scorecard(orders, WINDOW, SETTINGS)
    assert set(zip(pairs["broker"], pairs["algo"], strict=True)) == {
        (b, a) for b in ("B1", "B2") for a in ALGO_COST
    }
    assert pairs["orders"].min() >= SETTINGS.min_pair_orders
    twap = pairs.filter(pl.col("algo") == "TWAP")
    assert (twap["rank"] == pairs["rank"].max()).all()
    assert pairs["rank_tier_members"].str.contains("TWAP").sum() == 2
    # Each pair's orders and raw figure are its own.
    b1_is = orders.filter((pl.col("broker") == "B1") & (pl.col("algo") == "IS"))
    row = pairs.filter((pl.col("broker") == "B1") & (pl.col("algo") == "IS")).row(0, named=True)
    assert row["orders"] == b1_is.height
    w = b1_is[WEIGHT]
    assert row[f"{IS}_unadjusted"] == pytest.approx((b1_is[IS] * w).sum() / w.sum())


def test_a_pair_missing_a_size_bucket_is_published_without_adjusted_figures(desk: Desk) -> None:
    """B3 works 40 small VWAP orders: enough to be published, nothing to value it on the
    desk's medium and large orders; the other pairs keep their figures and ranks."""
    small = (
        desk.orders.filter((pl.col("algo") == "VWAP") & (pl.col("size_bucket") == "small"))
        .head(40)
        .with_columns(broker=pl.lit("B3"), order_id=pl.format("b3{}", "order_id"))
    )
    pairs = broker_algo_scorecard(pl.concat([desk.orders, small]), WINDOW, SETTINGS)
    b3 = pairs.filter(pl.col("broker") == "B3").row(0, named=True)
    assert b3["orders"] == 40 and b3[IS] is None and b3["rank"] is None
    assert b3[f"{IS}_unadjusted"] is not None
    assert b3["note"].startswith(
        "not comparable: no estimable cost of the pair on the desk's large, medium orders ("
    )
    others = pairs.filter(pl.col("broker") != "B3")
    assert others.height == 6 and others[IS].null_count() == 0
    assert others["rank"].null_count() == 0


def test_the_wheel_columns_of_the_algo_scorecard() -> None:
    """Half the orders on a wheel of IS and VWAP at 1/2 each: those two get the wheel's
    figures, TWAP none and says so."""
    n = 1200
    wheel = ["wheel" if i % 2 else "discretionary" for i in range(n)]
    prob = [0.5 if i % 2 else None for i in range(n)]
    desk = confounded_desk(4, n=n, allocation=wheel, allocation_prob=prob)
    rng = np.random.default_rng(5)
    drawn = np.where(rng.random(n) < 0.5, "IS", "VWAP")
    orders = desk.orders.with_columns(
        algo=pl.when(pl.col("allocation") == "wheel")
        .then(pl.Series(drawn))
        .otherwise(pl.col("algo"))
    )
    card = algo_scorecard(orders, WINDOW, SETTINGS)
    is_row, vwap, twap = _row(card, "IS"), _row(card, "VWAP"), _row(card, "TWAP")
    assert is_row["wheel_orders"] + vwap["wheel_orders"] == n // 2
    assert twap["wheel_orders"] == 0 and twap["wheel_test"] is None
    assert "not on the wheel: none of the window's 600 wheel orders went to it" in twap["note"]
    assert is_row["wheel_test"].startswith("Hajek")
    best, other = (is_row, vwap) if is_row["wheel_difference_to_best_bps"] == 0 else (vwap, is_row)
    assert best["wheel_difference_to_best_bps_ci_low"] is None
    assert other["wheel_difference_to_best_bps"] > 0
    assert other["wheel_difference_to_best_bps_ci_low"] is not None
    assert other["wheel_orders_needed"] is not None

"""The algo wheel's unbiased comparison (`algos.wheel`): Hajek inverse-propensity weighting with
a cluster-robust interval, checked by hand, for coverage of the true difference and for the
bias it removes; the sample size of the power calculation, by hand and by simulation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.stats import binom
from scipy.stats import t as student_t

from eqs_pipeline.algos.frames import WEIGHT
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.algos.wheel import COLUMNS, METRIC, orders_needed, wheel_comparison

SETTINGS = AlgoSettings()
ARMS = ("A", "B", "C")
# The wheel favours A on volatile days, which cost more whatever the algo: a plain mean makes A
# look worse than it is.
PROBS = {"calm": (0.2, 0.4, 0.4), "volatile": (0.6, 0.2, 0.2)}
DAY_COST = {"calm": 5.0, "volatile": 15.0}


@dataclass(frozen=True)
class Wheel:
    """Wheel orders (the columns the comparison reads) and each order's true expected cost
    under every arm (`truth`: orders x arms)."""

    orders: pl.DataFrame
    truth: np.ndarray

    def true_difference(self, arm: str, best: str) -> float:
        """Notional-weighted mean over the wheel orders of true cost (arm) - true cost (best)."""
        n = self.orders[WEIGHT].to_numpy()
        a, b = ARMS.index(arm), ARMS.index(best)
        return float(np.sum(n * (self.truth[:, a] - self.truth[:, b])) / n.sum())

    def true_mean(self, arm: str) -> float:
        n = self.orders[WEIGHT].to_numpy()
        return float(np.sum(n * self.truth[:, ARMS.index(arm)]) / n.sum())


def wheel_desk(
    seed: int,
    days: int = 10,
    symbols: int = 8,
    per_cluster: int = 5,
    effects: tuple[float, float, float] = (0.0, 3.0, 6.0),
) -> Wheel:
    """A wheel of three arms over days x symbols clusters of `per_cluster` orders. True cost
    of order i under arm a: its day's cost + its own difficulty + the arm's effect (B's twice
    as large on volatile days: heterogeneous); realized: that plus a shock shared by the
    symbol-day (sd 4) and the order's own noise (sd 8). Odd days are volatile."""
    rng = np.random.default_rng(seed)
    n = days * symbols * per_cluster
    day = np.repeat(np.arange(days), symbols * per_cluster)
    cluster = np.repeat(np.arange(days * symbols), per_cluster)
    volatile = day % 2 == 1
    probs = np.where(volatile[:, None], PROBS["volatile"], PROBS["calm"])
    arm = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    own = rng.gamma(2.0, 2.0, n)
    base = np.where(volatile, DAY_COST["volatile"], DAY_COST["calm"]) + own
    effect = np.tile(np.array(effects), (n, 1))
    effect[:, 1] *= np.where(volatile, 2.0, 1.0)
    truth = base[:, None] + effect
    shock = rng.normal(0.0, 4.0, days * symbols)[cluster]
    realized = truth[np.arange(n), arm] + shock + rng.normal(0.0, 8.0, n)
    start = date(2024, 3, 4)
    orders = pl.DataFrame(
        {
            "trade_date": [start + timedelta(days=int(d)) for d in day],
            "algo": np.array(ARMS)[arm],
            "allocation": "wheel",
            "allocation_prob": probs[np.arange(n), arm],
            WEIGHT: rng.lognormal(11.0, 0.8, n),
            METRIC: realized,
            "cluster": [f"c{g}" for g in cluster],
        }
    )
    return Wheel(orders, truth)


def _row(frame: pl.DataFrame, algo: str) -> dict:
    return frame.filter(pl.col("algo") == algo).row(0, named=True)


def _cr2_influences(frame: pl.DataFrame) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Hajek means and CR2 cluster influences written from the textbook: weights w = N / p,
    algo dummies X, Y = sqrt(w) X, u = sqrt(w) (y - mean of its algo), per cluster
    e*_g = (I - Y_g (Y'Y)^-1 Y_g')^(-1/2) u_g and IF_g = (Y'Y)^-1 Y_g' e*_g."""
    w = (frame[WEIGHT] / frame["allocation_prob"]).to_numpy()
    y = frame[METRIC].to_numpy()
    algos = sorted(set(frame["algo"]))
    x = np.stack([(frame["algo"] == a).to_numpy().astype(float) for a in algos], axis=1)
    big_y = np.sqrt(w)[:, None] * x
    m_inv = np.linalg.inv(big_y.T @ big_y)
    means = m_inv @ big_y.T @ (np.sqrt(w) * y)
    u = np.sqrt(w) * (y - x @ means)
    clusters = frame["cluster"].to_numpy()
    influences = []
    for g in sorted(set(clusters)):
        rows = clusters == g
        y_g = big_y[rows]
        lam, vec = np.linalg.eigh(np.eye(rows.sum()) - y_g @ m_inv @ y_g.T)
        e_star = vec @ np.diag(lam**-0.5) @ vec.T @ u[rows]
        influences.append(m_inv @ y_g.T @ e_star)
    table = np.array(influences)  # clusters x algos
    return dict(zip(algos, means, strict=True)), {a: table[:, j] for j, a in enumerate(algos)}


def _t_interval(estimate: float, influence: np.ndarray) -> tuple[float, float]:
    """estimate +/- t(G* - 1) sqrt(sum IF^2), G* = (sum IF^2)^2 / sum IF^4 capped at G."""
    s2, s4 = (influence**2).sum(), (influence**4).sum()
    df = min(max(s2**2 / s4 - 1, 1.0), influence.size - 1)
    half = student_t.ppf(0.975, df) * math.sqrt(s2)
    return estimate - half, estimate + half


def test_hajek_mean_and_its_cluster_sandwich_by_hand() -> None:
    """Seven wheel orders, three clusters: the estimate is Hajek's ratio, the interval the
    CR2 sandwich of its linearization with t of the effective clusters, computed here with
    numpy."""
    orders = pl.DataFrame(
        {
            "trade_date": [date(2024, 3, 4)] * 7,
            "algo": ["A", "A", "B", "A", "B", "B", "A"],
            "allocation": ["wheel"] * 7,
            "allocation_prob": [0.5, 0.25, 0.5, 0.5, 0.75, 0.5, 0.25],
            WEIGHT: [100.0, 200.0, 100.0, 300.0, 100.0, 200.0, 100.0],
            METRIC: [4.0, 10.0, 7.0, 2.0, 9.0, 5.0, 6.0],
            "cluster": ["g1", "g1", "g1", "g2", "g2", "g3", "g3"],
        }
    )
    out = wheel_comparison(orders, SETTINGS)
    means, influence = _cr2_influences(orders)
    # A by hand: weights N / p = 200, 800, 600, 400; sum w y / sum w = (200 x 4 + 800 x 10 +
    # 600 x 2 + 400 x 6) / 2000 = 6.2. B: weights 200, 133.3, 400: (200 x 7 + 133.3 x 9 +
    # 400 x 5) / 733.3 = 4600 / 733.3 = 6.27: A is the best.
    assert means["A"] == pytest.approx(6.2) and means["B"] == pytest.approx(4600 / (2200 / 3))
    for algo in ("A", "B"):
        row = _row(out, algo)
        low, high = _t_interval(means[algo], influence[algo])
        assert row[f"wheel_{METRIC}"] == pytest.approx(means[algo], rel=1e-12)
        assert row[f"wheel_{METRIC}_ci_low"] == pytest.approx(low, rel=1e-9)
        assert row[f"wheel_{METRIC}_ci_high"] == pytest.approx(high, rel=1e-9)
    b = _row(out, "B")
    low, high = _t_interval(means["B"] - means["A"], influence["B"] - influence["A"])
    assert b["wheel_difference_to_best_bps"] == pytest.approx(means["B"] - 6.2)
    assert b["wheel_difference_to_best_bps_ci_low"] == pytest.approx(low, rel=1e-9)
    assert b["wheel_difference_to_best_bps_ci_high"] == pytest.approx(high, rel=1e-9)
    a = _row(out, "A")
    assert a["wheel_difference_to_best_bps"] == 0.0
    assert a["wheel_difference_to_best_bps_ci_low"] is None and a["wheel_orders_needed"] is None
    assert a["wheel_orders"] == 4 and b["wheel_orders"] == 3
    assert "Hajek" in b["wheel_test"] and "best, A" in b["wheel_test"]


def test_an_order_without_a_probability_is_one_of_the_days_equally_likely_arms() -> None:
    """Day 1 drew A and B (an order without a probability: 1/2), day 2 A, B and C (1/3)."""
    base = {
        "algo": ["A", "B", "A", "B", "C"],
        "allocation": ["wheel"] * 5,
        "trade_date": [date(2024, 3, 4)] * 2 + [date(2024, 3, 5)] * 3,
        WEIGHT: [1.0, 1.0, 1.0, 1.0, 1.0],
        METRIC: [2.0, 3.0, 8.0, 5.0, 1.0],
        "cluster": ["x", "y", "x2", "y2", "z2"],
    }
    implied = pl.DataFrame({**base, "allocation_prob": [None, 0.5, 1 / 3, 1 / 3, 1 / 3]})
    stated = pl.DataFrame({**base, "allocation_prob": [0.5, 0.5, 1 / 3, 1 / 3, 1 / 3]})
    missing = wheel_comparison(implied, SETTINGS)
    given = wheel_comparison(stated, SETTINGS)
    # A: weights 2 and 3, (2 x 2 + 3 x 8) / 5 = 5.6 either way.
    assert _row(missing, "A")[f"wheel_{METRIC}"] == pytest.approx(5.6)
    assert missing.drop("wheel_test").equals(given.drop("wheel_test"))
    assert "1 wheel order without a probability" in missing["wheel_test"][0]


def test_discretionary_orders_are_not_on_the_wheel() -> None:
    wheel = wheel_desk(1).orders
    mixed = pl.concat([wheel, wheel.with_columns(allocation=pl.lit("discretionary"))])
    # Equal to rounding: the parallel sums add the same rows in another order.
    assert_frame_equal(wheel_comparison(mixed, SETTINGS), wheel_comparison(wheel, SETTINGS))
    none = wheel_comparison(wheel.with_columns(allocation=pl.lit(None, pl.String)), SETTINGS)
    assert none.height == 0 and none.columns == ["algo", *COLUMNS]


def test_intervals_cover_the_true_difference_at_the_nominal_rate() -> None:
    """200 seeds of a wheel with unequal, day-dependent probabilities, heterogeneous effects
    and symbol-day shocks: the 95% intervals of each arm's difference to the best cover the
    true difference (the notional-weighted mean over the wheel orders of the true cost
    difference) at about 95%, within the binomial band of 400 intervals."""
    covered, total, best_a = 0, 0, 0
    for seed in range(200):
        wheel = wheel_desk(seed)
        out = wheel_comparison(wheel.orders, SETTINGS)
        best = out.filter(pl.col("wheel_difference_to_best_bps") == 0)["algo"].item()
        best_a += best == "A"
        for row in out.filter(pl.col("algo") != best).iter_rows(named=True):
            truth = wheel.true_difference(row["algo"], best)
            low = row["wheel_difference_to_best_bps_ci_low"]
            high = row["wheel_difference_to_best_bps_ci_high"]
            covered += low <= truth <= high
            total += 1
    assert best_a >= 190  # the difference to the best is mostly B - A and C - A
    low, high = binom.ppf([0.0005, 0.9995], total, 0.95) / total
    assert low <= covered / total <= high, (covered, total, low, high)


def test_inverse_propensity_weights_remove_the_bias_of_a_plain_mean() -> None:
    """A is drawn more often on the expensive days: its plain notional-weighted mean is too
    high by several bps, the Hajek mean is on its true mean (within a few standard errors of
    the mean over 100 seeds)."""
    ipw_error, plain_error = [], []
    for seed in range(100):
        wheel = wheel_desk(seed)
        out = wheel_comparison(wheel.orders, SETTINGS)
        truth = wheel.true_mean("A")
        ipw_error.append(_row(out, "A")[f"wheel_{METRIC}"] - truth)
        plain = wheel_comparison(wheel.orders.with_columns(allocation_prob=pl.lit(0.5)), SETTINGS)
        plain_error.append(_row(plain, "A")[f"wheel_{METRIC}"] - truth)
    ipw, naive = np.array(ipw_error), np.array(plain_error)
    assert abs(ipw.mean()) < 3 * ipw.std() / math.sqrt(ipw.size)
    # Probability of a volatile day among A's orders: 0.75 against 0.5: + about 2.5 bps.
    assert naive.mean() > 2.0


def test_orders_needed_by_hand() -> None:
    # n ((c + z_0.8) se / d)^2 - n = 400 ((1.959964 + 0.841621) x 1.5 / 2)^2 - 400
    # = 400 x 2.101189^2 - 400 = 1765.998 - 400 = 1365.998, so 1366 more orders.
    assert orders_needed(400, 2.0, 1.5, 1.959964, 0.8) == 1366
    assert orders_needed(400, -2.0, 1.5, 1.959964, 0.8) == 1366  # the sign does not matter
    assert orders_needed(400, 2.0, 0.5, 1.959964, 0.8) == 0  # separated: 2 > 1.96 x 0.5
    assert orders_needed(400, 0.0, 1.5, 1.959964, 0.8) is None  # equal: no n separates
    assert orders_needed(400, 2.0, float("nan"), 1.959964, 0.8) is None


def test_the_wheel_scorecard_reports_the_orders_needed_for_its_own_difference() -> None:
    """On small wheels (4 days), each arm's orders needed follow from its difference to the
    best, its textbook CR2 standard error and t of the effective clusters: 0 where the
    interval excludes 0, else n ((t + z_0.8) se / d)^2 - n, rounded up."""
    z_power = 0.8416212335729143  # the standard normal's 80% quantile
    separated = pending = 0
    for seed in range(3, 8):
        orders = wheel_desk(seed, days=4, effects=(0.0, 1.0, 6.0)).orders
        out = wheel_comparison(orders, SETTINGS)
        means, influence = _cr2_influences(orders)
        best = min(means, key=means.get)
        for algo in set(means) - {best}:
            d = means[algo] - means[best]
            contrast = influence[algo] - influence[best]
            low, high = _t_interval(d, contrast)
            se = math.sqrt((contrast**2).sum())
            crit = (high - d) / se
            row = _row(out, algo)
            assert row["wheel_difference_to_best_bps_ci_low"] == pytest.approx(low, rel=1e-9)
            if low > 0:
                assert row["wheel_orders_needed"] == 0
                separated += 1
            else:
                n = orders.height
                expected = math.ceil(n * ((crit + z_power) * se / d) ** 2 - n)
                assert row["wheel_orders_needed"] == expected > 0
                pending += 1
    assert separated and pending


def test_at_the_computed_sample_size_the_difference_is_separated_at_the_power() -> None:
    """A large pilot (200 days) gives the standard error; with the pilot's true difference of
    B - A, the orders needed (rounded up to whole days) separate B from A in about 80% of 200
    fresh wheels of that size."""
    effects = (0.0, 2.5, 12.0)  # B: 2.5 bps on calm days, 5 on volatile ones
    wheel = wheel_desk(10_000, days=200, effects=effects)
    n = wheel.orders.height
    means, influence = _cr2_influences(wheel.orders)
    contrast = influence["B"] - influence["A"]
    se = math.sqrt((contrast**2).sum())
    d = means["B"] - means["A"]
    crit = (_t_interval(d, contrast)[1] - d) / se
    # The pilot separates B at once (0 more orders): ask for the orders needed from 5 days
    # (200 orders), at whose size the same se scales by sqrt(n / 200).
    small = 200
    more = orders_needed(
        small, wheel.true_difference("B", "A"), se * math.sqrt(n / small), crit, 0.8
    )
    days = math.ceil((small + more) / (8 * 5))
    assert 10 <= days <= 40, days  # the effects were chosen for a size the check can afford
    separated = 0
    for seed in range(200):
        out = wheel_comparison(wheel_desk(seed, days=days, effects=effects).orders, SETTINGS)
        low = _row(out, "B")["wheel_difference_to_best_bps_ci_low"]
        separated += low is not None and low > 0
    low, high = binom.ppf([0.0005, 0.9995], 200, 0.8) / 200
    assert low <= separated / 200 <= high, (separated, days)

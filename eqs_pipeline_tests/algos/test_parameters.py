"""Parameter curves (`algos.parameters`) on synthetic orders with a known urgency effect,
confounded with volatility (urgent orders come on volatile days), and on the designed desk."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.algos.frames import WEIGHT, with_difficulty
from eqs_pipeline.algos.parameters import (
    PARAMETER_COLUMNS,
    PARAMETERS,
    VALUE,
    algo_parameters,
    parameter_levels,
)
from eqs_pipeline.algos.selection import algo_selection
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.tables.algo_choice import ALGO_PARAMETERS
from eqs_pipeline.tables.schemas import schema
from eqs_pipeline_tests.algos.choice_desk import choice_desk

WINDOW = (date(2026, 3, 2), date(2026, 3, 27), 20)
URGENCY_EFFECT = {"LOW": 0.0, "MEDIUM": 4.0, "HIGH": 10.0}
VOLATILITY_EFFECT = {"calm": 0.0, "normal": 6.0, "volatile": 18.0}
SIZE_EFFECT = {"small": 0.0, "medium": 3.0, "large": 8.0}
HARD = 10.0


def synthetic_orders(seed: int, urgency_effect: dict[str, float], n: int = 6000) -> pl.DataFrame:
    """Orders of two algos and two difficulty buckets whose shortfall is additive: 3 bps, the
    size, volatility and urgency effects, 10 bps when hard, a shock shared by the orders of
    one cluster (sd 4) and noise (sd 12). HIGH urgency is far more common on volatile orders,
    so the raw urgency curve is steeper than the true one."""
    rng = np.random.default_rng(seed)
    pick = lambda values, p=None: np.asarray(values)[rng.choice(len(values), n, p=p)]  # noqa: E731
    volatility = pick(list(VOLATILITY_EFFECT))
    p_high = np.select([volatility == "volatile", volatility == "calm"], [0.6, 0.1], 0.3)
    u = rng.random(n)
    urgency = np.where(u < p_high, "HIGH", np.where(u < p_high + 0.4, "MEDIUM", "LOW"))
    size = pick(list(SIZE_EFFECT))
    algo, difficulty = pick(["A", "B"]), pick(["easy", "hard"])
    cluster = rng.integers(0, n // 5, n)
    shock = rng.normal(0.0, 4.0, n // 5)[cluster]
    mean = (
        3.0
        + np.vectorize(SIZE_EFFECT.get)(size)
        + np.vectorize(VOLATILITY_EFFECT.get)(volatility)
        + np.vectorize(urgency_effect.get)(urgency)
        + np.where(difficulty == "hard", HARD, 0.0)
    )
    arrival = datetime(2026, 3, 2, 15, tzinfo=UTC)
    minutes = rng.choice([10.0, 60.0, 240.0], n)
    return pl.DataFrame(
        {
            "trade_date": [WINDOW[0]] * n,
            "order_id": [f"o{i}" for i in range(n)],
            "algo": algo,
            "difficulty_bucket": difficulty,
            "size_bucket": size,
            "volatility_bucket": volatility,
            "spread_bucket": pick(["tight", "normal", "wide"]),
            "time_bucket": pick(["open", "midday", "close"]),
            "urgency_level": urgency,
            "cluster": [f"c{c}" for c in cluster],
            WEIGHT: np.exp(rng.normal(13.0, 1.0, n)),
            VALUE: mean + shock + rng.normal(0.0, 12.0, n),
            "target_participation": np.where(algo == "B", pick([0.05, 0.1, 0.2]), np.nan),
            "arrival_ts": [arrival] * n,
            "end_ts": [arrival + timedelta(minutes=float(m)) for m in minutes],
            "order_type": pick(["MARKET", "LIMIT"]),
            "side_sign": pick([1, -1]),
            "arrival_mid": np.full(n, 100.0),
            "arrival_spread_bps": np.full(n, 10.0),
        }
    ).with_columns(
        pl.col("target_participation").fill_nan(None),
        # LIMIT orders: half 2 bps through the mid (passive), half 20 bps (aggressive).
        limit_price=pl.when(pl.col("order_type") == "LIMIT").then(
            100.0 * (1 + pl.col("side_sign") * pl.int_range(pl.len()).mod(2) * 18e-4 + 2e-4)
        ),
    )


def _truth(frame: pl.DataFrame) -> pl.DataFrame:
    """Per algo x bucket x urgency, the true adjusted shortfall: the model at the group's
    pooled (notional-weighted) mix of sizes and volatilities, at the urgency."""
    w = pl.col(WEIGHT)
    mixed = frame.group_by("algo", "difficulty_bucket").agg(
        base=(
            (
                pl.col("size_bucket").replace_strict(SIZE_EFFECT)
                + pl.col("volatility_bucket").replace_strict(VOLATILITY_EFFECT)
            )
            * w
        ).sum()
        / w.sum()
    )
    levels = pl.DataFrame({"level": list(URGENCY_EFFECT), "effect": list(URGENCY_EFFECT.values())})
    return mixed.join(levels, how="cross").with_columns(
        truth=3.0
        + pl.col("base")
        + pl.col("effect")
        + pl.when(pl.col("difficulty_bucket") == "hard").then(HARD).otherwise(0.0)
    )


def test_the_urgency_curve_recovers_the_designed_effect() -> None:
    frame = synthetic_orders(11, URGENCY_EFFECT)
    curves = algo_parameters(frame, WINDOW, AlgoSettings())
    urgency = curves.filter(pl.col("parameter") == "urgency").join(
        _truth(frame), on=["algo", "difficulty_bucket", "level"]
    )
    assert urgency.height == 12
    covered = (pl.col(f"{VALUE}_ci_low") <= pl.col("truth")) & (
        pl.col("truth") <= pl.col(f"{VALUE}_ci_high")
    )
    assert urgency.select(covered.all()).item()
    # The raw curve is confounded with volatility: HIGH looks 5 bps or more worse than it is.
    by_level = urgency.pivot(
        "level", index=["algo", "difficulty_bucket"], values=[VALUE, f"{VALUE}_unadjusted"]
    )
    adjusted = by_level[f"{VALUE}_HIGH"] - by_level[f"{VALUE}_LOW"]
    raw = by_level[f"{VALUE}_unadjusted_HIGH"] - by_level[f"{VALUE}_unadjusted_LOW"]
    assert ((adjusted - 10.0).abs() < 3.0).all()
    assert (raw - 10.0 > 5.0).all()


def test_a_significantly_better_level_is_recommended() -> None:
    frame = synthetic_orders(11, URGENCY_EFFECT)
    urgency = algo_parameters(frame, WINDOW, AlgoSettings()).filter(
        pl.col("parameter") == "urgency"
    )
    groups = urgency.group_by("algo", "difficulty_bucket").agg(
        pl.col("recommended_level").first(),
        pl.col("expected_saving_bps").first(),
        pl.col("best_saving_ci_low").first(),
        pl.col("best_saving_ci_high").first(),
        true_saving=(pl.col("share") * pl.col("level").replace_strict(URGENCY_EFFECT)).sum(),
    )
    assert (groups["recommended_level"] == "LOW").all()
    assert (
        groups.select(
            (pl.col("best_saving_ci_low") <= pl.col("true_saving"))
            & (pl.col("true_saving") <= pl.col("best_saving_ci_high"))
            & (pl.col("best_saving_ci_low") > 0)
        )
        .to_series()
        .all()
    )


def test_no_recommendation_without_a_significant_difference() -> None:
    flat = {level: 0.0 for level in URGENCY_EFFECT}
    curves = algo_parameters(synthetic_orders(11, flat), WINDOW, AlgoSettings())
    assert curves["recommended_level"].is_null().all()
    assert curves["expected_saving_bps"].is_null().all()
    urgency = curves.filter(pl.col("parameter") == "urgency")
    assert urgency["best_level"].is_not_null().all()
    assert urgency["note"].str.contains("does not lie above 0").all()


def test_rows_levels_and_notes() -> None:
    frame = synthetic_orders(5, URGENCY_EFFECT, n=3000)
    curves = algo_parameters(frame, WINDOW, AlgoSettings())
    assert curves.columns == list(PARAMETER_COLUMNS)
    schema(ALGO_PARAMETERS).validate(curves, lazy=True)
    assert set(curves["parameter"]) == set(PARAMETERS)
    shares = curves.group_by("algo", "difficulty_bucket", "parameter").agg(pl.col("share").sum())
    assert (shares["share"] - 1.0).abs().max() < 1e-9
    # Every order of a group is on each of its curves.
    totals = curves.group_by("algo", "difficulty_bucket", "parameter").agg(pl.col("orders").sum())
    per_group = totals.group_by("algo", "difficulty_bucket").agg(pl.col("orders").n_unique())
    assert (per_group["orders"] == 1).all()
    assert totals.filter(pl.col("parameter") == "urgency")["orders"].sum() == frame.height
    # Algo A never sets a target: its participation curve has one level, and says so.
    a_target = curves.filter(
        (pl.col("algo") == "A") & (pl.col("parameter") == "target_participation")
    )
    assert set(a_target["level"]) == {"none"}
    assert a_target["note"].str.contains("fewer than two levels").all()
    # The urgency curve does not control for urgency; the others do.
    words = dict(curves.select("parameter", "adjusted_for").unique().iter_rows())
    assert "urgency" not in words["urgency"] and "urgency" in words["duration"]


def test_a_group_with_fewer_than_min_orders_gets_no_curve() -> None:
    """Below min_orders a group keeps its levels' raw figures, without adjusted ones."""
    frame = synthetic_orders(5, URGENCY_EFFECT, n=3000)
    sizes = frame.group_by("algo", "difficulty_bucket").len()
    small = sizes.sort("len").row(0, named=True)
    settings = AlgoSettings(min_orders=small["len"] + 1)
    curves = algo_parameters(frame, WINDOW, settings)
    group = curves.filter(
        (pl.col("algo") == small["algo"])
        & (pl.col("difficulty_bucket") == small["difficulty_bucket"])
    )
    assert group.height and group["implementation_shortfall_bps"].is_null().all()
    assert group["implementation_shortfall_bps_unadjusted"].is_not_null().all()
    assert group["note"].str.starts_with(f"no curve: {small['len']} orders").all()
    schema(ALGO_PARAMETERS).validate(curves, lazy=True)


def test_parameter_levels() -> None:
    arrival = datetime(2026, 3, 2, 15, tzinfo=UTC)
    rows = pl.DataFrame(
        {
            "urgency_level": ["HIGH", "unknown", "LOW", "LOW", "LOW"],
            "target_participation": [None, 0.05, 0.08, 0.2, None],
            "arrival_ts": [arrival] * 5,
            "end_ts": [arrival + timedelta(minutes=m) for m in (10, 30, 119, 500)] + [None],
            "order_type": ["MARKET", "LIMIT", "LIMIT", "LIMIT", "LIMIT"],
            "side_sign": [1, 1, -1, -1, 1],
            "arrival_mid": [100.0, 100.0, 100.0, 100.0, None],
            "arrival_spread_bps": [10.0, 10.0, 10.0, 10.0, None],
            # buy 4 bps through (< half spread), sell 6 bps through, sell 4 bps the wrong way.
            "limit_price": [None, 100.04, 99.94, 100.04, 101.0],
        }
    )
    levels = rows.select(**parameter_levels(AlgoSettings()))
    assert levels["urgency"].to_list() == ["HIGH", "unknown", "LOW", "LOW", "LOW"]
    assert levels["target_participation"].to_list() == ["none", "low", "medium", "high", "none"]
    assert levels["duration"].to_list() == ["short", "medium", "medium", "long", "unknown"]
    assert levels["limit_aggressiveness"].to_list() == [
        "market",
        "passive",
        "aggressive",
        "passive",
        "unknown",
    ]


def test_curves_on_the_designed_desk_validate() -> None:
    """On the designed desk the instructions move together (IS's target is set by its
    urgency): such curves have no estimates, and say why."""
    desk = choice_desk()
    selection = algo_selection(
        desk.orders, desk.instruments, desk.artifact, desk.support, desk.settings
    )
    orders = with_difficulty(desk.orders, selection.difficulty_bps, desk.settings)
    curves = algo_parameters(orders, WINDOW, desk.settings)
    schema(ALGO_PARAMETERS).validate(curves, lazy=True)
    is_target = curves.filter(
        (pl.col("algo") == "IS") & (pl.col("parameter") == "target_participation")
    )
    assert is_target[VALUE].is_null().all()
    assert is_target["note"].str.contains("cannot be told apart").all()


def test_curves_bucket_by_the_base_difficulty() -> None:
    frame = synthetic_orders(5, URGENCY_EFFECT, n=2000)
    # Every order "easy" by its own difficulty, "hard" by its base difficulty.
    base = pl.Series([20.0] * frame.height)
    curves = algo_parameters(
        frame.with_columns(difficulty_bucket=pl.lit("easy")), WINDOW, AlgoSettings(), base
    )
    assert set(curves["difficulty_bucket"]) == {"hard"}
    with pytest.raises(ValueError, match="base_difficulty_bps has 3 values"):
        algo_parameters(frame, WINDOW, AlgoSettings(), base.head(3))


@pytest.mark.parametrize(("method", "words"), [("cr1", "CR1"), ("conditional", "CR2")])
def test_both_interval_methods_run(method: str, words: str) -> None:
    curves = algo_parameters(
        synthetic_orders(3, URGENCY_EFFECT, n=2000), WINDOW, AlgoSettings(ci_method=method)
    )
    urgency = curves.filter(pl.col("parameter") == "urgency")
    assert urgency[f"{VALUE}_ci_low"].is_not_null().all()
    assert words in curves["test"][0]

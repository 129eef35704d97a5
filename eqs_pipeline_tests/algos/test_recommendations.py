"""The recommended algo mix (`algos.recommendations`): on the designed desk its figures add up
to the selection's; on synthetic orders with a known algo effect, the realized evidence finds
the saving the recommended mix truly makes."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.algos.frames import WEIGHT, with_difficulty
from eqs_pipeline.algos.recommendations import (
    ALL,
    RECOMMENDATION_COLUMNS,
    algo_recommendations,
)
from eqs_pipeline.algos.selection import algo_selection
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.tables.algo_choice import ALGO_RECOMMENDATIONS
from eqs_pipeline.tables.schemas import schema
from eqs_pipeline_tests.algos.choice_desk import ChoiceDesk, choice_desk

KEY = ["trade_date", "order_id"]
DAYS = 6


@pytest.fixture(scope="module")
def desk() -> ChoiceDesk:
    return choice_desk()


def _window(orders: pl.DataFrame) -> tuple[date, date, int]:
    return orders["trade_date"].min(), orders["trade_date"].max(), DAYS


def _recommend(desk: ChoiceDesk, with_model: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    artifact = desk.artifact if with_model else None
    selection = algo_selection(desk.orders, desk.instruments, artifact, desk.support, desk.settings)
    orders = with_difficulty(desk.orders, selection.difficulty_bps, desk.settings)
    table = algo_recommendations(orders, selection.frame, _window(orders), desk.settings)
    return table, selection.frame.join(orders.select(*KEY, "difficulty_bucket"), on=KEY)


def test_mixes_and_savings_add_up(desk: ChoiceDesk) -> None:
    table, selection = _recommend(desk)
    assert table.columns == list(RECOMMENDATION_COLUMNS)
    schema(ALGO_RECOMMENDATIONS).validate(table, lazy=True)
    algos = table.filter(pl.col("algo").is_not_null())
    shares = algos.group_by("difficulty_bucket").agg(
        pl.col("current_share").sum(), pl.col("recommended_share").sum()
    )
    assert (shares["current_share"] - 1).abs().max() < 1e-9
    assert (shares["recommended_share"] - 1).abs().max() < 1e-9
    buckets = table.filter(pl.col("algo").is_null())
    assert buckets["difficulty_bucket"].to_list() == ["easy", "medium", "hard", ALL]
    monthly = algos.group_by("difficulty_bucket").agg(pl.col("expected_saving_per_month").sum())
    joined = buckets.join(monthly, on="difficulty_bucket", suffix="_algos")
    gap = joined["expected_saving_per_month"] - joined["expected_saving_per_month_algos"]
    assert (gap.abs() / joined["expected_saving_per_month"].abs()).max() < 1e-9

    # The bucket's saving is the selection's, notional-weighted (no recommendation: 0).
    w = pl.col(WEIGHT)
    saving = pl.col("expected_saving_bps").fill_null(0.0)
    expected = selection.group_by("difficulty_bucket").agg(
        bps=(saving * w).sum() / w.sum(),
        month=(saving * w).sum() / 1e4 / DAYS * desk.settings.trading_days_per_month,
        switched=(pl.col("recommended_algo") != pl.col("algo")).sum(),
        orders=pl.len(),
    )
    check = buckets.join(expected, on="difficulty_bucket")
    assert check.height == 3
    assert (check["expected_saving_bps"] - check["bps"]).abs().max() < 1e-9
    assert (
        (check["expected_saving_per_month"] - check["month"]) / check["month"]
    ).abs().max() < 1e-9
    assert (check["switched_orders"] == check["switched"]).all()
    assert (check["orders"] == check["orders_right"]).all()
    desk_row = buckets.filter(pl.col("difficulty_bucket") == ALL).row(0, named=True)
    assert desk_row["orders"] == selection.height
    assert desk_row["current_mix"].startswith("VWAP")
    assert desk_row["recommended_mix"].startswith("DARK")  # the designed cheapest
    assert desk_row["expected_saving_bps"] > 0
    assert desk_row["model_version"] == desk.artifact.version


def test_without_a_model_nothing_is_recommended(desk: ChoiceDesk) -> None:
    table, _ = _recommend(desk, with_model=False)
    schema(ALGO_RECOMMENDATIONS).validate(table, lazy=True)
    buckets = table.filter(pl.col("algo").is_null())
    assert (buckets["note"] == "no recommendation: no cost model in service").all()
    for column in ("recommended_mix", "expected_saving_bps", "evidence_saving_bps"):
        assert table[column].is_null().all()
    assert table.filter(pl.col("algo").is_not_null())["current_share"].is_not_null().all()


def _two_algo_desk(seed: int, n: int = 6000) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    """Orders of X and Y where X costs 8 bps more under every condition (and X gets more of
    the large, costlier orders), and a selection sending every X order to Y. Returns the
    orders, the selection and the extra cost."""
    rng = np.random.default_rng(seed)
    extra = 8.0
    size = np.asarray(["small", "medium", "large"])[rng.integers(0, 3, n)]
    p_x = np.select([size == "large", size == "small"], [0.7, 0.3], 0.5)
    algo = np.where(rng.random(n) < p_x, "X", "Y")
    volatility = np.asarray(["calm", "normal", "volatile"])[rng.integers(0, 3, n)]
    cluster = rng.integers(0, n // 4, n)
    shortfall = (
        2.0
        + np.select([size == "large", size == "medium"], [9.0, 4.0], 0.0)
        + np.select([volatility == "volatile", volatility == "normal"], [12.0, 5.0], 0.0)
        + np.where(algo == "X", extra, 0.0)
        + rng.normal(0.0, 4.0, n // 4)[cluster]
        + rng.normal(0.0, 10.0, n)
    )
    orders = pl.DataFrame(
        {
            "trade_date": [date(2026, 3, 2)] * n,
            "order_id": [f"o{i}" for i in range(n)],
            "algo": algo,
            "difficulty_bucket": np.asarray(["easy", "hard"])[rng.integers(0, 2, n)],
            "size_bucket": size,
            "cluster": [f"c{c}" for c in cluster],
            "conditions": volatility,
            WEIGHT: np.exp(rng.normal(13.0, 0.8, n)),
            "implementation_shortfall_bps": shortfall,
        }
    ).with_columns(pl.col("conditions").cast(pl.Categorical))
    selection = orders.select(
        *KEY,
        recommended_algo=pl.lit("Y"),
        expected_saving_bps=pl.when(pl.col("algo") == "X").then(extra).otherwise(0.0),
        model_version=pl.lit("cm-0123456789abcdef"),
    )
    return orders, selection, extra


def test_the_evidence_finds_the_true_saving() -> None:
    """Moving X's notional to Y truly saves extra x X's notional share: the realized
    evidence's interval covers it although X got the costlier orders, and the model-side
    saving is the selection's."""
    orders, selection, extra = _two_algo_desk(7)
    settings = AlgoSettings(controls=("volatility_bucket",))
    table = algo_recommendations(
        orders, selection, (date(2026, 3, 2), date(2026, 3, 2), 1), settings
    )
    buckets = table.filter(pl.col("algo").is_null())
    truth = (
        orders.group_by("difficulty_bucket")
        .agg(x_share=pl.col(WEIGHT).filter(pl.col("algo") == "X").sum() / pl.col(WEIGHT).sum())
        .with_columns(true_saving=pl.col("x_share") * extra)
    )
    check = buckets.join(truth, on="difficulty_bucket")
    assert check.height == 2
    assert (
        check.select(
            (pl.col("evidence_ci_low") <= pl.col("true_saving"))
            & (pl.col("true_saving") <= pl.col("evidence_ci_high"))
            & (pl.col("evidence_ci_low") > 0)
            & (pl.col("evidence_p_value") < 0.001)
            & ((pl.col("evidence_coverage") - 1.0).abs() < 1e-12)
        )
        .to_series()
        .all()
    )
    assert ((check["expected_saving_bps"] - check["true_saving"]).abs() < 1e-9).all()
    # The raw comparison overstates it: X got the large orders.
    raw = orders.group_by("algo").agg(
        (pl.col("implementation_shortfall_bps") * pl.col(WEIGHT)).sum() / pl.col(WEIGHT).sum()
    )
    raw_gap = raw.filter(pl.col("algo") == "X").item(0, 1) - raw.filter(pl.col("algo") == "Y").item(
        0, 1
    )
    assert raw_gap > extra + 1.0
    everything = buckets.filter(pl.col("difficulty_bucket") == ALL).row(0, named=True)
    assert everything["recommended_mix"] == "Y 100%"
    algos = table.filter((pl.col("difficulty_bucket") == ALL) & pl.col("algo").is_not_null())
    assert algos.filter(pl.col("algo") == "X")["recommended_share"].item() == 0.0
    schema(ALGO_RECOMMENDATIONS).validate(table, lazy=True)


def test_no_evidence_without_comparable_orders() -> None:
    """A recommended algo that no order of a stratum used in the window leaves that stratum
    out of the evidence, and the note says which."""
    orders, selection, _ = _two_algo_desk(7)
    # No Y order among the large ones: moving large X orders to Y has nothing to compare with.
    orders = orders.filter(~((pl.col("size_bucket") == "large") & (pl.col("algo") == "Y")))
    table = algo_recommendations(
        orders, selection, (date(2026, 3, 2), date(2026, 3, 2), 1), AlgoSettings(controls=())
    )
    easy = table.filter((pl.col("difficulty_bucket") == "easy") & pl.col("algo").is_null())
    row = easy.row(0, named=True)
    assert row["evidence_coverage"] < 0.8
    assert "Y (large)" in row["note"]
    assert row["evidence_saving_bps"] is not None

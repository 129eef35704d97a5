"""Difficulty-aware quality score and grade of an order (see docs/METRICS.md, "Quality score").

The cost part of the score is `cost_percentile`: the probability that an order like this one
costs more than this one did. A trained cost model (`costmodel.scoring`) gives it from its
predicted distribution; without one, the formula of a `costmodel.CostModel` (by default the
Almgren et al. (2005) cost of an order of this size, volatility, spread and participation) is
the centre of a logistic (`formula_distribution`). Fill rate and speed are added. All of it is
a pure function of the order's row, the model and the settings, so the same inputs always give
the same grade. An order whose cost cannot be computed has neither score nor grade.
"""

from __future__ import annotations

import math

import polars as pl

from eqs_pipeline.core.settings import ScoreSettings

GRADES = ("excellent", "good", "average", "poor")


def formula_distribution(s: ScoreSettings) -> dict[str, pl.Expr]:
    """The cost distribution of an order priced by a formula (no trained model): a logistic
    centred on `expected_cost_bps` with scale max(|expected|, cost_scale_floor_bps).

    Returns `expected_cost_sd_bps` (the logistic's sd, scale * pi / sqrt(3)),
    `cost_percentile` (the probability that such an order costs more than this one did,
    1 / (1 + exp((IS - expected) / scale))) and `cost_z` ((IS - expected) / sd).
    """
    scale = pl.max_horizontal(pl.col("expected_cost_bps").abs(), s.cost_scale_floor_bps)
    sd = scale * (math.pi / math.sqrt(3.0))
    gap = pl.col("implementation_shortfall_bps") - pl.col("expected_cost_bps")
    return {
        "expected_cost_sd_bps": pl.when(pl.col("expected_cost_bps").is_not_null()).then(sd),
        "cost_percentile": 1.0 / (1.0 + (gap / scale).exp()),
        "cost_z": gap / sd,
    }


def quality_score(s: ScoreSettings) -> pl.Expr:
    """0-100 composite of cost against expectation (`cost_percentile`), fill rate and speed.

    Null when the cost part cannot be computed (no implementation shortfall or no expected
    cost: no arrival quote, an unfilled order without an end, an unknown instrument): fill rate
    and speed alone cannot judge an order, so it is not graded.
    """
    cost = pl.col("cost_percentile")
    fill = pl.col("fill_rate").clip(0.0, 1.0)
    speed = (
        pl.when(pl.col("filled_qty") > 0)
        .then((-pl.col("time_to_first_fill_s") / s.speed_tau_s).exp())
        .otherwise(0.0)
    )
    total = (s.w_cost * cost + s.w_fill * fill + s.w_speed * speed) / (
        s.w_cost + s.w_fill + s.w_speed
    )
    return pl.when(cost.is_not_null()).then((100.0 * total).clip(0.0, 100.0))


def quality_grade(s: ScoreSettings) -> pl.Expr:
    """excellent / good / average / poor from the score and the configured thresholds; null
    when the score is (the order is not graded). A NaN score gets no grade either: Polars
    orders NaN above every number, so `NaN >= 80` would read as excellent."""
    score = pl.col("quality_score").fill_nan(None)
    return (
        pl.when(score >= s.excellent)
        .then(pl.lit("excellent"))
        .when(score >= s.good)
        .then(pl.lit("good"))
        .when(score >= s.average)
        .then(pl.lit("average"))
        .when(score.is_not_null())
        .then(pl.lit("poor"))
    )

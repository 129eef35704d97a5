"""Difficulty-aware quality score and grade of an order (see docs/METRICS.md, "Quality score").

The expected cost comes from a `costmodel.CostModel` (by default the Almgren et al. (2005) cost of
an order of this size, volatility, spread and participation); the score compares the realized
implementation shortfall with it, then adds fill rate and speed. All of it is a pure function of the order's row and the settings, so the
same inputs always give the same grade. An order whose cost cannot be computed has neither.
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.core.settings import ScoreSettings

GRADES = ("excellent", "good", "average", "poor")


def quality_score(s: ScoreSettings) -> pl.Expr:
    """0-100 composite of cost versus expectation, fill rate and speed.

    Null when the cost part cannot be computed (no implementation shortfall or no expected
    cost: no arrival quote, an unfilled order without an end, an unknown instrument): fill rate
    and speed alone cannot judge an order, so it is not graded.
    """
    scale = pl.max_horizontal(pl.col("expected_cost_bps").abs(), s.cost_scale_floor_bps)
    cost = 1.0 / (
        1.0 + ((pl.col("implementation_shortfall_bps") - pl.col("expected_cost_bps")) / scale).exp()
    )
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

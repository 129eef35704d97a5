"""Price a trade date's orders with a trained cost model (numpy and scipy: no JAX).

`quality.order_quality` prices every order with the formula (`formula_distribution`); where a
promoted model trained on earlier dates is in service, `score_orders` replaces, for each order
the model can price, the expected cost, its sd, `cost_percentile` (from the model's Student-t),
`cost_z` and `expected_cost_source`, then the score and grade that follow from them. It also
returns the rows of `model.cost_predictions`. Orders the model cannot price (no arrival quote,
unknown instrument) keep the formula's figures, and their `null_reason` already says why.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from eqs_pipeline.core.settings import IngestSettings, ScoreSettings
from eqs_pipeline.costmodel import evaluate
from eqs_pipeline.costmodel.artifact import CostModelArtifact
from eqs_pipeline.costmodel.features import TARGET, arrival_features
from eqs_pipeline.quality.scoring import quality_grade, quality_score
from eqs_pipeline.tables.model import BASELINE_PREDICTIONS


def score_orders(
    orders: pl.DataFrame,
    instruments: pl.DataFrame,
    artifact: CostModelArtifact,
    score: ScoreSettings,
    ingest: IngestSettings | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(order_quality rows priced by `artifact` where it can, the model.cost_predictions rows
    of those orders). `orders` are rows of `quality.order_quality`; their order is kept."""
    features = arrival_features(orders, instruments, ingest)
    prediction = artifact.predict(features)
    p = prediction.frame
    priced = p["expected_cost_bps"].is_not_null()
    mean = p["expected_cost_bps"].fill_null(0.0).to_numpy()
    sd = p["expected_cost_sd_bps"].fill_null(1.0).to_numpy()
    shortfall = orders[TARGET]
    known = (priced & shortfall.is_not_null()).to_numpy()
    percentile = pl.Series(
        evaluate.percentile(shortfall.fill_null(0.0).to_numpy(), mean, sd, nu=prediction.nu)
    )
    version = artifact.version
    model = pl.DataFrame(
        {
            "_priced": priced,
            "_mean": p["expected_cost_bps"],
            "_sd": p["expected_cost_sd_bps"],
            "_percentile": percentile.scatter(np.flatnonzero(~known), None),
        }
    )
    gap = pl.col(TARGET) - pl.col("expected_cost_bps")
    columns = orders.columns
    out = (
        pl.concat([orders, model], how="horizontal")
        .with_columns(
            expected_cost_bps=pl.when("_priced").then("_mean").otherwise("expected_cost_bps"),
            expected_cost_sd_bps=pl.when("_priced").then("_sd").otherwise("expected_cost_sd_bps"),
            expected_cost_source=pl.when("_priced")
            .then(pl.lit(version))
            .otherwise("expected_cost_source"),
            cost_percentile=pl.when("_priced").then("_percentile").otherwise("cost_percentile"),
        )
        .with_columns(
            cost_vs_expected_bps=gap,
            cost_z=pl.when("_priced")
            .then(gap / pl.col("expected_cost_sd_bps"))
            .otherwise("cost_z"),
        )
        .with_columns(quality_score=quality_score(score))
        .with_columns(quality_grade=quality_grade(score))
        .select(columns)
    )
    predictions = (
        pl.concat([orders.select("order_id", "trade_date"), p], how="horizontal")
        .filter(priced)
        .select(
            "order_id",
            "trade_date",
            pl.lit(version).alias("model_version"),
            "expected_cost_bps",
            "expected_cost_sd_bps",
            *[f"{b}_expected_cost_bps" for b in BASELINE_PREDICTIONS],
        )
    )
    return out, predictions

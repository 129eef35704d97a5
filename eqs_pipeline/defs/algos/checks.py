"""Sanity checks of the algo tables, returned with each materialization (blocking): every
confidence interval of the scorecards contains its point estimate; the current and the
recommended algo mixes each sum to 1 per difficulty bucket. Failures list the offending rows.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from eqs_pipeline.algos.settings import KEY_METRICS
from eqs_pipeline.defs.checks import rows_check_result

CI_CHECK = "ci_contains_estimate"
SHARES_CHECK = "mixes_sum_to_one"

_DESCRIPTIONS = {
    CI_CHECK: "Every confidence interval contains its point estimate (score and key metrics).",
    SHARES_CHECK: "Current and recommended algo shares each sum to 1 in every difficulty bucket "
    "(the recommended ones where a cost model recommends).",
}
_TOL = 1e-6


def spec(name: str, key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key, blocking=True, description=_DESCRIPTIONS[name])


def ci_result(key: dg.AssetKey, frame: pl.DataFrame) -> dg.AssetCheckResult:
    metrics = [m for m in ("score", *KEY_METRICS) if f"{m}_ci_low" in frame.columns]
    outside = pl.any_horizontal(
        (
            (pl.col(f"{m}_ci_low") > pl.col(m) + _TOL) | (pl.col(m) > pl.col(f"{m}_ci_high") + _TOL)
        ).fill_null(False)
        for m in metrics
    )
    subject = [c for c in ("broker", "algo") if c in frame.columns]
    return rows_check_result(
        CI_CHECK, key, frame.filter(outside).select(*subject, *metrics), frame.height
    )


def shares_result(key: dg.AssetKey, frame: pl.DataFrame) -> dg.AssetCheckResult:
    # The rows of one algo each (a bucket's totals row has a null algo); without a cost model
    # there is no recommended mix (null shares), only the current one.
    sums = (
        frame.filter(pl.col("algo").is_not_null())
        .group_by("difficulty_bucket")
        .agg(
            pl.col("current_share").sum(),
            pl.col("recommended_share").sum(),
            recommended=pl.col("recommended_share").is_not_null().any(),
        )
    )
    bad = sums.filter(
        ((pl.col("current_share") - 1).abs() > _TOL)
        | (pl.col("recommended") & ((pl.col("recommended_share") - 1).abs() > _TOL))
    )
    return rows_check_result(SHARES_CHECK, key, bad.drop("recommended"), sums.height)

"""Sanity checks of the venue tables, returned with each materialization (blocking).

fill rates in [0, 1]; every confidence interval contains its point estimate; the recommended
and the current allocations each sum to 1 per segment. Failures list the offending rows.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from eqs_pipeline.defs.checks import rows_check_result
from eqs_pipeline.venues.settings import KEY_METRICS

FILL_RATE_CHECK = "fill_rate_in_unit_interval"
CI_CHECK = "ci_contains_estimate"
ALLOCATION_CHECK = "allocations_sum_to_one"

_DESCRIPTIONS = {
    FILL_RATE_CHECK: "Every fill rate lies in [0, 1].",
    CI_CHECK: "Every confidence interval contains its point estimate (score and key metrics).",
    ALLOCATION_CHECK: "Current and recommended shares each sum to 1 in every segment.",
}
_TOL = 1e-6


def spec(name: str, key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key, blocking=True, description=_DESCRIPTIONS[name])


def fill_rate_result(
    key: dg.AssetKey, frame: pl.DataFrame, columns: list[str]
) -> dg.AssetCheckResult:
    outside = pl.any_horizontal(
        ((pl.col(c) < -_TOL) | (pl.col(c) > 1 + _TOL)).fill_null(False) for c in columns
    )
    return rows_check_result(
        FILL_RATE_CHECK, key, frame.filter(outside).select("venue", *columns), frame.height
    )


def ci_result(key: dg.AssetKey, frame: pl.DataFrame) -> dg.AssetCheckResult:
    metrics = ["score", *KEY_METRICS]
    outside = pl.any_horizontal(
        (
            (pl.col(f"{m}_ci_low") > pl.col(m) + _TOL) | (pl.col(m) > pl.col(f"{m}_ci_high") + _TOL)
        ).fill_null(False)
        for m in metrics
    )
    return rows_check_result(
        CI_CHECK, key, frame.filter(outside).select("venue", *metrics), frame.height
    )


def allocation_result(key: dg.AssetKey, frame: pl.DataFrame) -> dg.AssetCheckResult:
    sums = frame.group_by("liquidity_bucket", "size_bucket").agg(
        pl.col("current_share").sum(), pl.col("recommended_share").sum()
    )
    bad = sums.filter(
        ((pl.col("current_share") - 1).abs() > _TOL)
        | ((pl.col("recommended_share") - 1).abs() > _TOL)
    )
    return rows_check_result(ALLOCATION_CHECK, key, bad, sums.height)

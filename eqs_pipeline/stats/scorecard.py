"""What every scorecard (venues, algos, broker x algo pairs) builds from the adjusted estimates
of its metrics: their columns, the composite score with its interval, the rank tiers of the
subjects that may be ranked, and the note saying why a figure is missing.

A scorecard frame holds one row per subject in its `key` column; the estimates
(`VenueEstimates`, whose tables name the subject `venue`) are matched to it by that key.
docs/VENUES.md, "Score and rank tiers".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from eqs_pipeline.stats.inference import (
    Method,
    VenueEstimates,
    combine_influence,
    influence_se,
    influence_t,
)
from eqs_pipeline.stats.tiers import tier_members, tiers


def with_estimates(
    base: pl.DataFrame, estimates: Mapping[str, VenueEstimates], key: str
) -> pl.DataFrame:
    """`base` with `<m>`, `<m>_ci_low` and `<m>_ci_high` of each metric `m` of `estimates`, in
    their order (null for a subject the metric has no estimate of)."""
    for metric, est in estimates.items():
        values = est.table.select(
            pl.col("venue").alias(key),
            pl.col("estimate").alias(metric),
            pl.col("ci_low").alias(f"{metric}_ci_low"),
            pl.col("ci_high").alias(f"{metric}_ci_high"),
        )
        base = base.join(values, on=key, how="left")
    return base


def with_score(
    base: pl.DataFrame,
    estimates: Mapping[str, VenueEstimates],
    weights: Mapping[str, float],
    key: str,
    level: float,
    method: Method,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`base` (with the weighted metrics' columns, `with_estimates`) with `score` = sum of
    weight x metric (null where a weighted metric is), its `score_se`, the critical value
    `score_t` and `score_ci_low`, `score_ci_high`; and the score's influences (cluster x
    subject), summed over its metrics cluster by cluster, so their correlation (the same
    orders or fills feed every metric) is in the score's variance."""
    subjects = sorted(base[key].to_list())
    influence = combine_influence(
        [(w, estimates[m].influence) for m, w in weights.items()], subjects
    )
    score = pl.sum_horizontal(pl.col(m) * w for m, w in weights.items())
    any_null = pl.any_horizontal(pl.col(m).is_null() for m in weights)
    se = {s: influence_se(influence, pl.col(s), method) for s in subjects}
    t_crit = {s: influence_t(influence, pl.col(s), level, method) for s in subjects}
    base = base.with_columns(score=pl.when(~any_null).then(score)).with_columns(
        score_se=pl.col(key).replace_strict(se, default=None, return_dtype=pl.Float64),
        score_t=pl.col(key).replace_strict(t_crit, default=None, return_dtype=pl.Float64),
    )
    half = pl.col("score_t") * pl.col("score_se")
    base = base.with_columns(
        score_ci_low=(pl.col("score") - half).fill_nan(None),
        score_ci_high=(pl.col("score") + half).fill_nan(None),
    )
    return base, influence


def with_ranks(
    base: pl.DataFrame,
    influence: pl.DataFrame,
    key: str,
    eligible: pl.Expr,
    level: float,
    method: Method,
) -> pl.DataFrame:
    """`base` (`with_score`) with `rank` (the tier, 1 = best; `tiers.tiers`) and
    `rank_tier_members` (the subjects sharing it) of the subjects with a score, an interval
    for it and `eligible` (enough rows); null for the others."""
    rankable = base.filter(
        pl.col("score").is_not_null() & pl.col("score_se").fill_nan(None).is_not_null() & eligible
    ).select(key, "score")
    ranked = tiers(rankable, influence, key, level, method) if rankable.height else {}
    members = tier_members(ranked)
    return base.with_columns(
        rank=pl.col(key).replace_strict(ranked, default=None, return_dtype=pl.Int32),
        rank_tier_members=pl.col(key).replace_strict(members, default=None, return_dtype=pl.String),
    )


def notes(reasons: Sequence[pl.Expr]) -> pl.Expr:
    """Why figures are missing, in words: each reason that applies (a reason is a text
    expression, null where it does not apply), joined by "; "; null when none does."""
    return pl.concat_str(list(reasons), separator="; ", ignore_nulls=True).replace("", None)


def missing_metrics(metrics: Sequence[str]) -> pl.Expr:
    """The names of `metrics` whose column is null in the row, joined by ", " ("" for none)."""
    return pl.concat_str(
        [pl.when(pl.col(m).is_null()).then(pl.lit(m)) for m in metrics],
        separator=", ",
        ignore_nulls=True,
    )

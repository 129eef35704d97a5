"""Rank tiers from scores and their cluster influences: subjects (venues, algos, broker x algo
pairs) that the data cannot tell apart share a tier.

Subjects are sorted by score; the best opens tier 1 and the next join it while their score is
not significantly below the leader's (the difference's t statistic, from the influences of the
difference, below the critical value of `level`); the first that is significantly below opens
the next tier, so tiers follow the order of the scores. docs/VENUES.md, "Score and rank tiers".
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.stats.inference import Method, influence_se, influence_t


def tiers(
    scores: pl.DataFrame,
    influence: pl.DataFrame,
    key: str,
    level: float,
    method: Method,
) -> dict[str, int]:
    """Each subject's tier (1 = best): `scores` holds the subjects (`key`) with a `score`,
    `influence` one column per subject (`combine_influence`)."""
    ordered = scores.sort("score", key, descending=[True, False])[key].to_list()
    value = dict(zip(scores[key], scores["score"], strict=True))
    tier, rank, leader = {}, 0, None
    for subject in ordered:
        if leader is not None:
            diff = pl.col(leader) - pl.col(subject)
            se = influence_se(influence, diff, method)
            t_crit = influence_t(influence, diff, level, method)
            significant = se > 0 and (value[leader] - value[subject]) / se > t_crit
        if leader is None or significant:
            leader, rank = subject, rank + 1
        tier[subject] = rank
    return tier


def tier_members(tier: dict[str, int]) -> dict[str, str]:
    """Each subject's tier companions, itself included, as "A, B, C"."""
    return {
        s: ", ".join(sorted(u for u, t in tier.items() if t == rank)) for s, rank in tier.items()
    }

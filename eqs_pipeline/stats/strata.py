"""Standardization over strata: each group's mix-adjusted value within each stratum, combined
with the strata's shares of the weight, so that a group is valued on the whole flow even where
its advantage differs from one stratum to another.

One additive group effect (`adjusted_means` with the strata as cells) is a precision-weighted
average of the group's stratum effects, not their average over the flow: when an algo is the
cheapest on small orders and another on large ones, it puts each algo where its precision lies,
not where the desk's notional lies. Within each stratum s the existing estimator runs on the
stratum's rows alone (`within_stratum`: one cell, the controls additive, every group valued at
the stratum's pooled mix), and

    theta_v = sum_s pi_s theta_{v,s},    IF_v(g) = sum_s pi_s IF_{v,s}(g),

pi_s the stratum's share of the weight of the value's rows (known value, positive weight). A
cluster's rows may lie in several strata (one symbol-day holds orders of every size), so the
influences are summed cluster by cluster: the variance, a score summing metrics and a difference
of groups (the tiers) keep their covariances through the existing influence machinery
(`inference`).

The flow is that of the largest comparison group: strata are linked through the groups working
them, as cells are in `groups`, and the strata reached only by groups that share no stratum with
the largest group's are left out (those groups are not comparable, `group` > 0). A group of the
largest comparison group without an estimate in one of its strata (no row there, or a contrast
that the stratum's design cannot identify) cannot be valued on the whole flow: its estimate is
null and `missing` names the strata (`missing_share`: their share of the weight), never a
figure borrowed from the other strata. docs/ALGOS.md, "The statistics".

`stratum_frames`, `within_stratum` and `stratum_influence` are shared with the recommended
mix's evidence (`algos.recommendations`), which combines other contrasts of the same strata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from eqs_pipeline.stats.estimates import adjusted_means_many, adjusted_means_strata
from eqs_pipeline.stats.groups import comparison_groups
from eqs_pipeline.stats.inference import (
    Method,
    VenueEstimates,
    check_method,
    combine_influence,
    effective_df,
    t_quantile,
    t_quantile_df,
)

# A stratum's key: the levels of the strata columns, as text ("small", or "small/HIGH").
StratumKey = tuple[str, ...]


def stratum_label(key: StratumKey) -> str:
    """A stratum's name in words: its levels joined by "/"."""
    return "/".join(key)


def stratum_frames(
    frame: pl.DataFrame, strata: Sequence[str]
) -> list[tuple[StratumKey, pl.DataFrame]]:
    """The frame's rows per stratum (the distinct combinations of the `strata` columns, in the
    order they first appear), each with its key as text."""
    if not strata:
        return [((), frame)]
    parts = frame.partition_by(list(strata), as_dict=True, maintain_order=True)
    return [(tuple(str(level) for level in key), part) for key, part in parts.items()]


def within_stratum(
    frame: pl.DataFrame,
    values: Sequence[str],
    weight: str,
    *,
    venue: str,
    cluster: str,
    controls: str | pl.Expr | None,
    level: float,
    method: Method,
) -> dict[str, VenueEstimates]:
    """Each value's mix-adjusted mean per group on one stratum's rows (`adjusted_means_many`):
    one cell, the `controls` additive, every group at the stratum's pooled mix."""
    return adjusted_means_many(
        frame,
        list(values),
        weight,
        cell=None,
        venue=venue,
        cluster=cluster,
        level=level,
        method=method,
        controls=controls,
    )


def stratum_influence(
    terms: Sequence[tuple[float, Mapping[str, float], pl.DataFrame]],
) -> pl.DataFrame:
    """The cluster influences (`cluster`, `d`) of sum over terms of weight x sum_v c_v theta_v,
    from each term's (weight, the coefficients c of its groups, its stratum's influences),
    summed cluster by cluster (a cluster absent from a stratum adds 0 there)."""
    parts = [
        infl.select(
            "cluster",
            d=pl.sum_horizontal([pl.col(v) * (weight * c) for v, c in coefficients.items()]),
        )
        for weight, coefficients, infl in terms
    ]
    return pl.concat(parts).group_by("cluster").agg(pl.col("d").sum())


@dataclass(frozen=True)
class Stratum:
    """One stratum's estimates of one value: its key, the weight of the value's rows in it
    and the estimates (`within_stratum`)."""

    key: StratumKey
    weight: float
    estimates: VenueEstimates


def stratified_means(
    frame: pl.DataFrame,
    values: Sequence[str],
    weight: str,
    strata: Sequence[str],
    *,
    venue: str,
    cluster: str,
    controls: str | pl.Expr | None,
    level: float,
    method: Method,
) -> dict[str, VenueEstimates]:
    """Each value's mix-adjusted mean per group standardized over the strata (module
    docstring): the estimator of `within_stratum` on each stratum's rows (from one group-by of
    the rows, `adjusted_means_strata`), combined by `standardized` with the strata's shares of
    the value's weight."""
    per_value: dict[str, list[Stratum]] = {v: [] for v in values}
    for key, weights, estimates in adjusted_means_strata(
        frame,
        list(values),
        weight,
        tuple(strata),
        venue=venue,
        cluster=cluster,
        level=level,
        method=method,
        controls=controls,
    ):
        for v, est in estimates.items():
            if weights[v] > 0:
                per_value[v].append(Stratum(key, weights[v], est))
    return {v: standardized(per_value[v], level, method) for v in per_value}


_TABLE_SCHEMA: dict[str, pl.DataType] = {
    "venue": pl.String(),
    "estimate": pl.Float64(),
    "se": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "n": pl.UInt32(),
    "group": pl.UInt32(),
    "peers": pl.UInt32(),
    "missing": pl.String(),
    "missing_share": pl.Float64(),
}


def standardized(strata: Sequence[Stratum], level: float, method: Method) -> VenueEstimates:
    """theta_v = sum_s pi_s theta_{v,s} over the strata of the largest comparison group, with
    its influences, standard error and interval (CR1: G / (G - 1) sum_g IF_g^2 and t(G - 1), G
    the clusters of every stratum; conditional: the strata's CR2 influences and t with the
    combination's effective number of clusters). The table is `VenueEstimates`' with
    `missing` (the strata of the largest group where the group has no estimate, "/"-joined
    levels separated by ", ") and `missing_share` (their share of the weight); a group with
    either, or outside the largest group, has a null estimate and zero influences."""
    check_method(method)
    if not strata:
        return VenueEstimates(
            pl.DataFrame(schema=_TABLE_SCHEMA), pl.DataFrame(schema={"cluster": pl.String}), 0
        )
    tables = [s.estimates.table for s in strata]
    venues = sorted({v for t in tables for v in t["venue"].to_list()})
    index = {v: i for i, v in enumerate(venues)}
    n_s, n_v = len(strata), len(venues)
    theta = np.full((n_s, n_v), np.nan)
    rows = np.zeros((n_s, n_v))
    for s, table in enumerate(tables):
        at = np.array([index[v] for v in table["venue"].to_list()], dtype=np.int64)
        theta[s, at] = table["estimate"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        rows[s, at] = table["n"].cast(pl.Float64).to_numpy()
    weight = np.array([s.weight for s in strata])
    present = rows > 0
    # The strata linked through the groups working them, each stratum weighing its weight.
    links = np.where(present, weight[:, None] / np.maximum(present.sum(axis=1), 1)[:, None], 0.0)
    stratum_group, venue_group = comparison_groups(links)
    reference = stratum_group == 0
    pi = np.where(reference, weight, 0.0) / weight[reference].sum()
    absent = reference[:, None] & ~np.isfinite(theta)  # a stratum of the flow without estimate
    valued = (venue_group == 0) & ~absent.any(axis=0)
    estimate = np.where(
        valued, np.nansum(np.where(absent, 0.0, theta) * pi[:, None], axis=0), np.nan
    )
    influence = combine_influence(
        [(float(p), s.estimates.influence) for p, s in zip(pi, strata, strict=True)], venues
    ).sort("cluster")
    matrix = influence.select(venues).to_numpy() if venues else np.zeros((influence.height, 0))
    matrix = np.where(valued[None, :], matrix, 0.0)
    n_g = influence.height
    if method == "conditional":
        factor = 1.0 if n_g > 1 else np.nan
        t = t_quantile_df(level, effective_df(matrix, n_g))
    else:
        factor = n_g / (n_g - 1) if n_g > 1 else np.nan
        t = t_quantile(level, n_g)
    se = np.where(valued, np.sqrt(factor * (matrix**2).sum(axis=0)), np.nan)
    labels = [stratum_label(s.key) for s in strata]
    missing = [
        ", ".join(labels[s] for s in np.flatnonzero(absent[:, v])) or None
        if venue_group[v] == 0
        else None
        for v in range(n_v)
    ]
    missing_share = np.where(venue_group == 0, (absent * pi[:, None]).sum(axis=0), np.nan)
    peers = np.bincount(venue_group, minlength=int(venue_group.max()) + 1)[venue_group]
    table = pl.DataFrame(
        {
            "venue": venues,
            "estimate": estimate,
            "se": se,
            "ci_low": estimate - t * se,
            "ci_high": estimate + t * se,
            "n": rows.sum(axis=0).astype(np.uint32),
            "group": venue_group.astype(np.uint32),
            "peers": peers.astype(np.uint32),
            "missing": pl.Series(missing, dtype=pl.String),
            "missing_share": missing_share,
        },
        schema=_TABLE_SCHEMA,
    ).with_columns(pl.col("estimate", "se", "ci_low", "ci_high", "missing_share").fill_nan(None))
    influence = pl.DataFrame(influence["cluster"]).with_columns(
        pl.Series(v, matrix[:, i]) for i, v in enumerate(venues)
    )
    return VenueEstimates(table, influence, n_g)

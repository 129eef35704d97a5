"""Intervals from the clusters' influences: standard errors, degrees of freedom, t critical
values, and the published estimates (`VenueEstimates`).

CR1 (`method="cr1"`): var = G / (G - 1) sum_g IF_g^2 with t(G - 1). Conditional
(`method="conditional"`): the influences carry CR2 scores already, var = sum_g IF_g^2, with t of
the venue's effective number of clusters G*_v - 1 (Satterthwaite, capped at G - 1). Influences
are kept per cluster, so sums of metrics (the score) and differences of venues get their
variances with their correlations. docs/VENUES.md, "Confidence intervals".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import polars as pl

# "conditional": CR2 scores of the working model, t with the effective number of clusters;
# "cr1": Liang-Zeger CR1 on the scorecard model's residuals, t(G - 1).
Method = Literal["conditional", "cr1"]
METHODS: tuple[Method, ...] = get_args(Method)

# A venue's interval needs its rows to come from two clusters or more. With one (all its fills
# from one parent order), its own effect absorbs that cluster's deviation, its influence is
# identically zero, and a cluster-robust interval would collapse to a point: the venue would
# look certain on one order's luck. Such a venue keeps its estimate, with no interval.
MIN_VENUE_CLUSTERS = 2
# Venues x clusters at most for which `venue_clusters` marks the pairs in a dense table (one
# byte each) rather than finding the distinct pairs by hashing.
_DENSE_PAIRS = 1 << 28


def check_method(method: str) -> None:
    """Raise unless `method` is one of `METHODS`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")


@dataclass(frozen=True)
class VenueEstimates:
    """Adjusted estimates of one metric: a frame (venue, estimate, se, ci_low, ci_high, n,
    group, peers) and the per-cluster influences (cluster + one column per venue,
    zero-filled)."""

    table: pl.DataFrame
    influence: pl.DataFrame
    clusters: int


def t_quantile(level: float, clusters: int) -> float:
    """Two-sided critical value of the t distribution with clusters - 1 degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(max(clusters - 1, 1), 0.5 + level / 2))


def t_quantile_df(level: float, df: np.ndarray | float) -> np.ndarray:
    """Two-sided critical value of the t distribution with `df` degrees of freedom (>= 1)."""
    from scipy.special import stdtrit

    return stdtrit(np.maximum(df, 1.0), 0.5 + level / 2)


def effective_df(influence: np.ndarray, clusters: int) -> np.ndarray:
    """Satterthwaite degrees of freedom of sum_g IF_g^2 per column: G* - 1, capped at G - 1."""
    squares = influence * influence
    s2 = squares.sum(axis=0)
    s4 = (squares * squares).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_eff = np.where(s4 > 0, s2**2 / np.where(s4 > 0, s4, 1.0), float(clusters))
    return np.clip(g_eff - 1.0, 1.0, max(clusters - 1, 1))


def venue_clusters(venue: np.ndarray, cluster: np.ndarray, n_v: int, n_g: int) -> np.ndarray:
    """How many distinct clusters each venue's rows come from. A table of every (venue,
    cluster) pair, marked where a row has it, when it fits `_DENSE_PAIRS` bytes (20 days of
    10M fills: 10 venues x 209k clusters, 2 MB; 0.03 s against 1.2 s for `numpy.unique` of
    the pairs of 4M units), else the distinct pairs."""
    pairs = venue.astype(np.int64) * n_g + cluster
    if n_v * n_g <= _DENSE_PAIRS:
        seen = np.zeros(n_v * n_g, dtype=bool)
        seen[pairs] = True
        return seen.reshape(n_v, n_g).sum(axis=1)
    return np.bincount(np.unique(pairs) // n_g, minlength=n_v)


def _influence_column(column: np.ndarray, estimable: bool, identified: bool) -> np.ndarray:
    """A venue's influences as published: zero when it has no estimate (it adds nothing to a
    sum of metrics, whose estimate is null anyway), NaN when its variance is not identified
    (fewer than MIN_VENUE_CLUSTERS clusters), so that every statistic built on it (the score,
    a difference of venues) has no interval either, never a falsely narrow one."""
    if not estimable:
        return np.zeros_like(column)
    return column if identified else np.full_like(column, np.nan)


def empty_estimates() -> VenueEstimates:
    """The estimates of a metric with no known value."""
    empty = pl.DataFrame(
        schema={"venue": pl.String, "estimate": pl.Float64, "se": pl.Float64,
                "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.UInt32,
                "group": pl.UInt32, "peers": pl.UInt32}
    )  # fmt: skip
    return VenueEstimates(empty, pl.DataFrame(schema={"cluster": pl.String}), 0)


@dataclass(frozen=True)
class VenueFacts:
    """What the published tables say of each venue besides its estimates: its name, rows,
    comparison group and the venues in it, whether its contrast is estimable and whether its
    variance is identified; and the clusters' labels (one column shared by every metric's
    influences)."""

    venues: list[str]
    counts: np.ndarray
    group: np.ndarray
    peers: np.ndarray
    estimable: np.ndarray
    identified: np.ndarray
    cluster_labels: pl.Series


def venue_estimates(
    estimates: np.ndarray,
    influences: np.ndarray,
    facts: VenueFacts,
    level: float,
    method: Method,
) -> list[VenueEstimates]:
    """The published estimates of every value: estimates (venues x values), influences
    (values, clusters, venues)."""
    n_g = influences.shape[1]
    conditional = method == "conditional"  # CR2 scores, t with the effective clusters
    if conditional:
        factor, t_cr1 = (1.0 if n_g > 1 else np.nan), np.nan
    else:
        factor, t_cr1 = (n_g / (n_g - 1) if n_g > 1 else np.nan), t_quantile(level, n_g)
    out = []
    for j in range(estimates.shape[1]):
        estimate, influence = estimates[:, j], influences[j]
        t = t_quantile_df(level, effective_df(influence, n_g)) if conditional else t_cr1
        se = np.sqrt(factor * (influence**2).sum(axis=0))
        est = np.where(facts.estimable, estimate, np.nan)
        se = np.where(facts.identified, se, np.nan)
        table = pl.DataFrame(
            {
                "venue": facts.venues,
                "estimate": est,
                "se": se,
                "ci_low": est - t * se,
                "ci_high": est + t * se,
                "n": facts.counts.astype(np.uint32),
                "group": facts.group.astype(np.uint32),
                "peers": facts.peers.astype(np.uint32),
            }
        ).with_columns(pl.col("estimate", "se", "ci_low", "ci_high").fill_nan(None))
        infl = pl.DataFrame(facts.cluster_labels).with_columns(
            pl.Series(
                name,
                _influence_column(influence[:, v], facts.estimable[v], facts.identified[v]),
            )
            for v, name in enumerate(facts.venues)
        )
        out.append(VenueEstimates(table, infl, n_g))
    return out


def combine_influence(parts: list[tuple[float, pl.DataFrame]], venues: list[str]) -> pl.DataFrame:
    """sum_k weight_k x IF_k per cluster and venue, aligning clusters (absent = 0)."""
    frames = []
    for weight, infl in parts:
        cols = [(pl.col(v) * weight if v in infl.columns else pl.lit(0.0)).alias(v) for v in venues]
        frames.append(infl.select(pl.col("cluster"), *cols))
    return pl.concat(frames).group_by("cluster").agg(pl.col(venues).sum())


def influence_se(influence: pl.DataFrame, column: pl.Expr, method: Method = "cr1") -> float:
    """Cluster-robust standard error of the statistic whose influences `column` computes
    (CR1: with the factor G / (G - 1); conditional: the influences are CR2 already)."""
    check_method(method)
    g = influence.height
    if g < 2:
        return float("nan")
    total = influence.select((column**2).sum()).item()
    factor = 1.0 if method == "conditional" else g / (g - 1)
    return float(np.sqrt(factor * total))


def influence_t(
    influence: pl.DataFrame, column: pl.Expr, level: float, method: Method = "cr1"
) -> float:
    """Critical value for the statistic whose influences `column` computes: t with G - 1
    degrees of freedom (CR1) or with its effective number of clusters (conditional)."""
    check_method(method)
    g = influence.height
    if method != "conditional" or g < 2:
        return t_quantile(level, g)
    values = influence.select(column).to_series().to_numpy()[:, None]
    return float(t_quantile_df(level, effective_df(values, g))[0])

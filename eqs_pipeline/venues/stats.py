"""Mix-adjusted venue means with cluster-robust confidence intervals.

Model (weighted least squares, weights = shares or routed quantity):

    y_i = alpha_cell(i) + beta_venue(i) + e_i

The cell fixed effects absorb what the flow's mix explains (flag x size bucket x liquidity
bucket), so beta compares venues within the same cells only. A venue's adjusted value is its
expected metric for the reference mix r (the pooled share of every cell in all our flow):

    theta_v = sum_c r_c alpha_c + beta_v

a linear contrast of the coefficients. Its variance is the cluster-robust sandwich
(Liang-Zeger, CR1 small-sample factor G / (G - 1)): per cluster g (a parent order by default)
the influence IF_g = a_v' M^+ sum_{i in g} x_i w_i e_i, with M = X'WX, and
var(theta_v) = G / (G - 1) sum_g IF_g^2. Influences are returned per cluster so that linear
combinations of several metrics (the composite score) and differences between venues get
their variances from the same clusters, correlations included. Intervals use Student t with
G - 1 degrees of freedom. A contrast that the design cannot identify (a venue sharing no cell
with the cells of the reference mix) is null, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

_ESTIMABLE_TOL = 1e-7


@dataclass(frozen=True)
class VenueEstimates:
    """Adjusted estimates of one metric: a frame (venue, estimate, se, ci_low, ci_high, n)
    and the per-cluster influences (cluster + one column per venue, zero-filled)."""

    table: pl.DataFrame
    influence: pl.DataFrame
    clusters: int


def _codes(series: pl.Series) -> tuple[np.ndarray, list]:
    levels = series.unique().sort()
    index = pl.DataFrame({"level": levels, "code": np.arange(len(levels))})
    codes = (
        pl.DataFrame({"level": series}).join(index, on="level", how="left", maintain_order="left")
    )["code"].to_numpy()
    return codes, levels.to_list()


def t_quantile(level: float, clusters: int) -> float:
    """Two-sided critical value of the t distribution with clusters - 1 degrees of freedom."""
    return float(stats.t.ppf(0.5 + level / 2, max(clusters - 1, 1)))


def adjusted_means(
    frame: pl.DataFrame,
    value: str,
    weight: str = "qty",
    *,
    cell: str | None = "cell",
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
) -> VenueEstimates:
    """Mix-adjusted mean of `value` per venue (see the module docstring).

    With `cell=None` there is one cell and the estimate is the venue's plain weighted mean,
    with the same cluster-robust interval.
    """
    rows = frame.filter(
        pl.col(value).is_not_null() & pl.col(value).is_not_nan() & (pl.col(weight) > 0)
    )
    if rows.height == 0:
        empty = pl.DataFrame(
            schema={"venue": pl.String, "estimate": pl.Float64, "se": pl.Float64,
                    "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.UInt32}
        )  # fmt: skip
        return VenueEstimates(empty, pl.DataFrame(schema={"cluster": pl.String}), 0)
    cells = rows[cell] if cell else pl.Series([""] * rows.height)
    c_idx, _ = _codes(cells)
    v_idx, venues = _codes(rows[venue])
    g_idx, groups = _codes(rows[cluster].cast(pl.String))
    w = rows[weight].to_numpy().astype(float)
    y = rows[value].to_numpy().astype(float)
    n_c, n_v, n_g = int(c_idx.max()) + 1, len(venues), len(groups)
    p = n_c + n_v

    # Normal equations of the two-way dummy design, built from cell x venue sums.
    w_cv = np.zeros((n_c, n_v))
    s_cv = np.zeros((n_c, n_v))
    np.add.at(w_cv, (c_idx, v_idx), w)
    np.add.at(s_cv, (c_idx, v_idx), w * y)
    m = np.zeros((p, p))
    m[:n_c, :n_c] = np.diag(w_cv.sum(axis=1))
    m[n_c:, n_c:] = np.diag(w_cv.sum(axis=0))
    m[:n_c, n_c:] = w_cv
    m[n_c:, :n_c] = w_cv.T
    b = np.concatenate([s_cv.sum(axis=1), s_cv.sum(axis=0)])
    m_pinv = np.linalg.pinv(m)
    theta = m_pinv @ b

    reference = w_cv.sum(axis=1) / w_cv.sum()
    contrasts = np.zeros((n_v, p))
    contrasts[:, :n_c] = reference
    contrasts[:, n_c:] = np.eye(n_v)
    estimable = np.abs(contrasts @ m_pinv @ m - contrasts).max(axis=1) < _ESTIMABLE_TOL * max(
        1.0, np.abs(contrasts).max()
    )
    estimate = contrasts @ theta

    resid = y - theta[c_idx] - theta[n_c + v_idx]
    r = w * resid
    loadings = contrasts @ m_pinv  # n_v x p
    influence = np.empty((n_g, n_v))
    for j in range(n_v):  # one vectorized pass per venue
        contrib = r * (loadings[j, c_idx] + loadings[j, n_c + v_idx])
        influence[:, j] = np.bincount(g_idx, weights=contrib, minlength=n_g)
    factor = n_g / (n_g - 1) if n_g > 1 else np.nan
    se = np.sqrt(factor * (influence**2).sum(axis=0))
    t = t_quantile(level, n_g)
    counts = np.bincount(v_idx, minlength=n_v)
    est = np.where(estimable, estimate, np.nan)
    se = np.where(estimable, se, np.nan)
    table = pl.DataFrame(
        {
            "venue": venues,
            "estimate": est,
            "se": se,
            "ci_low": est - t * se,
            "ci_high": est + t * se,
            "n": counts.astype(np.uint32),
        }
    ).with_columns(pl.col("estimate", "se", "ci_low", "ci_high").fill_nan(None))
    infl = pl.DataFrame({"cluster": groups}).with_columns(
        pl.Series(v, np.where(estimable[j], influence[:, j], 0.0)) for j, v in enumerate(venues)
    )
    return VenueEstimates(table, infl, n_g)


def combine_influence(parts: list[tuple[float, pl.DataFrame]], venues: list[str]) -> pl.DataFrame:
    """sum_k weight_k x IF_k per cluster and venue, aligning clusters (absent = 0)."""
    frames = []
    for weight, infl in parts:
        cols = [(pl.col(v) * weight if v in infl.columns else pl.lit(0.0)).alias(v) for v in venues]
        frames.append(infl.select(pl.col("cluster"), *cols))
    return pl.concat(frames).group_by("cluster").agg(pl.col(venues).sum())


def influence_se(influence: pl.DataFrame, column: pl.Expr) -> float:
    """Cluster-robust standard error of the statistic whose influences `column` computes."""
    g = influence.height
    if g < 2:
        return float("nan")
    total = influence.select((column**2).sum()).item()
    return float(np.sqrt(g / (g - 1) * total))

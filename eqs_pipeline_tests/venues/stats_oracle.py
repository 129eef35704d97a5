"""Frozen pre-optimisation implementation of `eqs_pipeline.venues.stats.adjusted_means`, kept
as the equivalence oracle of `test_stats_oracle.py`. Do not edit or optimise it.

This is the implementation as of commit 5b49c21, before the sparse / batched rewrite: a dense
fills x regressors design for the conditional working model and a Python loop over clusters
with one eigendecomposition of I - H_gg each, so it does not scale past a few hundred thousand
fills. The new implementation must reproduce its `VenueEstimates` (estimates, se, intervals,
influences, effective df) to 1e-9. Its original docstring follows.

One rule was added since, here and in `stats` independently (2026-11-24): a venue whose rows
come from fewer than two clusters keeps its estimate with no interval, and its influences are
NaN (its cluster-robust variance is not identified; it used to come out as zero).

Mix-adjusted venue means with cluster-robust confidence intervals.

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

`method="conditional"` (the scorecard's default, docs/VENUES.md "Confidence intervals") targets
the estimand given the design (which fills, their cells, sizes and prevailing quotes):
theta_v = a_v' M^+ X'W E[y | design]. Its variance is that of the per-fill noise only, so the
residuals come from a richer working model Z that also absorbs what the design predicts
(Abadie, Imbens & Zheng 2014): cell effects, venue x flag effects and, when a spread column is
given, a venue x flag slope on the fill's quoted spread. The residuals get the CR2
(Bell-McCaffrey) leverage correction per cluster, e_g* = (I - H_gg)^-1/2 e_g, and the interval
uses t with the venue's effective number of clusters, G*_v - 1 where
G*_v = (sum_g IF_g^2)^2 / sum_g IF_g^4 (a Satterthwaite approximation: few dominant clusters
give few degrees of freedom), capped at G - 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import stdtrit

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
    return float(stdtrit(max(clusters - 1, 1), 0.5 + level / 2))


METHODS: tuple[str, ...] = ("conditional", "cr1")


def t_quantile_df(level: float, df: np.ndarray | float) -> np.ndarray:
    """Two-sided critical value of the t distribution with `df` degrees of freedom (>= 1)."""
    return stdtrit(np.maximum(df, 1.0), 0.5 + level / 2)


def effective_df(influence: np.ndarray, clusters: int) -> np.ndarray:
    """Satterthwaite degrees of freedom of sum_g IF_g^2 per column: G* - 1, capped at G - 1."""
    s2 = (influence**2).sum(axis=0)
    s4 = (influence**4).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_eff = np.where(s4 > 0, s2**2 / np.where(s4 > 0, s4, 1.0), float(clusters))
    return np.clip(g_eff - 1.0, 1.0, max(clusters - 1, 1))


def _working_residuals(
    z: np.ndarray, w: np.ndarray, y: np.ndarray, g_idx: np.ndarray, n_g: int
) -> np.ndarray:
    """Residuals of the WLS fit of y on z, CR2-corrected per cluster: (I - H_gg)^-1/2 e_g in
    the sqrt(w) metric, with H = W^1/2 Z (Z'WZ)^+ Z' W^1/2."""
    zw = z * np.sqrt(w)[:, None]
    n_pinv = np.linalg.pinv(zw.T @ zw)
    e = y - z @ (n_pinv @ (zw.T @ (np.sqrt(w) * y)))
    u = np.sqrt(w) * e
    out = np.empty_like(u)
    order = np.argsort(g_idx, kind="stable")
    bounds = np.searchsorted(g_idx[order], np.arange(n_g + 1))
    for k in range(n_g):
        idx = order[bounds[k] : bounds[k + 1]]
        if idx.size == 1:
            h = float(zw[idx[0]] @ n_pinv @ zw[idx[0]])
            out[idx] = u[idx] / np.sqrt(max(1.0 - h, 1e-8)) if h < 1 - 1e-8 else 0.0
            continue
        zg = zw[idx]
        vals, vecs = np.linalg.eigh(np.eye(idx.size) - zg @ n_pinv @ zg.T)
        keep = vals > 1e-8
        scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, vals, 1.0)), 0.0)
        out[idx] = vecs @ (scale * (vecs.T @ u[idx]))
    return out / np.sqrt(w)


def _indicator(codes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((codes.size, n))
    out[np.arange(codes.size), codes] = 1.0
    return out


def adjusted_means(
    frame: pl.DataFrame,
    value: str,
    weight: str = "qty",
    *,
    cell: str | None = "cell",
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: str = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | None = None,
    working_cell: str | None = None,
) -> VenueEstimates:
    """Mix-adjusted mean of `value` per venue (see the module docstring).

    `controls` (added with the additive controls, a dense design of its own): a column joining
    the levels of additive control factors with "|"; each factor's indicators enter the model
    (not the working model), its reference shares the contrast (connected designs only).

    With `cell=None` there is one cell and the estimate is the venue's plain weighted mean,
    with the same cluster-robust interval. `method` is "cr1" or "conditional"; the latter's
    working model uses the `flag` column (venue x flag effects) and the `spread` column
    (venue x flag slopes; a missing spread counts as 0) when given.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
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
    ctrl = []
    if controls:
        split = rows[controls].cast(pl.String).str.split("|")
        for j in range(split.list.len().max()):
            codes, levels = _codes(split.list.get(j))
            ctrl.append(_indicator(codes, len(levels)))
    x = np.hstack([_indicator(c_idx, n_c), _indicator(v_idx, n_v), *ctrl])
    m = x.T @ (w[:, None] * x)
    b = x.T @ (w * y)
    m_pinv = np.linalg.pinv(m)
    theta = m_pinv @ b

    shares = (w[:, None] * x).sum(axis=0) / w.sum()
    contrasts = np.tile(shares, (n_v, 1))
    contrasts[:, n_c : n_c + n_v] = np.eye(n_v)
    estimable = np.abs(contrasts @ m_pinv @ m - contrasts).max(axis=1) < _ESTIMABLE_TOL * max(
        1.0, np.abs(contrasts).max()
    )
    estimate = contrasts @ theta

    resid = y - x @ theta
    if method == "conditional":
        # the working model's cells (the model's unless given), not the controls
        w_idx, w_levels = _codes(rows[working_cell]) if working_cell else (c_idx, range(n_c))
        parts = [_indicator(w_idx, len(w_levels))]
        vf_key = rows[venue] + "|" + rows[flag].cast(pl.String) if flag else rows[venue]
        vf_idx, vf_levels = _codes(vf_key.fill_null(""))
        parts.append(_indicator(vf_idx, len(vf_levels)))
        if spread:
            s_val = rows[spread].cast(pl.Float64).fill_nan(None).fill_null(0.0).to_numpy()
            parts.append(_indicator(vf_idx, len(vf_levels)) * s_val[:, None])
        resid = _working_residuals(np.hstack(parts), w, y, g_idx, n_g)
    r = w * resid
    loadings = contrasts @ m_pinv  # n_v x p
    influence = np.empty((n_g, n_v))
    for j in range(n_v):  # one vectorized pass per venue
        contrib = r * (x @ loadings[j])
        influence[:, j] = np.bincount(g_idx, weights=contrib, minlength=n_g)
    if method == "conditional":  # CR2 residuals, t with the effective number of clusters
        factor = 1.0 if n_g > 1 else np.nan
        t = t_quantile_df(level, effective_df(influence, n_g))
    else:
        factor = n_g / (n_g - 1) if n_g > 1 else np.nan
        t = t_quantile(level, n_g)
    se = np.sqrt(factor * (influence**2).sum(axis=0))
    counts = np.bincount(v_idx, minlength=n_v)
    est = np.where(estimable, estimate, np.nan)
    venue_clusters = np.array([len(set(g_idx[v_idx == j].tolist())) for j in range(n_v)])
    identified = estimable & (venue_clusters >= 2)
    se = np.where(identified, se, np.nan)
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
        pl.Series(
            v,
            np.where(estimable[j], influence[:, j] if identified[j] else np.full(n_g, np.nan), 0.0),
        )
        for j, v in enumerate(venues)
    )
    return VenueEstimates(table, infl, n_g)


def combine_influence(parts: list[tuple[float, pl.DataFrame]], venues: list[str]) -> pl.DataFrame:
    """sum_k weight_k x IF_k per cluster and venue, aligning clusters (absent = 0)."""
    frames = []
    for weight, infl in parts:
        cols = [(pl.col(v) * weight if v in infl.columns else pl.lit(0.0)).alias(v) for v in venues]
        frames.append(infl.select(pl.col("cluster"), *cols))
    return pl.concat(frames).group_by("cluster").agg(pl.col(venues).sum())


def influence_se(influence: pl.DataFrame, column: pl.Expr, method: str = "cr1") -> float:
    """Cluster-robust standard error of the statistic whose influences `column` computes
    (CR1: with the factor G / (G - 1); conditional: the influences are CR2 already)."""
    g = influence.height
    if g < 2:
        return float("nan")
    total = influence.select((column**2).sum()).item()
    factor = 1.0 if method == "conditional" else g / (g - 1)
    return float(np.sqrt(factor * total))


def influence_t(
    influence: pl.DataFrame, column: pl.Expr, level: float, method: str = "cr1"
) -> float:
    """Critical value for the statistic whose influences `column` computes: t with G - 1
    degrees of freedom (CR1) or with its effective number of clusters (conditional)."""
    g = influence.height
    if method != "conditional" or g < 2:
        return t_quantile(level, g)
    values = influence.select(column).to_series().to_numpy()[:, None]
    return float(t_quantile_df(level, effective_df(values, g))[0])

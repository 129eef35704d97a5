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

Computation. Both models are indicator designs plus one slope, so the fills of one unit (those
sharing cluster, cell, venue and, for the working model, flag) have the same regressors but
for the spread's value. One Polars group-by reduces the fills to per-unit sums (n, sum w,
sum w y and with a spread s: sum w s, sum w s^2, sum w s y); the normal equations, the residual
scores sum_{i in unit} w_i e_i and the influences come from those sums, and no fills x
regressors matrix is formed. CR2 needs per cluster only the scores it feeds to the influences,
gamma_g = Y_g'(I - H_gg)^-1/2 u_g, where Y_g (fills x unit slots) holds sqrt(w) and sqrt(w) s
of each unit's fills, u = sqrt(w) e and H_gg = Y_g Q_g Y_g' with Q_g = T_g' N^+ T_g (N the
working model's Gram, T_g the regressors of the cluster's unit types). By the push-through
identity gamma_g = f(Sigma_g Q_g) beta_g with f(x) = (1 - x)^-1/2, Sigma_g = Y_g'Y_g (per-unit
moment blocks) and beta_g = Y_g'u_g: a d x d problem, d = units (x 2 with a spread), instead of
n_g x n_g. Clusters whose leverage trace (sum of their fills' leverages) is at most 1/2 sum the
binomial series of f until its remainder is below rounding, all such clusters at once: Q_g v is
a scatter of v into a clusters x regressors matrix, one product with N^+ and a gather back.
The others (rare outside small samples) take a batched eigendecomposition of F'Q_g F
(Sigma_g = F F'), zeroing the directions whose eigenvalue of I - H_gg is at most 1e-8 as the
direct formula does. docs/VENUES.md, "Computation at scale".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import stdtrit

_ESTIMABLE_TOL = 1e-7
# CR2: directions whose eigenvalue of I - H_gg is at or below this are zeroed, not inflated.
_SINGULAR_TOL = 1e-8
# Clusters with a larger leverage trace (which bounds H_gg's largest eigenvalue) take the
# eigendecomposition; the others the binomial series, summed until its remainder is below
# _SERIES_TOL x |Y_g| |u_g| (rounding).
_SERIES_MAX_TRACE = 0.5
_SERIES_TOL = 1e-16
# Matrix entries per batch of clusters (float64: 32 MiB per batched array).
_BATCH_ENTRIES = 1 << 22


@dataclass(frozen=True)
class VenueEstimates:
    """Adjusted estimates of one metric: a frame (venue, estimate, se, ci_low, ci_high, n)
    and the per-cluster influences (cluster + one column per venue, zero-filled)."""

    table: pl.DataFrame
    influence: pl.DataFrame
    clusters: int


def _categorical(expr: pl.Expr) -> pl.Expr:
    """`expr` as strings in a private dictionary (random categories, discarded with the data):
    a group-by on it hashes 4-byte codes, not strings."""
    return expr.cast(pl.String).cast(pl.Categorical(pl.Categories.random()))


def _codes(series: pl.Series) -> tuple[np.ndarray, list[str]]:
    """Dense codes of a string or categorical series in the sorted order of its values (as
    strings), and the values."""
    if not isinstance(series.dtype, pl.Categorical):
        series = series.cast(pl.Categorical(pl.Categories.random()))
    physical = series.to_physical().to_numpy()
    present = series.unique()
    levels = present.cast(pl.String)
    order = levels.arg_sort().to_numpy()
    rank = np.zeros(int(physical.max()) + 1, dtype=np.int64)
    rank[present.to_physical().to_numpy()[order]] = np.arange(order.size)
    return rank[physical], levels.gather(order).to_list()


def t_quantile(level: float, clusters: int) -> float:
    """Two-sided critical value of the t distribution with clusters - 1 degrees of freedom."""
    return float(stdtrit(max(clusters - 1, 1), 0.5 + level / 2))


METHODS: tuple[str, ...] = ("conditional", "cr1")


def t_quantile_df(level: float, df: np.ndarray | float) -> np.ndarray:
    """Two-sided critical value of the t distribution with `df` degrees of freedom (>= 1)."""
    return stdtrit(np.maximum(df, 1.0), 0.5 + level / 2)


def effective_df(influence: np.ndarray, clusters: int) -> np.ndarray:
    """Satterthwaite degrees of freedom of sum_g IF_g^2 per column: G* - 1, capped at G - 1."""
    squares = influence * influence
    s2 = squares.sum(axis=0)
    s4 = (squares * squares).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_eff = np.where(s4 > 0, s2**2 / np.where(s4 > 0, s4, 1.0), float(clusters))
    return np.clip(g_eff - 1.0, 1.0, max(clusters - 1, 1))


def _unit_sums(
    frame: pl.DataFrame,
    value: str,
    weight: str,
    keys: dict[str, pl.Expr],
    spread: pl.Expr | None,
) -> pl.DataFrame:
    """One row per unit (the rows sharing every key) over the rows where `value` is known and
    the weight positive: n, w = sum w, wy = sum w y and, with a spread s, ws, wss, wsy.

    The streaming engine aggregates the fills in batches, never holding a filtered copy of
    them: at 10M fills about half the time and memory of the in-memory engine. Like every
    parallel float aggregate (the in-memory engine's included), its sums are reproducible to
    rounding, not bitwise: partial sums merge in scheduling order.
    """
    known = pl.col(value).is_not_null() & pl.col(value).is_not_nan() & (pl.col(weight) > 0)
    columns = {**keys, "_w": pl.col(weight).cast(pl.Float64), "_y": pl.col(value).cast(pl.Float64)}
    w, y = pl.col("_w"), pl.col("_y")
    sums = {"n": pl.len(), "w": w.sum(), "wy": (w * y).sum()}
    if spread is not None:
        s = pl.col("_s")
        columns["_s"] = spread
        sums |= {"ws": (w * s).sum(), "wss": (w * s * s).sum(), "wsy": (w * s * y).sum()}
    units = frame.lazy().filter(known).select(**columns).group_by(*keys).agg(**sums)
    return units.collect(engine="streaming")


def _blocks_left(blocks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Block-diagonal (n, U, m, m) times (n, U m, e), batched over n."""
    n, units, m, _ = blocks.shape
    shaped = matrix.reshape(n, units, m, -1)
    return (blocks @ shaped).reshape(n, units * m, -1)


def _blocks_times(blocks: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Block-diagonal (n, U, m, m) times (n, U m), batched over n."""
    n, units, m, _ = blocks.shape
    return np.einsum("nuab,nub->nua", blocks, vector.reshape(n, units, m)).reshape(n, units * m)


def _matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    return (matrix @ vector[..., None])[..., 0]


def _series(
    local: np.ndarray,
    n_local: int,
    columns: np.ndarray,
    assign: np.ndarray,
    sigma: np.ndarray,
    beta: np.ndarray,
    n_pinv: np.ndarray,
    terms: int,
) -> np.ndarray:
    """f(Sigma_g Q_g) beta_g = sum_k c_k (Sigma_g Q_g)^k beta_g, c_k = binom(2k, k) / 4^k, for a
    set of clusters at once. Q_g v = T_g' N^+ T_g v scatters v into each cluster's regressors
    (a clusters x regressors matrix), multiplies it by N^+ and gathers back.

    local: each unit's cluster in 0 .. n_local - 1; columns (units, r): its regressors;
    assign (r, m): the unit slot of each of them (0/1).
    """
    q = n_pinv.shape[0]
    flat = (local[:, None] * q + columns).ravel()
    slot = assign.argmax(axis=1)
    gamma, term, coef = beta.copy(), beta, 1.0
    for k in range(1, terms + 1):
        coef *= (2 * k - 1) / (2 * k)
        x = np.bincount(flat, weights=term[:, slot].ravel(), minlength=n_local * q)
        back = (x.reshape(n_local, q) @ n_pinv).ravel()[flat].reshape(columns.shape)
        term = _sigma_times(sigma, back @ assign)
        gamma += coef * term
    return gamma


def _sigma_times(sigma: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Per-unit (units, m, m) times (units, m), m <= 2, elementwise (no per-unit matmul)."""
    out = sigma[:, :, 0] * vector[:, :1]
    for b in range(1, sigma.shape[2]):
        out += sigma[:, :, b] * vector[:, b : b + 1]
    return out


def _eigen(q: np.ndarray, sigma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """f(Sigma Q) beta through the eigendecomposition of C = F'QF, Sigma = F F' (per-unit
    Cholesky blocks): Y'(f(H) - I) u = Sigma (Q/2 + X psi(L) X') beta with X = Q F V, C = V L V'
    and psi(l) = ((f(l) - 1) / l - 1/2) / l, f(l) = 0 where 1 - l <= _SINGULAR_TOL."""
    if sigma.shape[-1] == 1:
        chol = np.sqrt(sigma)
    else:
        a = np.sqrt(sigma[..., 0, 0])
        b = sigma[..., 1, 0] / a
        chol = np.zeros_like(sigma)
        chol[..., 0, 0], chol[..., 1, 0] = a, b
        chol[..., 1, 1] = np.sqrt(np.maximum(sigma[..., 1, 1] - b * b, 0.0))
    f_q = _blocks_left(chol.swapaxes(-1, -2), q)  # F'Q
    lam, vec = np.linalg.eigh(_blocks_left(chol.swapaxes(-1, -2), f_q.swapaxes(1, 2)))
    x = f_q.swapaxes(1, 2) @ vec
    gap = 1.0 - lam
    kept = gap > _SINGULAR_TOL
    r = np.sqrt(np.where(kept, gap, 1.0))
    near_one = np.where(kept, 1.0, lam)
    psi = np.where(kept, (2 + r) / (2 * r * (1 + r) ** 2), -(2 + near_one) / (2 * near_one**2))
    inner = 0.5 * _matvec(q, beta) + _matvec(x, psi * _matvec(x.swapaxes(1, 2), beta))
    return beta + _blocks_times(sigma, inner)


def _series_terms(trace: np.ndarray) -> np.ndarray:
    """Terms of the binomial series per cluster (tail <= trace^(K+1) / (1 - trace)), or -1 where
    the trace is above _SERIES_MAX_TRACE (eigendecomposition)."""
    rho = np.clip(trace, 1e-300, _SERIES_MAX_TRACE)
    terms = np.ceil(np.log(_SERIES_TOL * (1 - rho)) / np.log(rho)).astype(np.int64)
    return np.where(trace <= 0, 0, np.where(trace <= _SERIES_MAX_TRACE, terms, -1))


def _type_design(columns: np.ndarray, assign: np.ndarray, n_regressors: int) -> np.ndarray:
    """T: regressors x (types x m), column k m + a the regressors of slot a of unit type k."""
    n_types, m = columns.shape[0], assign.shape[1]
    design = np.zeros((n_regressors, n_types, m))
    design[columns, np.arange(n_types)[:, None], assign.argmax(axis=1)] = 1.0
    return design.reshape(n_regressors, n_types * m)


def _series_clusters(
    clusters: np.ndarray,
    terms: np.ndarray,
    cluster: np.ndarray,
    columns: np.ndarray,
    assign: np.ndarray,
    sigma: np.ndarray,
    beta: np.ndarray,
    n_pinv: np.ndarray,
    gamma: np.ndarray,
) -> None:
    """gamma of the units of `clusters` by the series: clusters grouped by their number of
    terms, in chunks of at most _BATCH_ENTRIES / regressors clusters."""
    n_g = terms.size
    per = max(1, _BATCH_ENTRIES // n_pinv.shape[0])
    clusters = clusters[np.argsort(terms[clusters], kind="stable")]
    rank = np.arange(clusters.size) - np.searchsorted(terms[clusters], terms[clusters])
    chunk_of = np.full(n_g, -1)
    chunk_of[clusters] = np.unique(terms[clusters] * (n_g + 1) + rank // per, return_inverse=True)[
        1
    ]
    local_of = np.zeros(n_g, dtype=np.int64)
    local_of[clusters] = rank % per
    unit_chunk = chunk_of[cluster]
    # Units in chunk and cluster order: the scatter and gather then run through memory in order.
    order = np.argsort(unit_chunk * per + local_of[cluster], kind="stable")
    bounds = np.searchsorted(unit_chunk[order], np.arange(int(chunk_of.max()) + 2))
    for lo, hi in itertools.pairwise(bounds):
        rows = order[lo:hi]
        local = local_of[cluster[rows]]
        gamma[rows] = _series(
            local,
            int(local.max()) + 1,
            columns[rows],
            assign,
            sigma[rows],
            beta[rows],
            n_pinv,
            int(terms[cluster[rows[0]]]),
        )


def _eigen_clusters(
    clusters: np.ndarray,
    cluster: np.ndarray,
    kind: np.ndarray,
    sigma: np.ndarray,
    beta: np.ndarray,
    q_kinds: np.ndarray,
    gamma: np.ndarray,
) -> None:
    """gamma of the units of `clusters` by the eigendecomposition, batched by cluster size."""
    m = beta.shape[1]
    chosen = np.zeros(cluster.max(initial=-1) + 1, dtype=bool)
    chosen[clusters] = True
    rows_all = np.flatnonzero(chosen[cluster])
    rows_all = rows_all[np.argsort(cluster[rows_all], kind="stable")]
    sizes = np.bincount(cluster[rows_all], minlength=chosen.size)
    starts = np.cumsum(sizes) - sizes
    for size in np.unique(sizes[clusters]):
        members = clusters[sizes[clusters] == size]
        d = int(size) * m
        per = max(1, _BATCH_ENTRIES // (d * d))
        for first in range(0, members.size, per):
            batch = members[first : first + per]
            rows = rows_all[starts[batch][:, None] + np.arange(size)]
            slots = (kind[rows][..., None] * m + np.arange(m)).reshape(batch.size, d)
            out = _eigen(
                q_kinds[slots[:, :, None], slots[:, None, :]],
                sigma[rows],
                beta[rows].reshape(batch.size, d),
            )
            gamma[rows] = out.reshape(batch.size, int(size), m)


def _cr2_scores(
    cluster: np.ndarray,
    n_g: int,
    kind: np.ndarray,
    sigma: np.ndarray,
    beta: np.ndarray,
    columns: np.ndarray,
    assign: np.ndarray,
    n_pinv: np.ndarray,
) -> np.ndarray:
    """sum_{i in unit} w_i e*_i per unit, e*_g = (I - H_gg)^-1/2 e_g (module docstring).

    cluster, kind: each unit's cluster and type codes; sigma (units, m, m): its moments
    [[sum w, sum w s], [sum w s, sum w s^2]] (m = 2) or [[sum w]]; beta (units, m): its
    residual scores [sum w e, sum w s e]; columns (types, r): the regressors of each unit
    type, assign (r, m): the slot each belongs to; n_pinv: the working model's N^+.
    """
    m = beta.shape[1]
    design = _type_design(columns, assign, n_pinv.shape[0])
    q_kinds = design.T @ n_pinv @ design
    n_k = columns.shape[0]
    q_own = q_kinds.reshape(n_k, m, n_k, m)[np.arange(n_k), :, np.arange(n_k), :]  # (types, m, m)
    leverage = np.einsum("uab,uab->u", sigma, q_own[kind])  # tr(Sigma_u Q_uu)
    trace = np.bincount(cluster, weights=leverage, minlength=n_g)
    terms = _series_terms(trace)
    gamma = np.empty_like(beta)
    series = terms >= 0
    _series_clusters(
        np.flatnonzero(series), terms, cluster, columns[kind], assign, sigma, beta, n_pinv, gamma
    )
    _eigen_clusters(np.flatnonzero(~series), cluster, kind, sigma, beta, q_kinds, gamma)
    return gamma[:, 0]


def _working_scores(
    units: pl.DataFrame, c_idx: np.ndarray, n_c: int, g_idx: np.ndarray, n_g: int
) -> np.ndarray:
    """sum_{i in unit} w_i e*_i of the working model (cell effects, venue x flag effects and,
    with the `ws` sums, venue x flag slopes on the spread), CR2-corrected per cluster."""
    venue = units["venue"].cast(pl.String)
    vf_key = venue + "|" + units["flag"].cast(pl.String) if "flag" in units.columns else venue
    vf_idx, vf_levels = _codes(vf_key.fill_null(""))
    n_vf = len(vf_levels)
    pair = c_idx * n_vf + vf_idx
    kinds = np.flatnonzero(np.bincount(pair, minlength=n_c * n_vf))
    lookup = np.zeros(n_c * n_vf, dtype=np.int64)
    lookup[kinds] = np.arange(kinds.size)
    kind = lookup[pair]
    n_k = kinds.size
    w = units["w"].to_numpy()
    if "ws" in units.columns:
        m = 2
        ws, wss = units["ws"].to_numpy(), units["wss"].to_numpy()
        sigma = np.stack([w, ws, ws, wss], axis=1).reshape(-1, 2, 2)
        moments_y = np.stack([units["wy"].to_numpy(), units["wsy"].to_numpy()], axis=1)
    else:
        m = 1
        sigma = w.reshape(-1, 1, 1)
        moments_y = units["wy"].to_numpy()[:, None]
    # The regressors of a unit type: cell and venue x flag indicators (slot 0: weight 1) and
    # the venue x flag spread slope (slot 1: weight s).
    q_dim = n_c + m * n_vf
    cell_of, vf_of = kinds // n_vf, n_c + kinds % n_vf
    if m == 2:
        columns = np.stack([cell_of, vf_of, vf_of + n_vf], axis=1)
        assign = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    else:
        columns, assign = np.stack([cell_of, vf_of], axis=1), np.ones((2, 1))
    design = _type_design(columns, assign, q_dim)
    sigma_k = np.stack(
        [
            np.bincount(kind, weights=sigma[:, a, b], minlength=n_k)
            for a in range(m)
            for b in range(m)
        ],
        axis=1,
    ).reshape(n_k, m, m)
    y_k = np.stack(
        [np.bincount(kind, weights=moments_y[:, a], minlength=n_k) for a in range(m)], axis=1
    )
    weighted = (design.reshape(q_dim, n_k, 1, m) @ sigma_k).reshape(q_dim, n_k * m)
    n_pinv = np.linalg.pinv(weighted @ design.T)
    coef = n_pinv @ (design @ y_k.reshape(-1))
    fitted = (design.T @ coef).reshape(n_k, m)[kind]
    beta = moments_y - np.einsum("uab,ub->ua", sigma, fitted)
    return _cr2_scores(g_idx, n_g, kind, sigma, beta, columns, assign, n_pinv)


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
) -> VenueEstimates:
    """Mix-adjusted mean of `value` per venue (see the module docstring).

    With `cell=None` there is one cell and the estimate is the venue's plain weighted mean,
    with the same cluster-robust interval. `method` is "cr1" or "conditional"; the latter's
    working model uses the `flag` column (venue x flag effects) and the `spread` column
    (venue x flag slopes; a missing spread counts as 0) when given.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    working = method == "conditional"
    keys = {
        "cluster": _categorical(pl.col(cluster)),
        "cell": _categorical(pl.col(cell) if cell else pl.lit("")),
        "venue": _categorical(pl.col(venue)),
    }
    if working and flag:
        keys["flag"] = _categorical(pl.col(flag))
    slope = (
        pl.col(spread).cast(pl.Float64).fill_nan(None).fill_null(0.0)
        if working and spread
        else None
    )
    units = _unit_sums(frame, value, weight, keys, slope)
    if units.height == 0:
        empty = pl.DataFrame(
            schema={"venue": pl.String, "estimate": pl.Float64, "se": pl.Float64,
                    "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.UInt32}
        )  # fmt: skip
        return VenueEstimates(empty, pl.DataFrame(schema={"cluster": pl.String}), 0)
    c_idx, _ = _codes(units["cell"])
    v_idx, venues = _codes(units["venue"])
    g_idx, groups = _codes(units["cluster"])
    w, wy = units["w"].to_numpy(), units["wy"].to_numpy()
    n_c, n_v, n_g = int(c_idx.max()) + 1, len(venues), len(groups)
    p = n_c + n_v

    # Normal equations of the two-way dummy design, built from cell x venue sums.
    cv = c_idx * n_v + v_idx
    w_cv = np.bincount(cv, weights=w, minlength=n_c * n_v).reshape(n_c, n_v)
    s_cv = np.bincount(cv, weights=wy, minlength=n_c * n_v).reshape(n_c, n_v)
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

    # sum_{i in unit} w_i e_i: the scorecard model's residuals (cr1) or the working model's,
    # CR2-corrected (conditional).
    if working:
        score = _working_scores(units, c_idx, n_c, g_idx, n_g)
    else:
        score = wy - w * (theta[c_idx] + theta[n_c + v_idx])
    loadings = contrasts @ m_pinv  # n_v x p
    influence = np.empty((n_g, n_v))
    for j in range(n_v):  # one vectorized pass per venue
        contrib = score * (loadings[j, c_idx] + loadings[j, n_c + v_idx])
        influence[:, j] = np.bincount(g_idx, weights=contrib, minlength=n_g)
    if working:  # CR2 residuals, t with the effective number of clusters
        factor = 1.0 if n_g > 1 else np.nan
        t = t_quantile_df(level, effective_df(influence, n_g))
    else:
        factor = n_g / (n_g - 1) if n_g > 1 else np.nan
        t = t_quantile(level, n_g)
    se = np.sqrt(factor * (influence**2).sum(axis=0))
    counts = np.bincount(v_idx, weights=units["n"].to_numpy(), minlength=n_v)
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

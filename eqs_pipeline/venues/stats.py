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

Several metrics of one frame (`adjusted_means_many`): the metrics whose fills enter alike
(known value, positive weight) share the group-by, the design, the pseudo-inverses and the CR2
leverage machinery, none of which depends on y; the series and the eigendecompositions run
once with one column per metric.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

# scipy is imported where it is used: only the window job estimates, while every run of the
# daily jobs loads this module with the code location (in its worker and in the executor's fork
# server), where importing scipy.sparse and scipy.special would cost about 0.4 s each time.
if TYPE_CHECKING:
    from scipy import sparse

# A venue's interval needs its rows to come from two clusters or more. With one (all its fills
# from one parent order), its own effect absorbs that cluster's deviation, its influence is
# identically zero, and a cluster-robust interval would collapse to a point: the venue would
# look certain on one order's luck. Such a venue keeps its estimate, with no interval.
MIN_VENUE_CLUSTERS = 2
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


def _column(column: str | pl.Expr) -> pl.Expr:
    """A column given by name, or an expression of the frame's columns (the scorecard's cell:
    evaluated batch by batch where the units are summed, never held as a column of its own)."""
    return pl.col(column) if isinstance(column, str) else column


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
    from scipy.special import stdtrit

    return float(stdtrit(max(clusters - 1, 1), 0.5 + level / 2))


METHODS: tuple[str, ...] = ("conditional", "cr1")
# "largest": every venue valued at the reference mix of the largest comparison group (venues
# outside it are not comparable and get no estimate); "component": each venue at its own
# group's mix (`_groups`).
REFERENCES: tuple[str, ...] = ("largest", "component")


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


def _known(value: str, weight: str) -> pl.Expr:
    """The rows that enter the estimate of `value`: known value, positive weight."""
    return pl.col(value).is_not_null() & pl.col(value).is_not_nan() & (pl.col(weight) > 0)


def _unit_sums(
    frame: pl.DataFrame,
    values: list[str],
    weight: str,
    keys: dict[str, pl.Expr],
    spread: pl.Expr | None,
) -> pl.DataFrame:
    """One row per unit (the rows sharing every key) over the rows where the values are known
    and the weight positive (the values must share that mask; the first one's is used): n,
    w = sum w and, with a spread s, ws, wss; per value j, wy_j = sum w y and with a spread
    wsy_j = sum w s y.

    The streaming engine aggregates the fills in batches, never holding a filtered copy of
    them: at 10M fills about half the time and memory of the in-memory engine. Like every
    parallel float aggregate (the in-memory engine's included), its sums are reproducible to
    rounding, not bitwise: partial sums merge in scheduling order.
    """
    columns = {**keys, "_w": pl.col(weight).cast(pl.Float64)}
    columns |= {f"_y{j}": pl.col(v).cast(pl.Float64) for j, v in enumerate(values)}
    w = pl.col("_w")
    sums = {"n": pl.len(), "w": w.sum()}
    sums |= {f"wy_{j}": (w * pl.col(f"_y{j}")).sum() for j in range(len(values))}
    if spread is not None:
        s = pl.col("_s")
        columns["_s"] = spread
        sums |= {"ws": (w * s).sum(), "wss": (w * s * s).sum()}
        sums |= {f"wsy_{j}": (w * s * pl.col(f"_y{j}")).sum() for j in range(len(values))}
    known = _known(values[0], weight)
    units = frame.lazy().filter(known).select(**columns).group_by(*keys).agg(**sums)
    return units.collect(engine="streaming")


def _blocks_left(blocks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Block-diagonal (n, U, m, m) times (n, U m, e), batched over n."""
    n, units, m, _ = blocks.shape
    shaped = matrix.reshape(n, units, m, -1)
    return (blocks @ shaped).reshape(n, units * m, -1)


def _series(
    chunk: _SeriesChunk,
    assign: np.ndarray,
    sigma: np.ndarray,
    beta: np.ndarray,
    n_pinv: np.ndarray,
) -> np.ndarray:
    """f(Sigma_g Q_g) beta_g = sum_k c_k (Sigma_g Q_g)^k beta_g, c_k = binom(2k, k) / 4^k, for a
    set of clusters and every metric (beta (units, m, metrics)) at once. Q_g v = T_g' N^+ T_g v
    scatters v into each cluster's regressors (a regressors x clusters matrix per metric),
    multiplies it by N^+ and gathers back. assign (r, m): the unit slot of each regressor."""
    q = n_pinv.shape[0]
    units, r = chunk.columns.shape
    n_metrics = beta.shape[2]
    slot = assign.argmax(axis=1)
    gamma, term, coef = beta.copy(), beta, 1.0
    for k in range(1, chunk.terms + 1):
        coef *= (2 * k - 1) / (2 * k)
        x = chunk.scatter @ term[:, slot, :].reshape(units * r, n_metrics)
        # x: regressors x (clusters x metrics), so that one product applies N^+ to all.
        x = n_pinv.T @ x.reshape(q, chunk.n_local * n_metrics)
        back = x.reshape(-1, n_metrics)[chunk.flat].reshape(units, r, n_metrics)
        term = _sigma_times(sigma, assign.T @ back)
        gamma += coef * term
    return gamma


def _sigma_times(sigma: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Per-unit (units, m, m) times (units, m, metrics), m <= 2, elementwise (no per-unit
    matmul)."""
    out = sigma[:, :, :1] * vector[:, :1, :]
    for b in range(1, sigma.shape[2]):
        out += sigma[:, :, b : b + 1] * vector[:, b : b + 1, :]
    return out


def _eigen(q: np.ndarray, sigma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """f(Sigma Q) beta through the eigendecomposition of C = F'QF, Sigma = F F' (per-unit
    Cholesky blocks): Y'(f(H) - I) u = Sigma (Q/2 + X psi(L) X') beta with X = Q F V, C = V L V'
    and psi(l) = ((f(l) - 1) / l - 1/2) / l, f(l) = 0 where 1 - l <= _SINGULAR_TOL.
    beta: (clusters, d, metrics)."""
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
    inner = 0.5 * (q @ beta) + x @ (psi[..., None] * (x.swapaxes(1, 2) @ beta))
    return beta + _blocks_left(sigma, inner)


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


@dataclass(frozen=True)
class _SeriesChunk:
    """Clusters summed together by the series (metric-independent): their units (rows), each
    unit's cluster in 0 .. n_local - 1 (local) and regressors (columns (units, r)), their
    positions in the flattened q x n_local matrix (flat) and its scatter, and the terms."""

    rows: np.ndarray
    local: np.ndarray
    n_local: int
    columns: np.ndarray
    flat: np.ndarray
    scatter: sparse.csr_array
    terms: int


def _series_chunks(
    clusters: np.ndarray,
    terms: np.ndarray,
    cluster: np.ndarray,
    columns: np.ndarray,
    q: int,
    n_metrics: int,
) -> Iterator[_SeriesChunk]:
    """The series' chunks of `clusters`: grouped by their number of terms, at most
    _BATCH_ENTRIES / (regressors x metrics) clusters each. Built one at a time as they are
    used, so only one chunk's scatter matrix and indices are held at once."""
    from scipy import sparse

    n_g = terms.size
    per = max(1, _BATCH_ENTRIES // (q * n_metrics))
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
        cols = columns[rows]
        n_local = int(local.max()) + 1
        flat = (cols * n_local + local[:, None]).ravel()  # regressor-major
        scatter = sparse.csr_array(
            (np.ones(flat.size), (flat, np.arange(flat.size))), shape=(n_local * q, flat.size)
        )
        yield _SeriesChunk(rows, local, n_local, cols, flat, scatter, int(terms[cluster[rows[0]]]))


def _eigen_clusters(
    clusters: np.ndarray,
    cluster: np.ndarray,
    kind: np.ndarray,
    sigma: np.ndarray,
    beta: np.ndarray,
    design: np.ndarray,
    n_pinv: np.ndarray,
    gamma: np.ndarray,
) -> None:
    """gamma of the units of `clusters` by the eigendecomposition, batched by cluster size;
    beta, gamma: (units, m, metrics). Each batch's Q_g = T_g' N^+ T_g comes from the unit
    types' columns of the design (the types x types matrix of every pair is never formed: with
    controls there are thousands of types)."""
    m, n_metrics = beta.shape[1], beta.shape[2]
    q = n_pinv.shape[0]
    chosen = np.zeros(cluster.max(initial=-1) + 1, dtype=bool)
    chosen[clusters] = True
    rows_all = np.flatnonzero(chosen[cluster])
    rows_all = rows_all[np.argsort(cluster[rows_all], kind="stable")]
    sizes = np.bincount(cluster[rows_all], minlength=chosen.size)
    starts = np.cumsum(sizes) - sizes
    for size in np.unique(sizes[clusters]):
        members = clusters[sizes[clusters] == size]
        d = int(size) * m
        per = max(1, _BATCH_ENTRIES // (d * max(d, n_metrics, q)))
        for first in range(0, members.size, per):
            batch = members[first : first + per]
            rows = rows_all[starts[batch][:, None] + np.arange(size)]
            slots = (kind[rows][..., None] * m + np.arange(m)).reshape(batch.size, d)
            t_g = design[:, slots]  # (q, batch, d)
            q_g = np.einsum("ibd,ibe->bde", t_g, np.einsum("ij,jbe->ibe", n_pinv, t_g))
            out = _eigen(q_g, sigma[rows], beta[rows].reshape(batch.size, d, n_metrics))
            gamma[rows] = out.reshape(batch.size, int(size), m, n_metrics)


@dataclass(frozen=True)
class _WorkingModel:
    """The working model's metric-independent parts (design, Gram pseudo-inverse, CR2
    leverage machinery): `scores` turns the metrics' per-unit moments into CR2 scores."""

    cluster: np.ndarray
    kind: np.ndarray
    sigma: np.ndarray
    columns: np.ndarray
    assign: np.ndarray
    design: np.ndarray
    n_pinv: np.ndarray
    eigen: np.ndarray
    series: np.ndarray
    terms: np.ndarray

    def scores(self, moments_y: np.ndarray) -> np.ndarray:
        """sum_{i in unit} w_i e*_i per unit and metric (units, metrics), e*_g = (I - H_gg)^-1/2
        e_g (module docstring), for moments_y (units, m, metrics): [sum w y, sum w s y]."""
        n_k = self.columns.shape[0]
        _, m, n_metrics = moments_y.shape
        y_k = np.stack(
            [
                np.bincount(self.kind, weights=moments_y[:, a, j], minlength=n_k)
                for a in range(m)
                for j in range(n_metrics)
            ],
            axis=1,
        ).reshape(n_k, m, n_metrics)
        coef = self.n_pinv @ (self.design @ y_k.reshape(n_k * m, n_metrics))
        fitted = (self.design.T @ coef).reshape(n_k, m, n_metrics)[self.kind]
        beta = moments_y - np.einsum("uab,ubj->uaj", self.sigma, fitted)
        gamma = np.empty_like(beta)
        q = self.n_pinv.shape[0]
        unit_columns = self.columns[self.kind]
        for chunk in _series_chunks(
            self.series, self.terms, self.cluster, unit_columns, q, n_metrics
        ):
            gamma[chunk.rows] = _series(
                chunk, self.assign, self.sigma[chunk.rows], beta[chunk.rows], self.n_pinv
            )
        _eigen_clusters(
            self.eigen, self.cluster, self.kind, self.sigma, beta, self.design, self.n_pinv, gamma
        )
        return gamma[:, 0, :]


def _kinds(key_columns: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of `key_columns` (units x k, column j in 0 .. sizes[j] - 1): each
    unit's kind and one unit of each kind."""
    key = np.zeros(key_columns.shape[0], dtype=np.int64)
    for j, size in enumerate(sizes):
        key = key * size + key_columns[:, j]
    space = int(np.prod(np.array(sizes, dtype=np.float64)))
    if space <= 1 << 24:  # a table of the key space: no sort
        present = np.flatnonzero(np.bincount(key, minlength=space))
        lookup = np.zeros(space, dtype=np.int64)
        lookup[present] = np.arange(present.size)
        kind = lookup[key]
    else:
        _, kind = np.unique(key, return_inverse=True)
    first = np.zeros(int(kind.max(initial=-1)) + 1, dtype=np.int64)
    first[kind[::-1]] = np.arange(kind.size)[::-1]
    return kind, first


def _working_model(
    units: pl.DataFrame, codes: np.ndarray, sizes: list[int], g_idx: np.ndarray, n_g: int
) -> _WorkingModel:
    """The working model (cell effects, the controls' additive effects, venue x flag effects
    and, with the `ws` sums, venue x flag slopes on the spread) of the units, with its CR2
    leverage machinery.

    codes (units, r0): each unit's level of the cell and of each control, sizes their numbers
    of levels (the regressors 0 .. sum(sizes) - 1, factor by factor); g_idx: each unit's cluster; per unit type the regressors (columns (types, r)) and the slot
    each belongs to (assign (r, m)); sigma (units, m, m): the units' moments
    [[sum w, sum w s], [sum w s, sum w s^2]] (m = 2) or [[sum w]]."""
    venue = units["venue"].cast(pl.String)
    vf_key = venue + "|" + units["flag"].cast(pl.String) if "flag" in units.columns else venue
    vf_idx, vf_levels = _codes(vf_key.fill_null(""))
    n_vf = len(vf_levels)
    w = units["w"].to_numpy()
    if "ws" in units.columns:
        m = 2
        ws, wss = units["ws"].to_numpy(), units["wss"].to_numpy()
        sigma = np.stack([w, ws, ws, wss], axis=1).reshape(-1, 2, 2)
    else:
        m = 1
        sigma = w.reshape(-1, 1, 1)
    # The regressors of a unit type: cell, control and venue x flag indicators (slot 0:
    # weight 1) and the venue x flag spread slope (slot 1: weight s).
    offsets = np.cumsum([0, *sizes])
    n_base = int(offsets[-1])
    q_dim = n_base + m * n_vf
    unit_columns = np.concatenate([codes + offsets[:-1], (n_base + vf_idx)[:, None]], axis=1)
    if m == 2:
        unit_columns = np.concatenate([unit_columns, (n_base + n_vf + vf_idx)[:, None]], axis=1)
    r = unit_columns.shape[1]
    assign = np.zeros((r, m))
    assign[:, 0] = 1.0
    if m == 2:
        assign[-1] = (0.0, 1.0)
    kind, first = _kinds(np.concatenate([codes, vf_idx[:, None]], axis=1), [*sizes, n_vf])
    n_k = first.size
    columns = unit_columns[first]
    design = _type_design(columns, assign, q_dim)
    sigma_k = np.stack(
        [
            np.bincount(kind, weights=sigma[:, a, b], minlength=n_k)
            for a in range(m)
            for b in range(m)
        ],
        axis=1,
    ).reshape(n_k, m, m)
    weighted = (design.reshape(q_dim, n_k, 1, m) @ sigma_k).reshape(q_dim, n_k * m)
    n_pinv = np.linalg.pinv(weighted @ design.T)
    # CR2 leverage: depends on the design and weights only. Q_kk = T_k' N^+ T_k per type.
    shaped = design.reshape(q_dim, n_k, m)
    q_own = np.einsum("ika,ikb->kab", shaped, (n_pinv @ design).reshape(q_dim, n_k, m))
    leverage = np.einsum("uab,uab->u", sigma, q_own[kind])  # tr(Sigma_u Q_uu)
    trace = np.bincount(g_idx, weights=leverage, minlength=n_g)
    terms = _series_terms(trace)
    series = terms >= 0
    return _WorkingModel(
        g_idx,
        kind,
        sigma,
        columns,
        assign,
        design,
        n_pinv,
        np.flatnonzero(~series),
        np.flatnonzero(series),
        terms,
    )


# Venues x clusters at most for which `_venue_clusters` marks the pairs in a dense table (one
# byte each) rather than finding the distinct pairs by hashing.
_DENSE_PAIRS = 1 << 28


def _venue_clusters(v_idx: np.ndarray, g_idx: np.ndarray, n_v: int, n_g: int) -> np.ndarray:
    """How many distinct clusters each venue's rows come from. A table of every (venue,
    cluster) pair, marked where a row has it, when it fits `_DENSE_PAIRS` bytes (20 days of
    10M fills: 10 venues x 209k clusters, 2 MB; 0.03 s against 1.2 s for `numpy.unique` of
    the pairs of 4M units), else the distinct pairs."""
    pairs = v_idx.astype(np.int64) * n_g + g_idx
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


def _empty() -> VenueEstimates:
    empty = pl.DataFrame(
        schema={"venue": pl.String, "estimate": pl.Float64, "se": pl.Float64,
                "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.UInt32,
                "group": pl.UInt32, "peers": pl.UInt32}
    )  # fmt: skip
    return VenueEstimates(empty, pl.DataFrame(schema={"cluster": pl.String}), 0)


def _control_codes(values: pl.Series) -> tuple[list[np.ndarray], list[int]]:
    """Per control, each unit's level code and the number of levels, from a column whose values
    join the controls' levels with "|" (`controls` of `adjusted_means_many`). Only the distinct
    values are split: a window holds few."""
    codes, labels = _codes(values.fill_null(""))
    parts = [label.split("|") for label in labels]
    if len({len(p) for p in parts}) > 1:
        raise ValueError(
            "the controls column must join the same number of levels with '|' on every row; "
            f"found {sorted({len(p) for p in parts})} parts"
        )
    out, sizes = [], []
    for j in range(len(parts[0]) if parts else 0):
        level, names = _codes(pl.Series([p[j] for p in parts], dtype=pl.String))
        out.append(level[codes])
        sizes.append(len(names))
    return out, sizes


def _groups(w_cv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The comparison groups of a cell x venue weight table: the connected components of the
    graph linking each venue to the cells it trades in, numbered by weight (0: the largest).
    Venues of one group are compared through the cells they share, directly or through other
    venues; venues of two groups share nothing to compare them on. Returns the group of each
    cell and of each venue."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    n_c, n_v = w_cv.shape
    cells, venues = np.nonzero(w_cv > 0)
    graph = coo_array((np.ones(cells.size), (cells, n_c + venues)), shape=(n_c + n_v,) * 2)
    _, label = connected_components(graph, directed=False)
    weight = np.bincount(label[:n_c], weights=w_cv.sum(axis=1), minlength=label.max() + 1)
    rank = np.empty_like(label)
    rank[np.argsort(-weight, kind="stable")] = np.arange(weight.size)
    group = rank[label]
    return group[:n_c], group[n_c:]


def _gram(columns: np.ndarray, w: np.ndarray, p: int) -> np.ndarray:
    """X'WX of an indicator design given by each unit's regressors (columns (units, r))."""
    gram = np.zeros(p * p)
    for a in range(columns.shape[1]):
        for b in range(columns.shape[1]):
            gram += np.bincount(columns[:, a] * p + columns[:, b], weights=w, minlength=p * p)
    return gram.reshape(p, p)


def _estimates(
    units: pl.DataFrame, count: int, level: float, working: bool, reference: str
) -> list[VenueEstimates]:
    """The estimates of values 0 .. count - 1 of `units` (`_unit_sums`), sharing the design."""
    c_idx, _ = _codes(units["cell"])
    v_idx, venues = _codes(units["venue"])
    g_idx, groups = _codes(units["cluster"])
    controls, sizes = _control_codes(units["controls"]) if "controls" in units.columns else ([], [])
    w = units["w"].to_numpy()
    n_c, n_v, n_g = int(c_idx.max()) + 1, len(venues), len(groups)
    # Regressors: cells, venues, then each control's levels (additive effects).
    offsets = np.cumsum([n_c + n_v, *sizes])
    p = int(offsets[-1])
    columns = np.stack(
        [c_idx, n_c + v_idx, *(code + off for code, off in zip(controls, offsets, strict=False))],
        axis=1,
    )
    m = _gram(columns, w, p)
    m_pinv = np.linalg.pinv(m)

    # Each venue's reference mix is the pooled mix of its comparison group (`_groups`): the
    # cells' shares and each control's shares of the group's weight.
    w_cv = np.bincount(c_idx * n_v + v_idx, weights=w, minlength=n_c * n_v).reshape(n_c, n_v)
    cell_group, venue_group = _groups(w_cv)
    n_groups = int(cell_group.max()) + 1
    unit_group = cell_group[c_idx]
    mix = np.zeros((n_groups, p))
    for j in [0, *range(2, columns.shape[1])]:
        mix += np.bincount(
            unit_group * p + columns[:, j], weights=w, minlength=n_groups * p
        ).reshape(n_groups, p)
    mix /= np.bincount(unit_group, weights=w, minlength=n_groups)[:, None]
    contrasts = mix[venue_group]
    contrasts[np.arange(n_v), n_c + np.arange(n_v)] = 1.0
    estimable = np.abs(contrasts @ m_pinv @ m - contrasts).max(axis=1) < _ESTIMABLE_TOL * max(
        1.0, np.abs(contrasts).max()
    )
    if reference == "largest":  # one reference mix: the venues outside the largest group
        estimable &= venue_group == 0
    peers = np.bincount(venue_group, minlength=n_groups)[venue_group]
    loadings = contrasts @ m_pinv  # n_v x p
    counts = np.bincount(v_idx, weights=units["n"].to_numpy(), minlength=n_v)
    identified = estimable & (_venue_clusters(v_idx, g_idx, n_v, n_g) >= MIN_VENUE_CLUSTERS)
    if working:  # CR2 residuals, t with the effective number of clusters
        factor = 1.0 if n_g > 1 else np.nan
    else:
        factor = n_g / (n_g - 1) if n_g > 1 else np.nan
        t_cr1 = t_quantile(level, n_g)

    wys = np.stack([units[f"wy_{j}"].to_numpy() for j in range(count)], axis=1)  # units x K
    xwy = np.stack(
        [
            sum(np.bincount(columns[:, a], weights=wys[:, j], minlength=p) for a in range(
                columns.shape[1]))
            for j in range(count)
        ],
        axis=1,
    )  # fmt: skip
    theta = m_pinv @ xwy  # p x K
    estimates = contrasts @ theta  # n_v x K
    # sum_{i in unit} w_i e_i: the scorecard model's residuals (cr1) or the working model's,
    # CR2-corrected (conditional), for every metric at once.
    if working:
        model = _working_model(
            units, np.stack([c_idx, *controls], axis=1), [n_c, *sizes], g_idx, n_g
        )
        moments_y = wys[:, None, :]
        if model.sigma.shape[1] == 2:
            wsys = np.stack([units[f"wsy_{j}"].to_numpy() for j in range(count)], axis=1)
            moments_y = np.stack([wys, wsys], axis=1)
        scores = model.scores(moments_y)
    else:
        scores = wys - w[:, None] * theta[columns].sum(axis=1)

    influences = np.empty((count, n_g, n_v))
    for v in range(n_v):  # one vectorized pass per venue
        unit_loading = loadings[v, columns].sum(axis=1)
        for j in range(count):
            influences[j, :, v] = np.bincount(
                g_idx, weights=scores[:, j] * unit_loading, minlength=n_g
            )
    out = []
    for j in range(count):
        estimate, influence = estimates[:, j], influences[j]
        t = t_quantile_df(level, effective_df(influence, n_g)) if working else t_cr1
        se = np.sqrt(factor * (influence**2).sum(axis=0))
        est = np.where(estimable, estimate, np.nan)
        se = np.where(identified, se, np.nan)
        table = pl.DataFrame(
            {
                "venue": venues,
                "estimate": est,
                "se": se,
                "ci_low": est - t * se,
                "ci_high": est + t * se,
                "n": counts.astype(np.uint32),
                "group": venue_group.astype(np.uint32),
                "peers": peers.astype(np.uint32),
            }
        ).with_columns(pl.col("estimate", "se", "ci_low", "ci_high").fill_nan(None))
        infl = pl.DataFrame({"cluster": groups}).with_columns(
            pl.Series(name, _influence_column(influence[:, v], estimable[v], identified[v]))
            for v, name in enumerate(venues)
        )
        out.append(VenueEstimates(table, infl, n_g))
    return out


def adjusted_means_many(
    frame: pl.DataFrame,
    values: list[str] | tuple[str, ...],
    weight: str = "qty",
    *,
    cell: str | pl.Expr | None = "cell",
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: str = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | pl.Expr | None = None,
    reference: str = "largest",
) -> dict[str, VenueEstimates]:
    """`adjusted_means` of every column of `values` (same arguments), equal to one call per
    value but computing what does not depend on the metric once: the values whose rows enter
    (known value, positive weight) are the same share one group-by, one design, its Gram
    pseudo-inverses and the CR2 leverage machinery; a value with another set of rows gets its
    own (docs/VENUES.md, "Computation at scale")."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, not {reference!r}")
    values = list(dict.fromkeys(values))
    if not values:
        return {}
    working = method == "conditional"

    def key(column: str | pl.Expr) -> pl.Expr:
        # A categorical column (the window's, `venues.window`) is grouped on as it is.
        if isinstance(column, str) and isinstance(frame.schema[column], pl.Categorical):
            return pl.col(column)
        return _categorical(_column(column))

    keys = {
        "cluster": key(cluster),
        "cell": key(cell) if cell is not None else _categorical(pl.lit("")),
        "venue": key(venue),
    }
    if controls is not None:
        keys["controls"] = key(controls)
    if working and flag:
        keys["flag"] = key(flag)
    slope = (
        pl.col(spread).cast(pl.Float64).fill_nan(None).fill_null(0.0)
        if working and spread
        else None
    )
    # Values grouped by their set of entering rows (equal masks share the design).
    groups: list[list[str]] = []
    if len(values) == 1:
        groups = [values]
    else:
        masks = frame.select(**{v: _known(v, weight) for v in values})
        representatives: list[pl.Series] = []
        for v in values:
            mask = masks[v]
            for group, rep in zip(groups, representatives, strict=True):
                if mask.equals(rep):
                    group.append(v)
                    break
            else:
                groups.append([v])
                representatives.append(mask)
    out: dict[str, VenueEstimates] = {}
    for group in groups:
        units = _unit_sums(frame, group, weight, keys, slope)
        if units.height == 0:
            out |= {v: _empty() for v in group}
        else:
            out |= dict(
                zip(group, _estimates(units, len(group), level, working, reference), strict=True)
            )
    return {v: out[v] for v in values}


def adjusted_means(
    frame: pl.DataFrame,
    value: str,
    weight: str = "qty",
    *,
    cell: str | pl.Expr | None = "cell",
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: str = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | pl.Expr | None = None,
    reference: str = "largest",
) -> VenueEstimates:
    """Mix-adjusted mean of `value` per venue (see the module docstring).

    `cell` is a column name or an expression of the frame's columns (the scorecard's
    flag|size|liquidity cell). With `cell=None` there is one cell and the estimate is the
    venue's plain weighted mean, with the same cluster-robust interval. A categorical cell,
    venue, cluster or flag column is grouped on as it is. `method` is "cr1" or "conditional";
    the latter's working model uses the `flag` column (venue x flag effects) and the `spread`
    column (venue x flag slopes; a missing spread counts as 0) when given. Several metrics of
    one frame: `adjusted_means_many`.
    """
    return adjusted_means_many(
        frame,
        [value],
        weight,
        cell=cell,
        venue=venue,
        cluster=cluster,
        level=level,
        method=method,
        flag=flag,
        spread=spread,
        controls=controls,
        reference=reference,
    )[value]


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

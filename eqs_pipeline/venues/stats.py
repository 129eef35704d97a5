"""Mix-adjusted venue means with cluster-robust confidence intervals.

Model (weighted least squares, weights = shares or routed quantity):

    y_i = alpha_cell(i) + sum_k gamma_k(level_k(i)) + beta_venue(i) + e_i

The cell fixed effects (the scorecard's: liquidity bucket x size bucket) and the additive
effects of the controls (`controls`: a column joining each row's levels with "|") absorb what
the flow's mix explains, so beta compares venues within the same cells, net of the controls.
A venue's adjusted value is its expected metric for the reference mix r (the pooled share of
every cell and of every control level in the flow of its comparison group: the venues and
cells connected through shared cells):

    theta_v = sum_c r_c alpha_c + sum_k sum_l r_kl gamma_kl + beta_v

a linear contrast of the coefficients. Its variance is the cluster-robust sandwich
(Liang-Zeger, CR1 small-sample factor G / (G - 1)): per cluster g (a parent order by default)
the influence IF_g = a_v' M^+ sum_{i in g} x_i w_i e_i, with M = X'WX, and
var(theta_v) = G / (G - 1) sum_g IF_g^2. Influences are returned per cluster so that linear
combinations of several metrics (the composite score) and differences between venues get
their variances from the same clusters, correlations included. Intervals use Student t with
G - 1 degrees of freedom. A contrast that the design cannot identify (with
`reference="largest"`, a venue outside the largest comparison group) is null, never a guess.

`method="conditional"` (the scorecard's default, docs/VENUES.md "Confidence intervals") targets
the estimand given the design (which fills, their cells, sizes and prevailing quotes):
theta_v = a_v' M^+ X'W E[y | design]. Its variance is that of the per-fill noise only, so the
residuals come from a richer working model Z that also absorbs what the design predicts
(Abadie, Imbens & Zheng 2014): effects of its cells (`working_cell`), venue x flag effects and,
when a spread column is given, a venue x flag slope on the fill's quoted spread; not the
controls, whose effects stay in its residuals (wider intervals, never narrower). The residuals get the CR2
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
binomial series of f until its remainder is below 1e-12 of the scores, all such clusters at
once: Q_g v is
a scatter of v into a clusters x regressors matrix, one product with N^+ and a gather back.
The others (rare outside small samples) take a batched eigendecomposition of F'Q_g F
(Sigma_g = F F'), zeroing the directions whose eigenvalue of I - H_gg is at most 1e-8 as the
direct formula does. docs/VENUES.md, "Computation at scale".

Several metrics of one frame (`adjusted_means_many`): the metrics whose fills enter alike
(known value, positive weight) share the group-by, the design, the pseudo-inverses and the CR2
leverage machinery, none of which depends on y; the series and the eigendecompositions run
once with one column per metric. Several models of one frame (`adjusted_means_designs`: the
scorecard across and within style) share the group-by and one working model as well. The
working model runs on its own units (the parts of a unit that differ only in their controls
summed) and its scores are split back to the parts exactly (`_WorkingModel.fine_scores`).
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
# _SERIES_TOL x |Y_g| |u_g|: a millionth of a millionth of the scores, far below any figure
# the scorecard shows (at rounding, 1e-16, the series took about a third more terms).
_SERIES_MAX_TRACE = 0.5
_SERIES_TOL = 1e-12
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
    if not isinstance(series.dtype, pl.Categorical | pl.Enum):
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


def _known(value: str | pl.Expr, weight: str) -> pl.Expr:
    """The rows that enter the estimate of `value`: known value, positive weight."""
    value = _column(value)
    return value.is_not_null() & value.is_not_nan() & (pl.col(weight) > 0)


def _unit_sums(
    frame: pl.DataFrame,
    values: list[str | pl.Expr],
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
    columns |= {f"_y{j}": _column(v).cast(pl.Float64) for j, v in enumerate(values)}
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
    """corr_g with f(Sigma_g Q_g) beta_g = beta_g + Sigma_g corr_g: f(x) = sum_k c_k x^k,
    c_k = binom(2k, k) / 4^k, so corr_g = sum_{k >= 1} c_k Q_g (Sigma_g Q_g)^(k-1) beta_g, for a
    set of clusters and every metric (beta (units, m, metrics)) at once. Q_g v = T_g' N^+ T_g v
    scatters v into each cluster's regressors (a regressors x clusters matrix per metric),
    multiplies it by N^+ and gathers back. assign (r, m): the unit slot of each regressor."""
    q = n_pinv.shape[0]
    units, r = chunk.columns.shape
    n_metrics = beta.shape[2]
    slot = assign.argmax(axis=1)
    corr, term, coef = np.zeros_like(beta), beta, 1.0
    for k in range(1, chunk.terms + 1):
        coef *= (2 * k - 1) / (2 * k)
        x = chunk.scatter @ term[:, slot, :].reshape(units * r, n_metrics)
        # x: regressors x (clusters x metrics), so that one product applies N^+ to all.
        x = n_pinv.T @ x.reshape(q, chunk.n_local * n_metrics)
        back = x.reshape(-1, n_metrics)[chunk.flat].reshape(units, r, n_metrics)
        inner = assign.T @ back
        corr += coef * inner
        term = _sigma_times(sigma, inner)
    return corr


def _sigma_times(sigma: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Per-unit (units, m, m) times (units, m, metrics), m <= 2, elementwise (no per-unit
    matmul)."""
    out = sigma[:, :, :1] * vector[:, :1, :]
    for b in range(1, sigma.shape[2]):
        out += sigma[:, :, b : b + 1] * vector[:, b : b + 1, :]
    return out


def _eigen(q: np.ndarray, sigma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """corr with f(Sigma Q) beta = beta + Sigma corr, through the eigendecomposition of
    C = F'QF, Sigma = F F' (per-unit Cholesky blocks): Y'(f(H) - I) u = Sigma (Q/2 + X psi(L)
    X') beta with X = Q F V, C = V L V' and psi(l) = ((f(l) - 1) / l - 1/2) / l, f(l) = 0 where
    1 - l <= _SINGULAR_TOL. beta: (clusters, d, metrics)."""
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
    return 0.5 * (q @ beta) + x @ (psi[..., None] * (x.swapaxes(1, 2) @ beta))


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
    corr: np.ndarray,
) -> None:
    """corr of the units of `clusters` by the eigendecomposition, batched by cluster size;
    beta, corr: (units, m, metrics). Each batch's Q_g = T_g' N^+ T_g comes from the unit
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
            corr[rows] = out.reshape(batch.size, int(size), m, n_metrics)


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

    def fine_scores(
        self,
        moments_y: np.ndarray,
        fine_wy: np.ndarray,
        fine_w: np.ndarray,
        fine_ws: np.ndarray | None,
        coarse: np.ndarray,
    ) -> np.ndarray:
        """`scores` of finer units: each of this model's units split into parts (rows that
        share its regressors but differ in what only the scorecard model sees: the controls).

        With H_gg = Y_g Q_g Y_g', (I - H_gg)^-1/2 - I = Y_g phi_g Y_g' for a phi_g over the
        model's unit slots, so the model's unit k scores gamma_k = beta_k + Sigma_k corr_k with
        corr = phi_g beta_g (what `_series` and `_eigen` compute), and a part f of it scores
        beta_f + Sigma_f corr_k, whose first component is wy_f + w_f (corr - fitted)_k0 +
        ws_f (corr - fitted)_k1. The CR2 series and eigendecompositions then run over the
        model's units, not the parts. moments_y: the model's units' (summed over their parts);
        fine_*: the parts' sums (w y per value, w, w s), coarse: each part's unit."""
        beta, corr, fitted = self._corr(moments_y)
        del beta
        for a in range(corr.shape[1]):
            corr[:, a, :] -= fitted[self.kind, a, :]
        out = fine_wy + fine_w[:, None] * corr[coarse, 0, :]
        if fine_ws is not None:
            out += fine_ws[:, None] * corr[coarse, 1, :]
        return out

    def scores(self, moments_y: np.ndarray) -> np.ndarray:
        """sum_{i in unit} w_i e*_i per unit and metric (units, metrics), e*_g = (I - H_gg)^-1/2
        e_g (module docstring), for moments_y (units, m, metrics): [sum w y, sum w s y]."""
        beta, corr, _ = self._corr(moments_y)
        return (beta + _sigma_times(self.sigma, corr))[:, 0, :]

    def _corr(self, moments_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """beta (the units' residual moments, computed in place of `moments_y`), corr
        (gamma = beta + Sigma corr: their CR2 scores), each (units, m, metrics), and the fitted
        values per unit type (types, m, metrics)."""
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
        fitted = (self.design.T @ coef).reshape(n_k, m, n_metrics)
        beta = moments_y
        for a in range(m):  # beta -= Sigma fitted, a row of the unit blocks at a time
            for b in range(m):
                beta[:, a, :] -= self.sigma[:, a, b, None] * fitted[self.kind, b, :]
        corr = np.zeros_like(beta)
        q = self.n_pinv.shape[0]
        unit_columns = self.columns[self.kind]
        for chunk in _series_chunks(
            self.series, self.terms, self.cluster, unit_columns, q, n_metrics
        ):
            corr[chunk.rows] = _series(
                chunk, self.assign, self.sigma[chunk.rows], beta[chunk.rows], self.n_pinv
            )
        _eigen_clusters(
            self.eigen, self.cluster, self.kind, self.sigma, beta, self.design, self.n_pinv, corr
        )
        return beta, corr, fitted


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
    codes, labels = _codes(values.cast(pl.String).fill_null("") if values.null_count() else values)
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


def _cell_codes(units: pl.DataFrame, keys: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """Each unit's cell (the combination of its `keys` columns) and the number of cells."""
    if not keys:
        return np.zeros(units.height, dtype=np.int64), 1
    parts = [_codes(units[k]) for k in keys]
    if len(parts) == 1:
        return parts[0][0], len(parts[0][1])
    kind, first = _kinds(np.stack([c for c, _ in parts], axis=1), [len(v) for _, v in parts])
    return kind, first.size


def _design_estimates(
    cell_codes: tuple[np.ndarray, int],
    wys: np.ndarray,
    shared: dict,
    reference: str,
    working_scores: np.ndarray | None,
    level: float,
) -> list[VenueEstimates]:
    """One scorecard model's estimates of every value (columns of `wys`), from each unit's cell
    and what every design shares (`shared`: the units' weights, venue, cluster and control
    codes, counts) and, for the conditional method, the working model's CR2 scores."""
    v_idx, venues, g_idx, groups = (shared[k] for k in ("v_idx", "venues", "g_idx", "groups"))
    controls, sizes, w = shared["controls"], shared["sizes"], shared["w"]
    count = wys.shape[1]
    c_idx, n_c = cell_codes
    n_v, n_g = len(venues), len(groups)
    # Regressors: cells, venues, then each control's levels (additive effects).
    offsets = np.cumsum([n_c + n_v, *sizes])
    p = int(offsets[-1])
    # The units' regressors depend on their type only (cell, venue, control levels): the
    # normal equations, the reference mix and the loadings are computed over the types.
    unit_type, first = _kinds(np.stack([c_idx, v_idx, *controls], axis=1), [n_c, n_v, *sizes])
    n_t = first.size
    columns = np.stack(
        [c_idx, n_c + v_idx, *(code + off for code, off in zip(controls, offsets, strict=False))],
        axis=1,
    )[first]
    w_t = np.bincount(unit_type, weights=w, minlength=n_t)
    m = _gram(columns, w_t, p)
    m_pinv = np.linalg.pinv(m)

    # Each venue's reference mix is the pooled mix of its comparison group (`_groups`): the
    # cells' shares and each control's shares of the group's weight.
    w_cv = np.bincount(c_idx * n_v + v_idx, weights=w, minlength=n_c * n_v).reshape(n_c, n_v)
    cell_group, venue_group = _groups(w_cv)
    n_groups = int(cell_group.max()) + 1
    type_group = cell_group[columns[:, 0]]
    mix = np.zeros((n_groups, p))
    for j in [0, *range(2, columns.shape[1])]:
        mix += np.bincount(
            type_group * p + columns[:, j], weights=w_t, minlength=n_groups * p
        ).reshape(n_groups, p)
    mix /= np.bincount(type_group, weights=w_t, minlength=n_groups)[:, None]
    contrasts = mix[venue_group]
    contrasts[np.arange(n_v), n_c + np.arange(n_v)] = 1.0
    estimable = np.abs(contrasts @ m_pinv @ m - contrasts).max(axis=1) < _ESTIMABLE_TOL * max(
        1.0, np.abs(contrasts).max()
    )
    if reference == "largest":  # one reference mix: the venues outside the largest group
        estimable &= venue_group == 0
    peers = np.bincount(venue_group, minlength=n_groups)[venue_group]
    loadings = contrasts @ m_pinv  # n_v x p
    identified = estimable & (shared["venue_clusters"] >= MIN_VENUE_CLUSTERS)
    working = working_scores is not None
    if working:  # CR2 residuals, t with the effective number of clusters
        factor = 1.0 if n_g > 1 else np.nan
    else:
        factor = n_g / (n_g - 1) if n_g > 1 else np.nan
        t_cr1 = t_quantile(level, n_g)

    wys_t = np.stack(
        [np.bincount(unit_type, weights=wys[:, j], minlength=n_t) for j in range(count)], axis=1
    )
    xwy = np.zeros((p, count))
    for a in range(columns.shape[1]):
        np.add.at(xwy, columns[:, a], wys_t)
    theta = m_pinv @ xwy  # p x K
    estimates = contrasts @ theta  # n_v x K
    # sum_{i in unit} w_i e_i: the scorecard model's residuals (cr1) or the working model's,
    # CR2-corrected (conditional), for every metric at once.
    fitted_cr1 = theta[columns].sum(axis=1)[unit_type] if not working else None
    scores = working_scores if working else wys - w[:, None] * fitted_cr1

    type_loadings = loadings[:, columns].sum(axis=2)  # n_v x types
    influences = np.empty((count, n_g, n_v))
    for v in range(n_v):  # one vectorized pass per venue
        unit_loading = type_loadings[v, unit_type]
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
                "n": shared["counts"].astype(np.uint32),
                "group": venue_group.astype(np.uint32),
                "peers": peers.astype(np.uint32),
            }
        ).with_columns(pl.col("estimate", "se", "ci_low", "ci_high").fill_nan(None))
        infl = pl.DataFrame(shared["cluster_labels"]).with_columns(
            pl.Series(name, _influence_column(influence[:, v], estimable[v], identified[v]))
            for v, name in enumerate(venues)
        )
        out.append(VenueEstimates(table, infl, n_g))
    return out


@dataclass
class _WorkingInputs:
    """What the working model needs of the units (`_working_inputs`): its own, coarser units
    (venue, flag and moments of each; the parts of a unit sharing its regressors summed), their
    cells and clusters, each unit's coarse unit (None where none are merged), the moments
    (units, m, values) of the coarse units and the finer units' w and w s."""

    coarse_units: pl.DataFrame
    cell: np.ndarray
    n_cells: int
    cluster: np.ndarray
    fine: np.ndarray | None
    moments_y: np.ndarray
    fine_w: np.ndarray
    fine_ws: np.ndarray | None


def _working_inputs(
    units: pl.DataFrame, count: int, working_cell: tuple[str, ...], g_idx: np.ndarray, n_g: int
) -> _WorkingInputs:
    """Read what the working model needs from the units, so that the units can be let go
    before the CR2 series runs. The working model has its cells, venue x flag effects and
    slopes (not the additive controls: docs/VENUES.md, "Confidence intervals"), so it is
    fitted on coarser units, the units' parts sharing cluster, working cell, venue and flag,
    and its scores are split back to the units (`_WorkingModel.fine_scores`)."""
    c_work, n_work = _cell_codes(units, working_cell)
    v_idx, venues = _codes(units["venue"])
    keys = [g_idx, c_work, v_idx]
    sizes = [n_g, n_work, len(venues)]
    if "flag" in units.columns:
        f_idx, flags = _codes(units["flag"].cast(pl.String).fill_null(""))
        keys.append(f_idx)
        sizes.append(len(flags))
    coarse, first = _kinds(np.stack(keys, axis=1), sizes)
    fine: np.ndarray | None = coarse
    if first.size == units.height:  # no unit shares its working regressors with another
        fine, first = None, np.arange(units.height)
    slope = "ws" in units.columns
    m = 2 if slope else 1
    names = [[f"wy_{j}" for j in range(count)]]
    if slope:
        names.append([f"wsy_{j}" for j in range(count)])

    def summed(column: str) -> np.ndarray:
        values = units[column].to_numpy()
        if fine is None:
            return values.copy()
        return np.bincount(fine, weights=values, minlength=first.size)

    moments_y = np.empty((first.size, m, count))
    for a, row in enumerate(names):
        for j, name in enumerate(row):
            moments_y[:, a, j] = summed(name)
    coarse_units = units.select("venue", *(["flag"] if "flag" in units.columns else []))[
        first
    ].with_columns(pl.Series(c, summed(c)) for c in ("w", "ws", "wss") if c in units.columns)
    return _WorkingInputs(
        coarse_units,
        c_work[first],
        n_work,
        g_idx[first],
        fine,
        moments_y,
        units["w"].to_numpy(),
        units["ws"].to_numpy() if slope else None,
    )


def _working_scores(inputs: _WorkingInputs, wys: np.ndarray, n_g: int) -> np.ndarray:
    """The working model's CR2 scores of every unit and value (units, values)."""
    model = _working_model(
        inputs.coarse_units, inputs.cell[:, None], [inputs.n_cells], inputs.cluster, n_g
    )
    if inputs.fine is None:
        return model.scores(inputs.moments_y)
    return model.fine_scores(inputs.moments_y, wys, inputs.fine_w, inputs.fine_ws, inputs.fine)


def _estimates(
    handed: list[pl.DataFrame],
    count: int,
    level: float,
    working: bool,
    designs: dict[str, tuple[tuple[str, ...], str, list[int]]],
    working_cell: tuple[str, ...],
) -> dict[str, list[VenueEstimates]]:
    """The estimates of values 0 .. count - 1 of the units (`_unit_sums`, handed over as the
    only item of `handed`, so that their columns are freed once read) under each design
    (name -> (cell keys, reference, the values it estimates)), sharing the units and the
    working model's CR2 scores."""
    units = handed.pop()
    v_idx, venues = _codes(units["venue"])
    g_idx, groups = _codes(units["cluster"])
    controls, sizes = _control_codes(units["controls"]) if "controls" in units.columns else ([], [])
    n_v, n_g = len(venues), len(groups)
    shared = {
        "w": units["w"].to_numpy(),
        "v_idx": v_idx,
        "venues": venues,
        "g_idx": g_idx,
        "groups": groups,
        # One column of labels for every metric's influences (the frames share its buffer).
        "cluster_labels": pl.Series("cluster", groups, dtype=pl.String),
        "controls": controls,
        "sizes": sizes,
        "counts": np.bincount(v_idx, weights=units["n"].to_numpy(), minlength=n_v),
        "venue_clusters": _venue_clusters(v_idx, g_idx, n_v, n_g),
    }
    cells = {name: _cell_codes(units, cell) for name, (cell, _, _) in designs.items()}
    wys = np.stack([units[f"wy_{j}"].to_numpy() for j in range(count)], axis=1)  # units x K
    inputs = _working_inputs(units, count, working_cell, g_idx, n_g) if working else None
    del units  # the group-by's keys and moments: every array needed has been read
    scores = _working_scores(inputs, wys, n_g) if inputs is not None else None
    del inputs
    return {
        name: _design_estimates(
            cells[name],
            wys[:, which],
            shared,
            reference,
            None if scores is None else scores[:, which],
            level,
        )
        for name, (_, reference, which) in designs.items()
    }


@dataclass(frozen=True)
class Design:
    """A model of `adjusted_means_designs`: its cell, the columns (names or expressions of the
    frame) whose combination is a cell (() for one cell), and its reference ("largest": every
    venue at the mix of the largest comparison group; "component": each at its own group's)."""

    cell: tuple[str | pl.Expr, ...] = ()
    reference: str = "largest"
    values: tuple[str, ...] | None = None  # the values it estimates; None: all of them


def _same_part(a: str | pl.Expr, b: str | pl.Expr) -> bool:
    """The same cell column: one name, or one expression object."""
    return a is b or (isinstance(a, str) and isinstance(b, str) and a == b)


def _cell_parts(cell: str | pl.Expr | tuple | None) -> tuple[str | pl.Expr, ...]:
    if cell is None:
        return ()
    return tuple(cell) if isinstance(cell, tuple | list) else (cell,)


def adjusted_means_designs(
    frame: pl.DataFrame,
    values: list[str] | tuple[str, ...],
    weight: str = "qty",
    *,
    designs: dict[str, Design],
    working_cell: tuple[str | pl.Expr, ...] = (),
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: str = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | pl.Expr | None = None,
    derived: dict[str, pl.Expr] | None = None,
) -> dict[str, dict[str, VenueEstimates]]:
    """`adjusted_means` of every column of `values` under several designs of the same frame
    (design -> value -> estimates); `derived` names values that are expressions of the
    frame's columns, evaluated where the units are summed (never held as a column). Everything that does not depend on the design is computed
    once: the values whose rows enter (known value, positive weight) are the same share one
    group-by over units keyed by every design's cell columns, and, for the conditional method,
    the working model (`working_cell` cells, venue x `flag` effects, venue x flag slopes on
    `spread`) with its CR2 leverage machinery and scores; a value with another set of rows gets
    its own (docs/VENUES.md, "Computation at scale"). Each design then costs its own normal
    equations and a pass over the units for its influences."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    for design in designs.values():
        if design.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, not {design.reference!r}")
    values = list(dict.fromkeys(values))
    if not values or not designs:
        return {name: {} for name in designs}
    working = method == "conditional"
    derived = derived or {}

    def value_of(name: str) -> str | pl.Expr:
        return derived.get(name, name)

    def key(column: str | pl.Expr) -> pl.Expr:
        # A categorical or enum column (the window's, `defs.venues.window`) is grouped on as it is.
        if isinstance(column, str) and isinstance(frame.schema[column], pl.Categorical | pl.Enum):
            return pl.col(column)
        return _categorical(_column(column))

    # One key per distinct cell part: a column by its name, an expression by its position.
    parts: list[str | pl.Expr] = []
    for part in [*working_cell, *(p for d in designs.values() for p in d.cell)]:
        if not any(_same_part(part, q) for q in parts):
            parts.append(part)

    def part_key(part: str | pl.Expr) -> str:
        return next(f"c{i}" for i, q in enumerate(parts) if _same_part(part, q))

    keys = {"cluster": key(cluster), "venue": key(venue)}
    keys |= {f"c{i}": key(part) for i, part in enumerate(parts)}
    if controls is not None:
        keys["controls"] = key(controls)
    flag_part = None  # the flag as one of the cells' columns: grouped on once
    if working and flag:
        flag_part = next((f"c{i}" for i, p in enumerate(parts) if _same_part(flag, p)), None)
        if flag_part is None:
            keys["flag"] = key(flag)
    slope = (
        pl.col(spread).cast(pl.Float64).fill_nan(None).fill_null(0.0)
        if working and spread
        else None
    )
    cells = {n: (tuple(part_key(p) for p in d.cell), d.reference) for n, d in designs.items()}
    wanted = {n: set(values if d.values is None else d.values) for n, d in designs.items()}
    working_keys = tuple(part_key(p) for p in working_cell)
    # Values grouped by their set of entering rows (equal masks share the design).
    groups: list[list[str]] = []
    if len(values) == 1:
        groups = [values]
    else:
        masks = frame.select(**{v: _known(value_of(v), weight) for v in values})
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
    out: dict[str, dict[str, VenueEstimates]] = {name: {} for name in designs}
    for group in groups:
        units = _unit_sums(frame, [value_of(v) for v in group], weight, keys, slope)
        if flag_part is not None:
            units = units.with_columns(flag=pl.col(flag_part))
        if units.height == 0:
            for name in designs:
                out[name] |= {v: _empty() for v in group if v in wanted[name]}
            continue
        which = {n: [j for j, v in enumerate(group) if v in wanted[n]] for n in designs}
        active = {n: (*cells[n], which[n]) for n in designs if which[n]}
        handed = [units]
        del units
        estimates = _estimates(handed, len(group), level, working, active, working_keys)
        for name, results in estimates.items():
            out[name] |= dict(zip([group[j] for j in which[name]], results, strict=True))
    return {name: {v: out[name][v] for v in values if v in out[name]} for name in designs}


def adjusted_means_many(
    frame: pl.DataFrame,
    values: list[str] | tuple[str, ...],
    weight: str = "qty",
    *,
    cell: str | pl.Expr | tuple | None = "cell",
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: str = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | pl.Expr | None = None,
    reference: str = "largest",
    working_cell: str | pl.Expr | tuple | None = None,
) -> dict[str, VenueEstimates]:
    """`adjusted_means` of every column of `values` (same arguments), equal to one call per
    value but computing what does not depend on the metric once (`adjusted_means_designs` with
    one design; its cells are the working model's unless `working_cell` is given)."""
    parts = _cell_parts(cell)
    return adjusted_means_designs(
        frame,
        values,
        weight,
        designs={"": Design(parts, reference)},
        working_cell=parts if working_cell is None else _cell_parts(working_cell),
        venue=venue,
        cluster=cluster,
        level=level,
        method=method,
        flag=flag,
        spread=spread,
        controls=controls,
    )[""]


def adjusted_means(
    frame: pl.DataFrame,
    value: str,
    weight: str = "qty",
    *,
    cell: str | pl.Expr | tuple | None = "cell",
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: str = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | pl.Expr | None = None,
    reference: str = "largest",
    working_cell: str | pl.Expr | tuple | None = None,
) -> VenueEstimates:
    """Mix-adjusted mean of `value` per venue (see the module docstring).

    `cell` is a column name, an expression of the frame's columns or a tuple of them (whose
    combination is the cell: the scorecard's liquidity and size buckets). With `cell=None`
    there is one cell and the estimate is the venue's plain weighted mean, with the same
    cluster-robust interval. `controls` names a column joining the levels of additive controls
    with "|"; `reference` is "largest" or "component" (module docstring). A categorical or enum
    cell, venue, cluster, control or flag column is grouped on as it is. `method` is "cr1" or
    "conditional"; the latter's working model has the cells of `working_cell` (default: the
    model's), uses the `flag` column (venue x flag effects) and the `spread` column (venue x
    flag slopes; a missing spread counts as 0) when given. Several metrics of one frame:
    `adjusted_means_many`; several models: `adjusted_means_designs`.
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
        working_cell=working_cell,
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

"""Cluster-robust scores and influences: the residual scores sum_{i in unit} w_i e_i of the
scorecard model (CR1) or the working model's CR2 (Bell-McCaffrey) scores, and each cluster's
influence on each venue's estimate.

CR2 needs per cluster only gamma_g = Y_g'(I - H_gg)^-1/2 u_g = f(Sigma_g Q_g) beta_g with
f(x) = (1 - x)^-1/2 (push-through identity); the clusters with a leverage trace of at most
`_SERIES_MAX_TRACE` sum the binomial series of f, all at once, the others take a batched
eigendecomposition. The derivation: docs/VENUES.md, "Computation at scale".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from eqs_pipeline.stats.design import (
    ScorecardDesign,
    WorkingInputs,
    working_design,
)

# scipy is imported where it is used: only the window job estimates, while every run of the
# daily jobs loads this package with the code location (in its worker and in the executor's
# fork server), where importing scipy.sparse would cost about 0.4 s each time.
if TYPE_CHECKING:
    from scipy import sparse

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
# A chunk of the series holds the clusters that need the same number of terms; while a chunk
# would hold fewer clusters than this, it takes in those that need the next fewer terms (more
# terms than a cluster needs only shrink its remainder). Each chunk costs a Python loop over
# its terms: on a small window, dozens of chunks of a few clusters each cost more than their
# arithmetic.
_MIN_CHUNK_CLUSTERS = 256


def _blocks_left(blocks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Block-diagonal (n, U, m, m) times (n, U m, e), batched over n."""
    n, units, m, _ = blocks.shape
    shaped = matrix.reshape(n, units, m, -1)
    return (blocks @ shaped).reshape(n, units * m, -1)


def _sigma_times(sigma: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Per-unit (units, m, m) times (units, m, metrics), m <= 2, elementwise (no per-unit
    matmul)."""
    out = sigma[:, :, :1] * vector[:, :1, :]
    for b in range(1, sigma.shape[2]):
        out += sigma[:, :, b : b + 1] * vector[:, b : b + 1, :]
    return out


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


def _pooled_terms(terms: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """`terms` with the clusters of sparse term counts raised to the next larger count, so
    that each group of clusters summed together holds at least _MIN_CHUNK_CLUSTERS (only the
    group with the fewest terms may hold fewer)."""
    values, counts = np.unique(terms[clusters], return_counts=True)
    pooled = values.copy()
    top, held = None, 0
    for i in range(values.size - 1, -1, -1):  # from the most terms down
        top = values[i] if top is None else top
        pooled[i], held = top, held + counts[i]
        if held >= _MIN_CHUNK_CLUSTERS:
            top, held = None, 0
    out = terms.copy()
    out[clusters] = pooled[np.searchsorted(values, terms[clusters])]
    return out


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
    terms = _pooled_terms(terms, clusters)
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
class WorkingModel:
    """The working model's metric-independent parts (design, Gram pseudo-inverse, CR2
    leverage machinery): `scores` turns the metrics' per-unit moments into CR2 scores.

    cluster: each unit's cluster; eigen / series: the clusters whose CR2 scores take the
    eigendecomposition / the binomial series (with `terms` terms each)."""

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

        A part f of the model's unit k scores beta_f + Sigma_f corr_k (docs/VENUES.md,
        "Controls and two comparisons"), whose first component is wy_f + w_f (corr -
        fitted)_k0 + ws_f (corr - fitted)_k1: the CR2 series and eigendecompositions run over
        the model's units, not the parts. moments_y: the model's units' (summed over their
        parts); fine_*: the parts' sums (w y per value, w, w s), coarse: each part's unit."""
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
        e_g, for moments_y (units, m, metrics): [sum w y, sum w s y]."""
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


def working_model(
    units: pl.DataFrame, cell: np.ndarray, sizes: list[int], cluster: np.ndarray, n_g: int
) -> WorkingModel:
    """The working model of the units (`design.working_design`) with its CR2 leverage
    machinery: each cluster's leverage trace tr(H_gg) = sum over its units of
    tr(Sigma_u Q_uu), which decides between the series and the eigendecomposition."""
    wd = working_design(units, cell, sizes)
    q_dim, n_k = wd.design.shape[0], wd.columns.shape[0]
    m = wd.assign.shape[1]
    # CR2 leverage: depends on the design and weights only. Q_kk = T_k' N^+ T_k per type.
    shaped = wd.design.reshape(q_dim, n_k, m)
    q_own = np.einsum("ika,ikb->kab", shaped, (wd.gram_pinv @ wd.design).reshape(q_dim, n_k, m))
    leverage = np.einsum("uab,uab->u", wd.sigma, q_own[wd.kind])  # tr(Sigma_u Q_uu)
    trace = np.bincount(cluster, weights=leverage, minlength=n_g)
    terms = _series_terms(trace)
    series = terms >= 0
    return WorkingModel(
        cluster,
        wd.kind,
        wd.sigma,
        wd.columns,
        wd.assign,
        wd.design,
        wd.gram_pinv,
        np.flatnonzero(~series),
        np.flatnonzero(series),
        terms,
    )


def working_scores(inputs: WorkingInputs, wys: np.ndarray, n_g: int) -> np.ndarray:
    """The working model's CR2 scores of every unit and value (units, values)."""
    model = working_model(
        inputs.coarse_units, inputs.cell[:, None], [inputs.n_cells], inputs.cluster, n_g
    )
    if inputs.fine is None:
        return model.scores(inputs.moments_y)
    return model.fine_scores(inputs.moments_y, wys, inputs.fine_w, inputs.fine_ws, inputs.fine)


def residual_scores(
    design: ScorecardDesign, coefficients: np.ndarray, wys: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """sum_{i in unit} w_i e_i of the scorecard model's residuals (CR1), per unit and value."""
    return wys - w[:, None] * design.fitted(coefficients)


def cluster_influences(
    loadings: np.ndarray,
    design: ScorecardDesign,
    scores: np.ndarray,
    cluster: np.ndarray,
    n_g: int,
) -> np.ndarray:
    """IF_g = a_v' M^+ sum_{i in g} x_i w_i e_i per value, cluster and venue (values, clusters,
    venues), from the venues' loadings a_v' M^+ (venues x regressors) and the units' scores."""
    n_v, count = loadings.shape[0], scores.shape[1]
    type_loadings = loadings[:, design.columns].sum(axis=2)  # n_v x types
    influences = np.empty((count, n_g, n_v))
    for v in range(n_v):  # one vectorized pass per venue
        unit_loading = type_loadings[v, design.unit_type]
        for j in range(count):
            influences[j, :, v] = np.bincount(
                cluster, weights=scores[:, j] * unit_loading, minlength=n_g
            )
    return influences

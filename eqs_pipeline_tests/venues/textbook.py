"""The statistics of docs/VENUES.md written the textbook way, as an independent check of
`eqs_pipeline.stats`: a dense rows x regressors design, weighted least squares with a
pseudo-inverse, the cluster-robust sandwich with one loop over clusters and, for the conditional
method, the working model's hat matrix and (I - H_gg)^-1/2 by an eigendecomposition per cluster.

It imports nothing of `eqs_pipeline.stats` and follows the documents, not that code:
"Mix adjustment (scorecard): the statistics" (the model, the reference mix, comparison groups)
and "Confidence intervals" (CR1, the working model, CR2, the effective-cluster t). Dense, so for
frames of a few thousand rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

# Eigenvalues of I - H_gg at or below this are zeroed (docs/VENUES.md, "Computation at scale").
SINGULAR = 1e-8


@dataclass(frozen=True)
class Textbook:
    """Per venue (sorted): estimate, se, ci_low, ci_high (NaN: none) and rows; the clusters
    (sorted) and the influences (clusters x venues)."""

    venues: list[str]
    estimate: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    rows: np.ndarray
    clusters: list[str]
    influence: np.ndarray


def _one_hot(labels: list[str]) -> tuple[np.ndarray, list[str]]:
    levels = sorted(set(labels))
    index = {level: k for k, level in enumerate(levels)}
    out = np.zeros((len(labels), len(levels)))
    out[np.arange(len(labels)), [index[label] for label in labels]] = 1.0
    return out, levels


def _labels(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[str]:
    if not columns:
        return [""] * frame.height
    return frame.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in columns], separator="|")
    )[:, 0].to_list()


def _components(cells: list[str], venues: list[str], w: np.ndarray) -> dict[str, int]:
    """Each venue's comparison group: venues linked through the cells they trade in, numbered
    by the group's weight (0: the largest)."""
    linked: dict[str, set[str]] = {}
    for c, v in zip(cells, venues, strict=True):
        linked.setdefault(v, set()).add(c)
    group: dict[str, int] = {}
    groups: list[set[str]] = []
    for start in sorted(linked):
        if start in group:
            continue
        members, frontier, seen_cells = {start}, [start], set()
        while frontier:
            v = frontier.pop()
            seen_cells |= linked[v]
            for u in linked:
                if u not in members and linked[u] & seen_cells:
                    members.add(u)
                    frontier.append(u)
        for v in members:
            group[v] = len(groups)
        groups.append(members)
    weight = [sum(wi for wi, v in zip(w, venues, strict=True) if v in g) for g in groups]
    rank = {k: r for r, k in enumerate(sorted(range(len(groups)), key=lambda k: -weight[k]))}
    return {v: rank[k] for v, k in group.items()}


def _cr2_scores(z: np.ndarray, w: np.ndarray, y: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """w_i e*_i of the working model Z: e*_g = (I - H_gg)^-1/2 e_g in the sqrt(w) metric."""
    root = np.sqrt(w)
    yz = root[:, None] * z
    n_pinv = np.linalg.pinv(yz.T @ yz)
    u = root * (y - z @ (n_pinv @ (yz.T @ (root * y))))
    out = np.empty_like(y)
    for g in np.unique(cluster):
        rows = np.flatnonzero(cluster == g)
        h = yz[rows] @ n_pinv @ yz[rows].T
        lam, vec = np.linalg.eigh(np.eye(rows.size) - h)
        inv_root = np.where(lam > SINGULAR, 1.0 / np.sqrt(np.maximum(lam, SINGULAR)), 0.0)
        out[rows] = root[rows] * (vec @ (inv_root * (vec.T @ u[rows])))
    return out


def textbook_means(
    frame: pl.DataFrame,
    value: str,
    weight: str = "qty",
    *,
    cell: tuple[str, ...] = (),
    controls: str | None = None,
    method: Literal["conditional", "cr1"] = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    working_cell: tuple[str, ...] | None = None,
    reference: Literal["largest", "component"] = "largest",
    cluster: str = "cluster",
    level: float = 0.95,
) -> Textbook:
    """The mix-adjusted mean of `value` per venue with its interval (see the module
    docstring); the arguments mean what they mean for `stats.adjusted_means`."""
    y_all = frame[value].cast(pl.Float64)
    rows = frame.filter(
        y_all.is_not_null() & y_all.is_not_nan() & (frame[weight].cast(pl.Float64) > 0)
    )
    y = rows[value].cast(pl.Float64).to_numpy()
    w = rows[weight].cast(pl.Float64).to_numpy()
    venue_labels = rows["venue"].cast(pl.String).to_list()
    cell_labels = _labels(rows, cell)
    c_dummies, _ = _one_hot(cell_labels)
    v_dummies, venues = _one_hot(venue_labels)
    blocks = [c_dummies, v_dummies]
    if controls is not None:
        parts = [label.split("|") for label in rows[controls].cast(pl.String).to_list()]
        blocks += [_one_hot([p[k] for p in parts])[0] for k in range(len(parts[0]))]
    x = np.hstack(blocks)
    n_c, n_v = c_dummies.shape[1], v_dummies.shape[1]
    gram = x.T @ (w[:, None] * x)
    gram_pinv = np.linalg.pinv(gram)
    coef = gram_pinv @ (x.T @ (w * y))

    # Each venue valued at the pooled mix of its comparison group.
    group = _components(cell_labels, venue_labels, w)
    row_group = np.array([group[v] for v in venue_labels])
    contrasts = np.zeros((n_v, x.shape[1]))
    for k, v in enumerate(venues):
        in_group = row_group == group[v]
        mix = (w[in_group] @ x[in_group]) / w[in_group].sum()
        mix[n_c : n_c + n_v] = 0.0
        mix[n_c + k] = 1.0
        contrasts[k] = mix
    estimable = np.abs(contrasts @ gram_pinv @ gram - contrasts).max(axis=1) < 1e-7 * max(
        1.0, np.abs(contrasts).max()
    )
    if reference == "largest":
        estimable &= np.array([group[v] == 0 for v in venues])
    estimate = np.where(estimable, contrasts @ coef, np.nan)

    cluster_labels = rows[cluster].cast(pl.String).to_list()
    clusters = sorted(set(cluster_labels))
    g_index = {g: k for k, g in enumerate(clusters)}
    g_row = np.array([g_index[g] for g in cluster_labels])
    n_g = len(clusters)
    if method == "cr1":
        scores = w * (y - x @ coef)
    else:
        flags = _labels(rows, (flag,)) if flag else [""] * rows.height
        vf, _ = _one_hot([f"{v}|{f}" for v, f in zip(venue_labels, flags, strict=True)])
        work_cell, _ = _one_hot(_labels(rows, cell if working_cell is None else working_cell))
        z = [work_cell, vf]
        if spread is not None:
            s = rows[spread].cast(pl.Float64).fill_nan(None).fill_null(0.0).to_numpy()
            z.append(vf * s[:, None])
        scores = _cr2_scores(np.hstack(z), w, y, g_row)
    per_cluster = np.zeros((n_g, x.shape[1]))
    np.add.at(per_cluster, g_row, x * scores[:, None])
    influence = per_cluster @ gram_pinv @ contrasts.T  # clusters x venues

    squares = (influence**2).sum(axis=0)
    if method == "cr1":
        se = np.sqrt(n_g / (n_g - 1) * squares) if n_g > 1 else np.full(n_v, np.nan)
        t = stats.t.ppf(0.5 + level / 2, max(n_g - 1, 1))
    else:
        se = np.sqrt(squares) if n_g > 1 else np.full(n_v, np.nan)
        fourth = (influence**4).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            g_eff = np.where(fourth > 0, squares**2 / fourth, n_g)
        t = stats.t.ppf(0.5 + level / 2, np.clip(g_eff - 1, 1, max(n_g - 1, 1)))
    venue_clusters = np.array(
        [
            len({g for g, u in zip(cluster_labels, venue_labels, strict=True) if u == v})
            for v in venues
        ]
    )
    identified = estimable & (venue_clusters >= 2)
    se = np.where(identified, se, np.nan)
    influence = np.where(estimable, np.where(identified, influence, np.nan), 0.0)
    rows_per_venue = np.array([venue_labels.count(v) for v in venues])
    return Textbook(
        venues, estimate, se, estimate - t * se, estimate + t * se, rows_per_venue, clusters,
        influence,
    )  # fmt: skip

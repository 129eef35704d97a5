"""Comparison groups and reference mixes: which venues can be compared, and at which mix.

Venues are comparable when they trade in a common cell, directly or through other venues (the
connected components of the graph linking each venue to its cells). A venue's adjusted value is
the linear contrast theta_v = sum_c r_c alpha_c + sum_k sum_l r_kl gamma_kl + beta_v, r the
pooled mix of its comparison group; with `reference="largest"` only the venues of the largest
group are valued (at its mix), with `"component"` each group at its own mix. A contrast that the
design cannot identify is null, never a guess. docs/VENUES.md, "Mix adjustment (scorecard):
the statistics".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from eqs_pipeline.stats.design import ScorecardDesign

# "largest": every venue valued at the reference mix of the largest comparison group (venues
# outside it are not comparable and get no estimate); "component": each venue at its own
# group's mix.
Reference = Literal["largest", "component"]
REFERENCES: tuple[Reference, ...] = get_args(Reference)

_ESTIMABLE_TOL = 1e-7


def check_reference(reference: str) -> None:
    """Raise unless `reference` is one of `REFERENCES`."""
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, not {reference!r}")


def comparison_groups(w_cv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


@dataclass(frozen=True)
class ReferenceContrasts:
    """Each venue's contrast a_v (venues x regressors: its group's pooled mix of cells and
    control levels, and 1 at its own venue effect), whether it is estimable (identified by the
    design and, with `reference="largest"`, in the largest group), its comparison group and
    the number of venues in that group (`peers`)."""

    contrasts: np.ndarray
    estimable: np.ndarray
    venue_group: np.ndarray
    peers: np.ndarray


def reference_contrasts(
    design: ScorecardDesign,
    cell: np.ndarray,
    venue: np.ndarray,
    n_venues: int,
    w: np.ndarray,
    reference: Reference,
) -> ReferenceContrasts:
    """The venues' contrasts at their comparison group's pooled mix (the cells' shares and each
    control's shares of the group's weight), from the units' cell, venue and weight."""
    n_c, p = design.n_cells, design.n_regressors
    columns, type_weight = design.columns, design.type_weight
    w_cv = np.bincount(cell * n_venues + venue, weights=w, minlength=n_c * n_venues)
    cell_group, venue_group = comparison_groups(w_cv.reshape(n_c, n_venues))
    n_groups = int(cell_group.max()) + 1
    type_group = cell_group[columns[:, 0]]
    mix = np.zeros((n_groups, p))
    for j in [0, *range(2, columns.shape[1])]:  # the cell and the controls' levels
        mix += np.bincount(
            type_group * p + columns[:, j], weights=type_weight, minlength=n_groups * p
        ).reshape(n_groups, p)
    mix /= np.bincount(type_group, weights=type_weight, minlength=n_groups)[:, None]
    contrasts = mix[venue_group]
    contrasts[np.arange(n_venues), n_c + np.arange(n_venues)] = 1.0
    residual = np.abs(contrasts @ design.gram_pinv @ design.gram - contrasts).max(axis=1)
    estimable = residual < _ESTIMABLE_TOL * max(1.0, np.abs(contrasts).max())
    if reference == "largest":  # one reference mix: the venues outside the largest group
        estimable &= venue_group == 0
    peers = np.bincount(venue_group, minlength=n_groups)[venue_group]
    return ReferenceContrasts(contrasts, estimable, venue_group, peers)

"""Comparison of two `VenueEstimates` to a tolerance: the tests that compute the same estimates
two ways (one call per metric against several at once, two batch sizes, two CR2 algorithms)."""

from __future__ import annotations

import numpy as np

from eqs_pipeline.stats import VenueEstimates, effective_df

TOL = 1e-9
TABLE_FLOATS = ("estimate", "se", "ci_low", "ci_high")


def assert_close(
    new: np.ndarray, old: np.ndarray, what: str, tol: float = TOL, floor: float = 0.0
) -> None:
    """Equal to `tol` relative to the largest magnitude of `old`, or to `floor` where that is
    larger (absolute where both are 0); nulls (NaN) in the same places."""
    new, old = np.asarray(new, dtype=float), np.asarray(old, dtype=float)
    assert np.array_equal(np.isnan(new), np.isnan(old)), f"{what}: nulls differ"
    known = ~np.isnan(old)
    scale = max(float(np.abs(old[known]).max(initial=0.0)), floor) or 1.0
    np.testing.assert_allclose(new[known], old[known], rtol=tol, atol=tol * scale, err_msg=what)


def assert_same(new: VenueEstimates, old: VenueEstimates, what: str = "") -> None:
    """The same venues, counts, groups, estimates, intervals, influences and effective degrees
    of freedom (to TOL)."""
    assert new.clusters == old.clusters, what
    assert new.table.schema == old.table.schema, what
    for column in ("venue", "n", "group", "peers"):
        assert new.table[column].to_list() == old.table[column].to_list(), f"{what} {column}"
    for column in TABLE_FLOATS:
        assert_close(
            new.table[column].fill_null(np.nan).to_numpy(),
            old.table[column].fill_null(np.nan).to_numpy(),
            f"{what} {column}",
        )
    assert new.influence.columns == old.influence.columns, what
    assert new.influence["cluster"].to_list() == old.influence["cluster"].to_list(), what
    if old.influence.width > 1:
        new_infl = new.influence.drop("cluster").to_numpy()
        old_infl = old.influence.drop("cluster").to_numpy()
        assert_close(new_infl, old_infl, f"{what} influence")
        # A venue whose metric is constant given the working model (the effective spread of
        # midpoint fills is 0) has influences at rounding level, whose df is noise in both.
        scale = np.abs(old_infl).max(axis=0)
        signal = scale > TOL * max(scale.max(), 1.0)
        assert_close(
            effective_df(new_infl[:, signal], new.clusters),
            effective_df(old_infl[:, signal], old.clusters),
            f"{what} effective df",
        )

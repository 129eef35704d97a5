"""Tier 2: the scalable `adjusted_means` reproduces the frozen dense implementation
(`stats_oracle`) to 1e-9: estimates, standard errors, intervals, influences and effective
degrees of freedom, for both interval methods, on simulated windows and on edge cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.simulate import SimulationConfig
from eqs_pipeline.venues import stats
from eqs_pipeline.venues.scorecard import CELL, STYLE_CELL
from eqs_pipeline.venues.settings import KEY_METRICS, VenueSettings
from eqs_pipeline.venues.stats import METHODS, VenueEstimates, adjusted_means, effective_df
from eqs_pipeline_tests.venues import stats_oracle
from eqs_pipeline_tests.venues.truth import Desk, simulated_desk

TOL = 1e-9
TABLE_FLOATS = ("estimate", "se", "ci_low", "ci_high")


def _close(new: np.ndarray, old: np.ndarray, what: str) -> None:
    """Equal to TOL relative to the largest magnitude of `old` (absolute where `old` is all 0);
    nulls (NaN) in the same places."""
    assert np.array_equal(np.isnan(new), np.isnan(old)), f"{what}: nulls differ"
    known = ~np.isnan(old)
    scale = float(np.abs(old[known]).max(initial=0.0)) or 1.0
    np.testing.assert_allclose(new[known], old[known], rtol=TOL, atol=TOL * scale, err_msg=what)


def assert_same(new: VenueEstimates, old: VenueEstimates, what: str = "") -> None:
    assert new.clusters == old.clusters, what
    assert new.table["venue"].to_list() == old.table["venue"].to_list(), what
    assert new.table["n"].to_list() == old.table["n"].to_list(), what
    shared = old.table.columns  # the groups (`group`, `peers`) are the oracle's one group
    assert new.table.select(shared).schema == old.table.schema, what
    for column in TABLE_FLOATS:
        _close(
            new.table[column].fill_null(np.nan).to_numpy(),
            old.table[column].fill_null(np.nan).to_numpy(),
            f"{what} {column}",
        )
    assert new.influence.columns == old.influence.columns, what
    assert new.influence["cluster"].to_list() == old.influence["cluster"].to_list(), what
    if old.influence.width > 1:
        new_infl = new.influence.drop("cluster").to_numpy()
        old_infl = old.influence.drop("cluster").to_numpy()
        _close(new_infl, old_infl, f"{what} influence")
        # A venue whose metric is constant given the working model (the effective spread of
        # midpoint fills is 0) has influences at rounding level, whose df is noise in both.
        scale = np.abs(old_infl).max(axis=0)
        signal = scale > TOL * max(scale.max(), 1.0)
        _close(
            effective_df(new_infl[:, signal], new.clusters),
            effective_df(old_infl[:, signal], old.clusters),
            f"{what} effective df",
        )


def both(frame: pl.DataFrame, value: str, what: str = "", **kwargs) -> VenueEstimates:
    """Run both implementations with the same arguments and compare them."""
    new = adjusted_means(frame, value, **kwargs)
    assert_same(new, stats_oracle.adjusted_means(frame, value, **kwargs), what or value)
    return new


@pytest.fixture(
    scope="module",
    params=[
        (SimulationConfig(days=2, symbols=6, orders_per_day=80, seed=5), "order"),
        (SimulationConfig(days=3, symbols=10, orders_per_day=150, seed=17), "order"),
        (SimulationConfig(days=2, symbols=5, orders_per_day=30, seed=29), "symbol_day"),
    ],
    ids=["small", "larger", "symbol_day"],
)
def desk(request) -> Desk:
    config, cluster = request.param
    return simulated_desk(config, VenueSettings(cluster=cluster))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("style", ["across", "within"])
def test_scorecard_metrics_match_the_oracle(desk: Desk, method: str, style: str) -> None:
    """Every key metric as `scorecard.scorecard_estimates` models it: across styles (the
    liquidity x size cell and the additive controls) and within style (the cell split by flag,
    with the controls, each comparison group at its own mix), both with the working model of
    the cells split by flag."""
    cell = CELL if style == "across" else STYLE_CELL
    fills = desk.fills.with_columns(cell=cell, working=STYLE_CELL)
    children = desk.children.with_columns(cell=cell, working=STYLE_CELL)
    for metric in KEY_METRICS:
        child = metric == "fill_rate"
        if style == "within" and child:
            continue
        frame = children if child else fills
        kwargs = {
            "method": method,
            "flag": "liquidity_flag",
            "spread": None if child else "quoted_spread_bps",
            "controls": "conditions",
            "working_cell": "working",
        }
        new = adjusted_means(
            frame, metric, reference="largest" if style == "across" else "component", **kwargs
        )
        old = stats_oracle.adjusted_means(frame, metric, **kwargs)
        if style == "within":  # the oracle has one reference mix: compare where it is one group
            assert new.table["group"].max() == 0
        assert_same(new, old, f"{style} {metric}")


def test_routing_segments_match_the_oracle(desk: Desk) -> None:
    """All-in cost per segment with the controls, as the optimizer calls it (CR1)."""
    segments = desk.fills.partition_by("liquidity_bucket", "size_bucket", as_dict=True)
    for segment, rows in segments.items():
        both(rows, "all_in_cost_bps", f"segment {segment}", cell=None, controls="conditions")


@pytest.mark.parametrize("method", METHODS)
def test_working_model_variants_and_plain_means(desk: Desk, method: str) -> None:
    """The working model without spread or without flag, and one cell (plain means)."""
    fills = desk.fills.with_columns(cell=CELL)
    both(fills, "price_improvement_bps", "no spread", method=method, flag="liquidity_flag")
    both(fills, "price_improvement_bps", "no flag", method=method, spread="quoted_spread_bps")
    both(fills, "effective_spread_bps", "one cell", cell=None, method=method)


def _frame(**columns) -> pl.DataFrame:
    return pl.DataFrame(columns)


@pytest.mark.parametrize("method", METHODS)
def test_venue_sharing_no_cell_is_not_comparable(method: str) -> None:
    """A venue that shares no cell with the largest comparison group gets no estimate; the
    group's venues are valued at the group's own mix, exactly as if that venue were absent
    (before: one unconnected venue left every venue without an estimate)."""
    frame = _frame(
        venue=["A", "B", "A", "B", "C", "C"],
        cell=["x", "x", "x", "x", "y", "y"],
        flag=["ADD"] * 6,
        y=[1.0, 2.0, 1.5, 2.5, 9.0, 8.0],
        qty=[1.0, 2.0, 1.0, 1.0, 1.0, 3.0],
        spread=[1.0, 2.0, 3.0, 1.0, 2.0, 2.0],
        cluster=["1", "2", "3", "4", "5", "6"],
    )
    kwargs = {"method": method, "flag": "flag", "spread": "spread"}
    table = adjusted_means(frame, "y", **kwargs).table.sort("venue")
    assert table["estimate"].is_null().to_list() == [False, False, True]
    assert table["group"].to_list() == [0, 0, 1]
    assert table["peers"].to_list() == [2, 2, 1]
    without_c = both(frame.filter(pl.col("venue") != "C"), "y", **kwargs).table
    # (CR1's small-sample factor G / (G - 1) and t(G - 1) count every cluster of the frame)
    for column in TABLE_FLOATS if method == "conditional" else ("estimate",):
        assert table[column].head(2).to_list() == pytest.approx(without_c[column].to_list())
    # Each group at its own mix: C alone is its own share-weighted mean.
    own = adjusted_means(frame, "y", reference="component", **kwargs).table.sort("venue")
    assert own["estimate"][2] == pytest.approx((9.0 * 1 + 8.0 * 3) / 4)
    assert own["estimate"].head(2).to_list() == pytest.approx(table["estimate"].head(2).to_list())
    # a shared cell identifies A and B; C, alone in cell y, is compared through it
    frame = pl.concat([frame, frame.filter(pl.col("venue") != "C").with_columns(cell=pl.lit("y"))])
    frame = frame.with_columns(cluster=pl.int_range(pl.len()).cast(pl.String))
    table = both(frame, "y", **kwargs).table.sort("venue")
    assert table["estimate"].is_null().to_list() == [False, False, False]


@pytest.mark.parametrize("method", METHODS)
def test_single_fill_clusters(method: str) -> None:
    rng = np.random.default_rng(3)
    n = 60
    frame = _frame(
        venue=rng.choice(["A", "B", "C"], n),
        cell=rng.choice(["x", "y"], n),
        flag=rng.choice(["ADD", "REMOVE"], n),
        y=rng.normal(size=n),
        qty=rng.integers(1, 10, n).astype(float),
        spread=rng.uniform(1, 5, n),
        cluster=[f"g{i}" for i in range(n)],
    )
    both(frame, "y", method=method, flag="flag", spread="spread")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("share", [1.0, 1 - 1e-12, 1 - 1e-6])
def test_cluster_with_near_singular_leverage(method: str, share: float) -> None:
    """Venue C's ADD flow is all (share 1) or nearly all in cluster g0, so I - H_gg of g0 is
    singular or nearly: a direction at or below 1e-8 is zeroed, above it inflated."""
    rng = np.random.default_rng(7)
    n = 80
    frame = _frame(
        venue=rng.choice(["A", "B"], n).tolist() + ["C"] * 4,
        cell=[*rng.choice(["x", "y"], n).tolist(), "x", "x", "y", "x"],
        flag=[*rng.choice(["ADD", "REMOVE"], n).tolist(), "ADD", "ADD", "REMOVE", "ADD"],
        y=rng.normal(size=n + 4),
        qty=[*rng.integers(1, 10, n).astype(float).tolist(), 5.0, 3.0, 2.0, 8.0 * (1 - share)],
        spread=rng.uniform(1, 5, n + 4),
        cluster=[f"g{i % 20 + 1}" for i in range(n)] + ["g0", "g0", "g0", "g1"],
    ).filter(pl.col("qty") > 0)
    both(frame, "y", method=method, flag="flag", spread="spread")
    both(frame, "y", "no spread", method=method, flag="flag")


@pytest.mark.parametrize("method", METHODS)
def test_venue_with_one_cluster(method: str) -> None:
    rng = np.random.default_rng(11)
    n = 50
    frame = _frame(
        venue=rng.choice(["A", "B"], n).tolist() + ["C"] * 5,
        cell=rng.choice(["x", "y"], n + 5),
        flag=rng.choice(["ADD", "REMOVE"], n + 5),
        y=rng.normal(size=n + 5),
        qty=rng.integers(1, 10, n + 5).astype(float),
        spread=rng.uniform(1, 5, n + 5),
        cluster=[f"g{i % 12}" for i in range(n)] + ["c"] * 5,
    )
    table = both(frame, "y", method=method, flag="flag", spread="spread").table
    assert table.filter(pl.col("venue") == "C")["n"].item() == 5


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_inputs(method: str) -> None:
    """No known value; one cluster in all (no interval); integer cluster ids."""
    frame = _frame(
        venue=["A", "B", "A"],
        cell=["x", "x", "x"],
        y=[1.0, 2.0, None],
        qty=[1.0, 2.0, 3.0],
        cluster=[1, 1, 1],
    )
    empty = both(frame.with_columns(y=pl.lit(None, pl.Float64)), "y", "empty", method=method)
    assert empty.table.height == 0 and empty.clusters == 0
    one = both(frame, "y", "one cluster", method=method)
    assert one.table["se"].null_count() == 2


@pytest.mark.parametrize("method", METHODS)
def test_small_batches_give_the_same_result(monkeypatch, method: str) -> None:
    """Clusters split over many batches (both CR2 paths) agree with the oracle as well."""
    desk = simulated_desk(SimulationConfig(days=1, symbols=4, orders_per_day=60, seed=41))
    fills = desk.fills.with_columns(cell=CELL)
    monkeypatch.setattr(stats, "_BATCH_ENTRIES", 64)
    for metric in ("price_improvement_bps", "all_in_cost_bps"):
        both(fills, metric, method=method, flag="liquidity_flag", spread="quoted_spread_bps")

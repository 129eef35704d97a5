"""Independent checks of `eqs_pipeline.stats`:

- against the textbook computation of docs/VENUES.md (`textbook.py`: dense design, one loop
  over clusters, an eigendecomposition of I - H_gg per cluster) on simulated windows, as the
  scorecard and the optimizer call it, and on edge cases (leverage 1 and near 1, single-row
  clusters, a venue in one cluster, a venue sharing no cell);
- against figures computed by hand on frames of a few rows;
- properties every correct implementation has (invariance to row order, cluster labels and the
  scale of the weights; equivariance in the metric; comparison groups that do not see each
  other), and agreement of its two CR2 algorithms and of any batch size.

The scorecard's figures end to end are covered by the golden files (test_golden.py).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats as scipy_stats

from eqs_pipeline.simulate import SimulationConfig
from eqs_pipeline.stats import METHODS, VenueEstimates, adjusted_means, covariance
from eqs_pipeline.venues.scorecard import CELL_COLUMNS, STYLE_CELL_COLUMNS
from eqs_pipeline.venues.settings import KEY_METRICS, WITHIN_STYLE_METRICS, VenueSettings
from eqs_pipeline_tests.venues.compare import TABLE_FLOATS, assert_close, assert_same
from eqs_pipeline_tests.venues.textbook import Textbook, textbook_means
from eqs_pipeline_tests.venues.truth import Desk, simulated_desk


def assert_matches(new: VenueEstimates, ref: Textbook, what: str, tol: float = 1e-9) -> None:
    """`new` reproduces the textbook figures: venues, rows, estimates, intervals, influences
    (to `tol` of their own magnitude; standard errors and influences at rounding level, where
    a model fits exactly, to `tol` of the estimates' magnitude)."""
    assert new.table["venue"].to_list() == ref.venues, what
    assert new.table["n"].to_list() == ref.rows.tolist(), what
    assert new.clusters == len(ref.clusters), what
    floor = float(np.nanmax(np.abs(ref.estimate), initial=0.0)) * 1e-6
    for column in TABLE_FLOATS:
        got = new.table[column].fill_null(np.nan).to_numpy()
        assert_close(got, getattr(ref, column), f"{what} {column}", tol, floor)
    assert new.influence["cluster"].to_list() == ref.clusters, what
    influence = new.influence.select(ref.venues).to_numpy()
    assert_close(influence, ref.influence, f"{what} influence", tol, floor)


def both(frame: pl.DataFrame, value: str, what: str = "", **kwargs) -> VenueEstimates:
    """`adjusted_means` checked against the textbook with the same arguments."""
    new = adjusted_means(frame, value, **kwargs)
    cell = kwargs.pop("cell", "cell")
    cell = () if cell is None else (cell,) if isinstance(cell, str) else tuple(cell)
    working = kwargs.pop("working_cell", None)
    working = (working,) if isinstance(working, str) else working
    assert_matches(
        new, textbook_means(frame, value, cell=cell, working_cell=working, **kwargs), what or value
    )
    return new


# -- simulated windows, as the scorecard and the optimizer model them ----------------------


@pytest.fixture(
    scope="module",
    params=[
        (SimulationConfig(days=2, symbols=6, orders_per_day=80, seed=5), "order"),
        (SimulationConfig(days=2, symbols=5, orders_per_day=30, seed=29), "symbol_day"),
    ],
    ids=["order", "symbol_day"],
)
def desk(request) -> Desk:
    config, cluster = request.param
    return simulated_desk(config, VenueSettings(cluster=cluster))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("style", ["across", "within"])
def test_scorecard_metrics_match_the_textbook(desk: Desk, method: str, style: str) -> None:
    """Every key metric as `scorecard.scorecard_estimates` models it: across styles (liquidity
    x size cells, the additive controls, the largest group's mix) and within style (the cells
    split by flag, each comparison group at its own mix), with the working model of the cells
    split by flag, venue x flag effects and slopes on the quoted spread."""
    across = style == "across"
    metrics = KEY_METRICS if across else WITHIN_STYLE_METRICS
    for metric in metrics:
        child = metric == "fill_rate"
        both(
            desk.children if child else desk.fills,
            metric,
            f"{style} {metric}",
            cell=CELL_COLUMNS if across else STYLE_CELL_COLUMNS,
            controls="conditions",
            method=method,
            flag="liquidity_flag",
            spread=None if child else "quoted_spread_bps",
            working_cell=STYLE_CELL_COLUMNS,
            reference="largest" if across else "component",
        )


def test_routing_segments_match_the_textbook(desk: Desk) -> None:
    """All-in cost per segment with the controls and one cell, as the optimizer calls it."""
    segments = desk.fills.partition_by("liquidity_bucket", "size_bucket", as_dict=True)
    for segment, rows in segments.items():
        both(rows, "all_in_cost_bps", f"segment {segment}", cell=None, controls="conditions")


# -- small frames: edge cases against the textbook -----------------------------------------


def _random_frame(seed: int, n: int, clusters: int | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "venue": rng.choice(["A", "B", "C"], n),
            "cell": rng.choice(["x", "y"], n),
            "flag": rng.choice(["ADD", "REMOVE"], n),
            "y": rng.normal(size=n),
            "qty": rng.integers(1, 10, n).astype(float),
            "spread": rng.uniform(1, 5, n),
            "cluster": [f"g{i if clusters is None else i % clusters}" for i in range(n)],
        }
    )


@pytest.mark.parametrize("method", METHODS)
def test_working_model_variants_match_the_textbook(method: str) -> None:
    """The working model without a spread, without a flag, and one cell (plain means)."""
    frame = _random_frame(1, 120, clusters=25)
    both(frame, "y", "no spread", method=method, flag="flag")
    both(frame, "y", "no flag", method=method, spread="spread")
    both(frame, "y", "one cell", cell=None, method=method, flag="flag", spread="spread")


@pytest.mark.parametrize("method", METHODS)
def test_single_row_clusters(method: str) -> None:
    both(_random_frame(3, 60), "y", method=method, flag="flag", spread="spread")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("share", [1.0, 1 - 1e-12, 1 - 1e-6])
def test_cluster_with_near_singular_leverage(method: str, share: float) -> None:
    """Venue C's ADD flow is all (share 1) or nearly all in cluster g0, so I - H_gg of g0 is
    singular or nearly: a direction at or below 1e-8 is zeroed, above it inflated."""
    rng = np.random.default_rng(7)
    n = 80
    frame = pl.DataFrame(
        {
            "venue": rng.choice(["A", "B"], n).tolist() + ["C"] * 4,
            "cell": [*rng.choice(["x", "y"], n).tolist(), "x", "x", "y", "x"],
            "flag": [*rng.choice(["ADD", "REMOVE"], n).tolist(), "ADD", "ADD", "REMOVE", "ADD"],
            "y": rng.normal(size=n + 4),
            "qty": [*rng.integers(1, 10, n).astype(float), 5.0, 3.0, 2.0, 8.0 * (1 - share)],
            "spread": rng.uniform(1, 5, n + 4),
            "cluster": [f"g{i % 20 + 1}" for i in range(n)] + ["g0", "g0", "g0", "g1"],
        }
    ).filter(pl.col("qty") > 0)
    both(frame, "y", "spread", method=method, flag="flag", spread="spread")
    both(frame, "y", "no spread", method=method, flag="flag")


@pytest.mark.parametrize("method", METHODS)
def test_venue_with_one_cluster_has_no_interval(method: str) -> None:
    frame = pl.concat(
        [
            _random_frame(11, 50, clusters=12).filter(pl.col("venue") != "C"),
            _random_frame(12, 5).with_columns(venue=pl.lit("C"), cluster=pl.lit("c")),
        ]
    )
    table = both(frame, "y", method=method, flag="flag", spread="spread").table
    lone = table.filter(pl.col("venue") == "C")
    assert lone["n"].item() == 5 and lone["estimate"].is_not_null().item()
    assert lone["se"].is_null().item() and lone["ci_low"].is_null().item()


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_inputs(method: str) -> None:
    """No known value; one cluster in all (no interval); integer cluster ids."""
    frame = pl.DataFrame(
        {
            "venue": ["A", "B", "A"],
            "cell": ["x", "x", "x"],
            "y": [1.0, 2.0, None],
            "qty": [1.0, 2.0, 3.0],
            "cluster": [1, 1, 1],
        }
    )
    empty = adjusted_means(frame.with_columns(y=pl.lit(None, pl.Float64)), "y", method=method)
    assert empty.table.height == 0 and empty.clusters == 0
    one = both(frame, "y", "one cluster", method=method)
    assert one.table["se"].null_count() == 2
    assert one.table["estimate"].to_list() == pytest.approx([1.0, 2.0])


@pytest.mark.parametrize("method", METHODS)
def test_venue_sharing_no_cell_is_not_comparable(method: str) -> None:
    """A venue that shares no cell with the largest comparison group gets no estimate; the
    group's venues are valued at the group's own mix, exactly as if that venue were absent;
    with `reference="component"` it is valued at its own group's mix."""
    frame = pl.DataFrame(
        {
            "venue": ["A", "B", "A", "B", "C", "C"],
            "cell": ["x", "x", "x", "x", "y", "y"],
            "flag": ["ADD"] * 6,
            "y": [1.0, 2.0, 1.5, 2.5, 9.0, 8.0],
            "qty": [1.0, 2.0, 1.0, 1.0, 1.0, 3.0],
            "spread": [1.0, 2.0, 3.0, 1.0, 2.0, 2.0],
            "cluster": ["1", "2", "3", "4", "5", "6"],
        }
    )
    kwargs = {"method": method, "flag": "flag", "spread": "spread"}
    table = both(frame, "y", **kwargs).table
    assert table["estimate"].is_null().to_list() == [False, False, True]
    assert table["group"].to_list() == [0, 0, 1]
    assert table["peers"].to_list() == [2, 2, 1]
    without_c = adjusted_means(frame.filter(pl.col("venue") != "C"), "y", **kwargs).table
    # (CR1's small-sample factor G / (G - 1) and t(G - 1) count every cluster of the frame)
    for column in TABLE_FLOATS if method == "conditional" else ("estimate",):
        assert table[column].head(2).to_list() == pytest.approx(without_c[column].to_list())
    own = both(frame, "y", reference="component", **kwargs).table
    assert own["estimate"][2] == pytest.approx((9.0 * 1 + 8.0 * 3) / 4)
    assert own["estimate"].head(2).to_list() == pytest.approx(table["estimate"].head(2).to_list())
    # a shared cell identifies A and B; C, alone in cell y, is compared through it
    frame = pl.concat([frame, frame.filter(pl.col("venue") != "C").with_columns(cell=pl.lit("y"))])
    frame = frame.with_columns(cluster=pl.int_range(pl.len()).cast(pl.String))
    assert both(frame, "y", **kwargs).table["estimate"].null_count() == 0


# -- by hand --------------------------------------------------------------------------------


HAND = pl.DataFrame(
    {
        "venue": ["A", "A", "A", "B", "B", "B"],
        "y": [1.0, 3.0, 5.0, 2.0, 6.0, 4.0],
        "qty": [1.0, 2.0, 1.0, 3.0, 1.0, 2.0],
        "cluster": ["1", "1", "2", "3", "4", "4"],
    }
)


def test_one_cell_cr1_by_hand() -> None:
    """One cell: each venue's share-weighted mean; its cluster influences are
    sum_{i in g} w_i (y_i - mean) / W, the variance G / (G - 1) sum_g IF_g^2, t(G - 1)."""
    out = adjusted_means(HAND, "y", cell=None, method="cr1").table
    # A: mean (1 + 6 + 5) / 4 = 3; cluster 1: (1 (1 - 3) + 2 (3 - 3)) / 4 = -0.5, 2: 0.5.
    # B: mean (6 + 6 + 8) / 6 = 10 / 3; cluster 3: 3 (2 - 10/3) / 6 = -2/3, 4: 2/3.
    assert out["estimate"].to_list() == pytest.approx([3.0, 10 / 3], rel=1e-12)
    g = 4
    se = [np.sqrt(g / (g - 1) * (0.25 + 0.25)), np.sqrt(g / (g - 1) * (4 / 9 + 4 / 9))]
    assert out["se"].to_list() == pytest.approx(se, rel=1e-12)
    t = scipy_stats.t.ppf(0.975, g - 1)
    assert out["ci_high"].to_list() == pytest.approx([3.0 + t * se[0], 10 / 3 + t * se[1]])


def test_one_cell_cr2_by_hand() -> None:
    """One cell, conditional: the working model is the venue effects, so a row's leverage in
    its cluster block is w_i w_j / W_v (rows of its venue); cluster 2 (one row of A, w 1 of
    W 4): e* = e / sqrt(1 - 1/4). Cluster 1 holds two rows of A: (I - H)^-1/2 by hand."""
    out = adjusted_means(HAND, "y", cell=None, method="conditional")
    # A, cluster 2: score w e* = 1 x 2 / sqrt(3/4), influence / W = that / 4.
    infl = out.influence.sort("cluster")
    assert infl["A"][1] == pytest.approx(2 / np.sqrt(0.75) / 4, rel=1e-12)
    # A, cluster 1: u = sqrt(w) e = (1 x -2, sqrt 2 x 0), Y = (1, sqrt 2), H = Y Y' / 4.
    y_g = np.array([1.0, np.sqrt(2.0)])
    lam, vec = np.linalg.eigh(np.eye(2) - np.outer(y_g, y_g) / 4)
    u_star = vec @ ((vec.T @ np.array([-2.0, 0.0])) / np.sqrt(lam))
    assert infl["A"][0] == pytest.approx(float(y_g @ u_star) / 4, rel=1e-12)
    se_a = np.sqrt(infl["A"][0] ** 2 + infl["A"][1] ** 2)
    assert out.table["se"][0] == pytest.approx(se_a, rel=1e-12)
    # t with the effective number of clusters: (sum IF^2)^2 / sum IF^4 - 1.
    g_eff = se_a**4 / (infl["A"][0] ** 4 + infl["A"][1] ** 4)
    t = scipy_stats.t.ppf(0.975, min(max(g_eff - 1, 1), 3))
    assert out.table["ci_low"][0] == pytest.approx(3.0 - t * se_a, rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_a_noiseless_additive_model_is_recovered_exactly(method: str) -> None:
    """y = alpha_cell + gamma_level + beta_venue exactly: each venue's estimate is
    sum_c r_c alpha_c + sum_l r_l gamma_l + beta_v at the pooled mix r, with no residual (CR1;
    the conditional method's working model leaves the controls' effects in its residuals)."""
    alpha, gamma, beta = {"x": 1.0, "y": 5.0}, {"lo": 0.0, "hi": 2.0}, {"A": 0.0, "B": 3.0}
    rows = [
        ("A", "x", "lo", 1.0), ("A", "y", "hi", 2.0), ("A", "y", "lo", 1.0),
        ("B", "x", "hi", 3.0), ("B", "x", "lo", 1.0), ("B", "y", "lo", 1.0),
    ]  # fmt: skip
    frame = pl.DataFrame(
        {
            "venue": [r[0] for r in rows],
            "cell": [r[1] for r in rows],
            "level": [r[2] for r in rows],
            "qty": [r[3] for r in rows],
            "y": [alpha[r[1]] + gamma[r[2]] + beta[r[0]] for r in rows],
            "cluster": ["1", "2", "3", "4", "5", "6"],
        }
    )
    out = adjusted_means(frame, "y", controls="level", method=method).table
    total = sum(r[3] for r in rows)
    r_cell = {c: sum(r[3] for r in rows if r[1] == c) / total for c in alpha}
    r_level = {lv: sum(r[3] for r in rows if r[2] == lv) / total for lv in gamma}
    common = sum(r_cell[c] * alpha[c] for c in alpha) + sum(r_level[k] * gamma[k] for k in gamma)
    assert out["estimate"].to_list() == pytest.approx([common, common + 3.0], rel=1e-12)
    if method == "cr1":
        assert out["se"].to_list() == pytest.approx([0.0, 0.0], abs=1e-12)


# -- properties -----------------------------------------------------------------------------


def _same_figures(a: VenueEstimates, b: VenueEstimates, what: str) -> None:
    """Equal tables (to 1e-9), influences compared cluster by cluster, whatever the labels'
    order."""
    for column in TABLE_FLOATS:
        assert_close(
            a.table[column].fill_null(np.nan).to_numpy(),
            b.table[column].fill_null(np.nan).to_numpy(),
            f"{what} {column}",
        )
    venues = a.table["venue"].to_list()
    assert_close(
        np.sort(a.influence.select(venues).to_numpy(), axis=0),
        np.sort(b.influence.select(venues).to_numpy(), axis=0),
        f"{what} influence",
    )


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    rng = np.random.default_rng(21)
    n = 400
    venue = rng.choice(["A", "B", "C", "D"], n)
    return pl.DataFrame(
        {
            "venue": venue,
            "cell": rng.choice(["x", "y", "z"], n),
            "flag": np.where(venue == "D", "MID", rng.choice(["ADD", "REMOVE"], n)),
            "level": [f"{a}|{b}" for a, b in zip(rng.choice(["p", "q"], n), rng.choice(["r", "s", "t"], n), strict=True)],
            "y": rng.standard_t(4, n) + (venue == "B") * 0.5,
            "qty": rng.integers(1, 20, n) * 100.0,
            "spread": rng.uniform(1, 30, n),
            "cluster": [f"o{k}" for k in rng.integers(0, 60, n)],
        }
    )  # fmt: skip


def _kwargs(method: str) -> dict:
    return {"method": method, "flag": "flag", "spread": "spread", "controls": "level"}


@pytest.mark.parametrize("method", METHODS)
def test_row_order_and_cluster_labels_do_not_matter(frame: pl.DataFrame, method: str) -> None:
    base = adjusted_means(frame, "y", **_kwargs(method))
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3).with_columns(
        cluster=pl.col("cluster").str.replace("o", "order-")
    )
    _same_figures(adjusted_means(shuffled, "y", **_kwargs(method)), base, "shuffled")


@pytest.mark.parametrize("method", METHODS)
def test_weights_in_other_units_give_the_same_figures(frame: pl.DataFrame, method: str) -> None:
    base = adjusted_means(frame, "y", **_kwargs(method))
    lots = adjusted_means(frame.with_columns(qty=pl.col("qty") / 100), "y", **_kwargs(method))
    assert_same(lots, base, "lots")


@pytest.mark.parametrize("method", METHODS)
def test_an_affine_metric_gives_affine_figures(frame: pl.DataFrame, method: str) -> None:
    """y -> a y + b: estimates a theta + b, standard errors |a| se, influences a IF."""
    base = adjusted_means(frame, "y", **_kwargs(method))
    moved = adjusted_means(frame.with_columns(y=-2.5 * pl.col("y") + 7), "y", **_kwargs(method))
    assert_close(moved.table["estimate"].to_numpy(), -2.5 * base.table["estimate"].to_numpy() + 7,
                 "estimate")  # fmt: skip
    assert_close(moved.table["se"].to_numpy(), 2.5 * base.table["se"].to_numpy(), "se")
    assert_close(
        moved.influence.drop("cluster").to_numpy(),
        -2.5 * base.influence.drop("cluster").to_numpy(),
        "influence",
    )


def test_each_component_is_valued_as_if_alone(frame: pl.DataFrame) -> None:
    """With the cells split by flag, the midpoint venue D shares no cell with the others: with
    `reference="component"` every venue's estimate is the one of its group's rows alone
    (without controls, whose additive effects are estimated over every group's rows)."""
    styled = frame.with_columns(cell=pl.concat_str("flag", "cell", separator="|"))
    kwargs = {"method": "cr1", "reference": "component"}
    table = adjusted_means(styled, "y", **kwargs).table
    assert table.filter(pl.col("venue") == "D")["group"].item() == 1
    for in_group in (pl.col("venue") == "D", pl.col("venue") != "D"):
        alone = adjusted_means(styled.filter(in_group), "y", **kwargs).table
        got = table.filter(pl.col("venue").is_in(alone["venue"].implode()))
        assert got["estimate"].to_list() == pytest.approx(alone["estimate"].to_list(), rel=1e-9)


def test_both_cr2_algorithms_agree(frame: pl.DataFrame, monkeypatch) -> None:
    """The binomial series (clusters of leverage trace <= 1/2) and the eigendecomposition (all
    clusters) give the same CR2 figures."""
    kwargs = _kwargs("conditional")
    base = adjusted_means(frame, "y", **kwargs)
    monkeypatch.setattr(covariance, "_SERIES_MAX_TRACE", 1e-300)
    assert_same(adjusted_means(frame, "y", **kwargs), base, "eigendecomposition only")


@pytest.mark.parametrize("method", METHODS)
def test_small_batches_give_the_same_result(frame: pl.DataFrame, method: str, monkeypatch) -> None:
    """Clusters split over many batches (both CR2 paths) give the same figures."""
    base = adjusted_means(frame, "y", **_kwargs(method))
    monkeypatch.setattr(covariance, "_BATCH_ENTRIES", 64)
    assert_same(adjusted_means(frame, "y", **_kwargs(method)), base, "batches of 64 entries")
    monkeypatch.setattr(covariance, "_SERIES_MAX_TRACE", 1e-300)
    assert_same(adjusted_means(frame, "y", **_kwargs(method)), base, "eigen, batches of 64")


def test_options_are_checked_where_they_enter(frame: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        adjusted_means(frame, "y", method="hc0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reference must be one of"):
        adjusted_means(frame, "y", reference="pooled")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ci_method must be one of"):
        VenueSettings(ci_method="hc0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cluster must be one of"):
        VenueSettings(cluster="trader")  # type: ignore[arg-type]

"""`adjusted_means_many` (the metric-independent parts computed once per set of entering fills)
equals one `adjusted_means` call per metric to 1e-9, for both interval methods, including
metrics known on different fills (nulls and NaNs in different places); `adjusted_means_strata`
(one group-by for every stratum) equals one call per stratum's rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.simulate import SimulationConfig
from eqs_pipeline.stats import (
    METHODS,
    adjusted_means,
    adjusted_means_many,
    adjusted_means_strata,
    stratum_frames,
    within_stratum,
)
from eqs_pipeline.venues.scorecard import (
    CELL,
    CELL_COLUMNS,
    STYLE_CELL_COLUMNS,
    scorecard_estimates,
)
from eqs_pipeline.venues.settings import KEY_METRICS, WITHIN_STYLE_METRICS, VenueSettings
from eqs_pipeline_tests.venues.compare import assert_same
from eqs_pipeline_tests.venues.truth import Desk, simulated_desk

FILL_METRICS = [m for m in KEY_METRICS if m != "fill_rate"]


@pytest.fixture(scope="module")
def desk() -> Desk:
    config = SimulationConfig(days=2, symbols=8, orders_per_day=100, seed=41)
    return simulated_desk(config, VenueSettings(cluster="order"))


def _fills(desk: Desk) -> pl.DataFrame:
    """The desk's fills with extra metrics: a copy of a metric (same rows), one with nulls on
    a random tenth of the fills, one with NaNs on others, and one null everywhere."""
    fills = desk.fills.with_columns(cell=CELL)
    rng = np.random.default_rng(7)
    drop = pl.Series(rng.random(fills.height) < 0.1)
    nan = pl.Series(rng.random(fills.height) < 0.05)
    return fills.with_columns(
        cost_copy=pl.col("all_in_cost_bps") * 2 + 1,
        cost_holes=pl.when(drop).then(None).otherwise(pl.col("all_in_cost_bps")),
        spread_nans=pl.when(nan).then(float("nan")).otherwise(pl.col("effective_spread_bps")),
        nothing=pl.lit(None, pl.Float64),
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("spread", [None, "quoted_spread_bps"])
def test_many_equals_one_call_per_metric(desk: Desk, method: str, spread: str | None) -> None:
    fills = _fills(desk)
    metrics = [*FILL_METRICS, "cost_copy", "cost_holes", "spread_nans", "nothing"]
    known = fills.select(
        pl.col(m).is_not_null() & pl.col(m).is_not_nan() & (pl.col("qty") > 0) for m in metrics
    )
    masks = {tuple(known[m].to_list()) for m in metrics}
    assert 2 < len(masks) < len(metrics)  # shared and distinct sets of fills both exercised
    kwargs = {
        "method": method,
        "flag": "liquidity_flag",
        "spread": spread,
        "controls": "conditions",
    }
    many = adjusted_means_many(fills, metrics, **kwargs)
    assert list(many) == metrics
    for metric in metrics:
        assert_same(many[metric], adjusted_means(fills, metric, **kwargs), metric)


@pytest.mark.parametrize("method", METHODS)
def test_scorecard_estimates_equal_per_metric_calls(desk: Desk, method: str) -> None:
    """`scorecard.scorecard_estimates` (both comparisons from one group-by and one working
    model) against one `adjusted_means` call per metric and comparison."""
    settings = VenueSettings(cluster="order", ci_method=method)
    across, within = scorecard_estimates(desk.fills, desk.children, settings)
    assert list(across) == list(KEY_METRICS)
    assert list(within) == list(WITHIN_STYLE_METRICS)
    for metric, reference, cell, est in [
        *((m, "largest", CELL_COLUMNS, across[m]) for m in KEY_METRICS),
        *((m, "component", STYLE_CELL_COLUMNS, within[m]) for m in WITHIN_STYLE_METRICS),
    ]:
        child = metric == "fill_rate"
        single = adjusted_means(
            desk.children if child else desk.fills,
            metric,
            "qty",
            cell=cell,
            level=settings.ci_level,
            method=method,
            flag="liquidity_flag",
            spread=None if child else "quoted_spread_bps",
            controls="conditions",
            reference=reference,
            working_cell=STYLE_CELL_COLUMNS,
        )
        assert_same(est, single, f"{reference} {metric}")


@pytest.mark.parametrize("method", METHODS)
def test_strata_equal_one_call_per_stratum(desk: Desk, method: str) -> None:
    """Each stratum (liquidity x size bucket) of `adjusted_means_strata`: its weight per metric
    and its estimates, equal to `within_stratum` on the stratum's rows alone."""
    fills = _fills(desk)
    metrics = [*FILL_METRICS, "cost_holes", "nothing"]
    strata = ("liquidity_bucket", "size_bucket")
    kwargs = {"method": method, "controls": "conditions", "level": 0.9}
    out = adjusted_means_strata(fills, metrics, "qty", strata, **kwargs)
    parts = dict(stratum_frames(fills, strata))
    assert [key for key, _, _ in out] == sorted(parts)
    for key, weights, estimates in out:
        part = parts[key]
        alone = within_stratum(part, metrics, "qty", venue="venue", cluster="cluster", **kwargs)
        assert "nothing" not in estimates and "nothing" not in weights
        for metric in metrics[:-1]:
            entering = pl.col(metric).is_not_null() & pl.col(metric).is_not_nan()
            total = part.filter(entering & (pl.col("qty") > 0))["qty"].sum()
            assert weights[metric] == pytest.approx(total, rel=1e-12)
            assert_same(estimates[metric], alone[metric], f"{key} {metric}")


def test_many_edge_cases() -> None:
    frame = pl.DataFrame(
        {
            "venue": ["A", "B", "A", "B"],
            "cell": ["x"] * 4,
            "cluster": ["1", "2", "3", "4"],
            "qty": [1.0, 2.0, 0.0, 1.0],
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )
    assert adjusted_means_many(frame, []) == {}
    out = adjusted_means_many(frame, ["y", "y"])
    assert list(out) == ["y"]
    assert_same(out["y"], adjusted_means(frame, "y"))
    with pytest.raises(ValueError, match="method"):
        adjusted_means_many(frame, ["y"], method="hc0")

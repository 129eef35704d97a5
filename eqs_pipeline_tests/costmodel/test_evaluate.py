"""`costmodel.evaluate`: hand-computed figures on tiny arrays, and the figures of a true model
(y drawn from the predicted Gaussians) on 100,000 draws.

With 100,000 draws a share has a standard error of at most sqrt(0.25 / 1e5) = 0.0016, so the
tolerance 0.01 on a coverage is six standard errors; the misspecified models below miss it by
far more, so the checks can fail.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from eqs_pipeline.costmodel.evaluate import (
    calibration_table,
    interval,
    percentile,
    r2_against,
    scores,
)

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
Z50 = 0.6744897501960817  # Phi^-1(0.75)
Z90 = 1.6448536269514722  # Phi^-1(0.95)
Z95 = 1.959963984540054  # Phi^-1(0.975)


@pytest.mark.parametrize(
    ("y", "mean", "sd", "expected"),
    [
        pytest.param(
            [1.0, 2.0],
            [1.0, 1.0],
            [1.0, 1.0],
            # errors 0, 1; SST about 1.5 is 0.5; |err|/sd = 0, 1: one inside z50, both in z90.
            {
                "rmse": math.sqrt(0.5),
                "mae": 0.5,
                "nll": HALF_LOG_2PI + 0.25,
                "r2": 1 - 1 / 0.5,
                "coverage_50": 0.5,
                "coverage_90": 1.0,
                "n": 2.0,
            },
            id="two-orders",
        ),
        pytest.param(
            [0.0, 4.0, 8.0],
            [1.0, 4.0, 5.0],
            [2.0, 1.0, 2.0],
            # errors -1, 0, 3 (SSE 10); SST about 4 is 32; |err|/sd = 0.5, 0, 1.5.
            {
                "rmse": math.sqrt(10 / 3),
                "mae": 4 / 3,
                "nll": HALF_LOG_2PI + 2 * math.log(2) / 3 + 0.5 * (0.25 + 0 + 2.25) / 3,
                "r2": 1 - 10 / 32,
                "coverage_50": 2 / 3,
                "coverage_90": 1.0,
                "n": 3.0,
            },
            id="three-orders",
        ),
        pytest.param(
            [5.0, 5.0, 5.0, 5.0],
            [5.0, 6.0, 3.0, 5.0],
            [1.0, 0.5, 1.0, 0.1],
            # errors 0, -1, 2, 0; |err|/sd = 0, 2, 2, 0; constant y: r2 is NaN.
            {
                "rmse": math.sqrt(5 / 4),
                "mae": 3 / 4,
                "nll": HALF_LOG_2PI
                + (math.log(0.5) + math.log(0.1)) / 4
                + 0.5 * (0 + 4 + 4 + 0) / 4,
                "r2": math.nan,
                "coverage_50": 0.5,
                "coverage_90": 0.5,
                "n": 4.0,
            },
            id="constant-y",
        ),
    ],
)
def test_scores_by_hand(y, mean, sd, expected):
    got = scores(np.array(y), np.array(mean), np.array(sd))
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert isinstance(got[key], float), key
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), key


@pytest.mark.parametrize(
    ("y", "mean", "sd", "expected"),
    [
        (0.0, 0.0, 1.0, 0.5),
        (-1.0, 0.0, 1.0, 0.8413447460685429),  # Phi(1): cheaper than predicted
        (13.0, 10.0, 2.0, 0.06680720126885807),  # Phi(-1.5): dearer than predicted
    ],
)
def test_percentile_by_hand(y, mean, sd, expected):
    got = percentile(np.array([y]), np.array([mean]), np.array([sd]))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("mean", "sd", "level", "low", "high"),
    [
        (0.0, 1.0, 0.9, -Z90, Z90),
        (10.0, 2.0, 0.5, 10 - 2 * Z50, 10 + 2 * Z50),
        (5.0, 3.0, 0.95, 5 - 3 * Z95, 5 + 3 * Z95),
    ],
)
def test_interval_by_hand(mean, sd, level, low, high):
    lo, hi = interval(np.array([mean]), np.array([sd]), level)
    assert lo[0] == pytest.approx(low, rel=1e-12)
    assert hi[0] == pytest.approx(high, rel=1e-12)


@pytest.mark.parametrize(
    ("truth", "pred", "expected"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], 1 - 1 / 2),
        ([0.0, 2.0], [1.0, 1.0], 0.0),
        ([1.0, 5.0, 2.0], [1.0, 5.0, 2.0], 1.0),
        ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], 1 - 8 / 2),
    ],
)
def test_r2_against_by_hand(truth, pred, expected):
    assert r2_against(np.array(truth), np.array(pred)) == pytest.approx(expected, rel=1e-12)


@pytest.fixture(scope="module")
def true_model():
    """100,000 orders with predicted (mean, sd) and y drawn from N(mean, sd**2)."""
    rng = np.random.default_rng(20240304)
    n = 100_000
    mean = rng.gamma(2.0, 5.0, n)
    sd = np.exp(rng.normal(np.log(4.0), 0.5, n))
    y = mean + sd * rng.standard_normal(n)
    return y, mean, sd


def test_true_model_covers_its_intervals(true_model):
    y, mean, sd = true_model
    got = scores(y, mean, sd)
    assert got["n"] == 100_000.0
    assert got["coverage_50"] == pytest.approx(0.5, abs=0.01)
    assert got["coverage_90"] == pytest.approx(0.9, abs=0.01)
    # E[nll] = 0.5 log(2 pi) + E[log sd] + 0.5; the last term's sd over 1e5 draws is 0.0022.
    assert got["nll"] == pytest.approx(HALF_LOG_2PI + np.log(sd).mean() + 0.5, abs=0.01)
    # An sd 1.5 times too wide covers far more than 90%: the check can fail.
    assert scores(y, mean, 1.5 * sd)["coverage_90"] > 0.97


def test_true_model_percentile_is_uniform(true_model):
    y, mean, sd = true_model
    p = percentile(y, mean, sd)
    assert ((p >= 0) & (p <= 1)).all()
    shares = np.histogram(p, bins=10, range=(0.0, 1.0))[0] / len(p)
    np.testing.assert_allclose(shares, 0.1, atol=0.01)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    # A mean half an sd too low (the model thinks orders cheaper) is far from uniform.
    biased = percentile(y, mean - 0.5 * sd, sd)
    assert stats.kstest(biased, "uniform").pvalue < 1e-10
    assert biased.mean() < 0.4


def test_calibration_table_of_true_model(true_model):
    y, mean, sd = true_model
    table = calibration_table(y, mean, sd, bins=10)
    assert table.columns == [
        "bin",
        "orders",
        "predicted_bps",
        "realized_bps",
        "predicted_sd_bps",
        "realized_sd_bps",
        "coverage_90",
    ]
    assert table.shape == (10, 7)
    assert table["bin"].to_list() == list(range(1, 11))
    assert table["orders"].to_list() == [10_000] * 10
    predicted = table["predicted_bps"].to_numpy()
    assert (np.diff(predicted) > 0).all()
    # A bin of 10,000 orders: the realized mean's standard error is at most about
    # 8 / sqrt(1e4) = 0.08 bps, the sd's relative one 1/sqrt(2e4) = 0.7%, coverage's 0.3%.
    np.testing.assert_allclose(table["realized_bps"].to_numpy(), predicted, atol=0.5)
    np.testing.assert_allclose(
        table["realized_sd_bps"].to_numpy(), table["predicted_sd_bps"].to_numpy(), rtol=0.04
    )
    np.testing.assert_allclose(table["coverage_90"].to_numpy(), 0.9, atol=0.02)
    # Bins are quantile bins of the predicted mean: each one's predictions lie above the last's.
    order = np.argsort(mean, kind="stable")
    assert predicted[0] == pytest.approx(mean[order[:10_000]].mean())
    assert predicted[-1] == pytest.approx(mean[order[-10_000:]].mean())


def test_calibration_table_bins_of_unequal_and_tied_orders():
    rng = np.random.default_rng(7)
    y = rng.normal(size=23)
    table = calibration_table(y, np.zeros(23), np.ones(23), bins=5)
    assert table["bin"].to_list() == [1, 2, 3, 4, 5]
    counts = table["orders"].to_list()
    assert sum(counts) == 23
    assert max(counts) - min(counts) <= 1
    assert table["predicted_bps"].to_list() == [0.0] * 5
    assert table.schema["orders"] == pl.Int64


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1.0, 2.0], [1.0], [1.0, 1.0]), "mean has 1 rows, y has 2"),
        (([1.0, 2.0], [1.0, 1.0], [1.0]), "sd has 1 rows, y has 2"),
        (([1.0, np.nan], [1.0, 1.0], [1.0, 1.0]), "y is not finite in 1 rows"),
        (([1.0, 2.0], [np.inf, 1.0], [1.0, 1.0]), "mean is not finite in 1 rows"),
        (([1.0, 2.0], [1.0, 1.0], [np.nan, np.nan]), "sd is not finite in 2 rows"),
        (([1.0, 2.0], [1.0, 1.0], [0.0, 1.0]), "sd must be > 0; 1 rows"),
    ],
)
def test_bad_inputs_are_named(args, message):
    arrays = [np.array(a) for a in args]
    for call in (scores, percentile, calibration_table):
        with pytest.raises(ValueError, match=message):
            call(*arrays)


def test_bad_level_bins_and_truth_are_refused():
    with pytest.raises(ValueError, match="level must be in"):
        interval(np.zeros(2), np.ones(2), 1.0)
    with pytest.raises(ValueError, match="bins must be between 1 and the number of orders"):
        calibration_table(np.zeros(3), np.zeros(3), np.ones(3), bins=4)
    with pytest.raises(ValueError, match="pred has 1 rows, truth has 2"):
        r2_against(np.zeros(2), np.zeros(1))
    with pytest.raises(ValueError, match="truth is not finite in 1 rows"):
        r2_against(np.array([np.nan, 1.0]), np.zeros(2))

"""The local-level trend forecast (`eqs_pipeline.costmodel.forecast`) on simulated series.

Every series is simulated from the model itself (seeded numpy), so the true parameters, the
exact Kalman filter and the nominal coverage are known. All frames have 120 steps, so the whole
file compiles the JAX fit once.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import polars as pl
import pytest


# The module under test imports JAX: these wrappers import it when a test runs, not when the
# file is collected (which every test worker does; about 3 s each).
def _lf():
    from eqs_pipeline.costmodel import forecast as lf

    return lf


def ForecastSettings(**settings):
    return _lf().ForecastSettings(**settings)


def backtest(*args, **kwargs):
    return _lf().backtest(*args, **kwargs)


def fit_local_level(*args, **kwargs):
    return _lf().fit_local_level(*args, **kwargs)


def forecast(*args, **kwargs):
    return _lf().forecast(*args, **kwargs)


STEPS = 120
SIGMA_OBS = 1.0
SIGMA_LEVEL = 0.5


def _frame(values, std_errors=None, keep_missing=False):
    """Long frame from per-series arrays over steps 0..len-1; NaN values become absent rows
    (or null values with `keep_missing`, which keeps the last step T - 1 where it is)."""
    parts = []
    for key, y in values.items():
        se = (std_errors or {}).get(key, np.full(y.size, np.nan))
        keep = np.ones(y.size, bool) if keep_missing else ~np.isnan(y)
        parts.append(
            pl.DataFrame(
                {
                    "series": [key] * int(keep.sum()),
                    "step": np.flatnonzero(keep).astype(np.int64),
                    "value": y[keep],
                    "std_error": se[keep],
                }
            ).with_columns(pl.col("value", "std_error").fill_nan(None))
        )
    return pl.concat(parts)


def _simulate(rng, scale=1.0, std_error=None, missing=0.0, steps=STEPS):
    """One local-level series (level starting at 5 * scale) with per-day extra noise of sd
    `std_error` (the known standard error of the day's mean); `missing` share of days NaN."""
    level = scale * 5.0 + np.cumsum(rng.normal(0.0, SIGMA_LEVEL * scale, steps))
    noise_sd = np.hypot(SIGMA_OBS * scale, 0.0 if std_error is None else std_error)
    y = level + rng.normal(0.0, 1.0, steps) * noise_sd
    y[rng.random(steps) < missing] = np.nan
    return y


def _reference(y, se, sigma_obs, sigma_level, horizon=1):
    """Textbook Kalman filter with an exact diffuse start: the level is the first observation
    with variance sigma_obs^2 + se^2; the log-likelihood sums observations 2..n. Returns the
    filtered level and variance at the last step, the log-likelihood, and the h-step sd."""
    first = int(np.flatnonzero(~np.isnan(y))[0])
    a = y[first]
    p = sigma_obs**2 + se[first] ** 2
    loglik = 0.0
    for t in range(first + 1, y.size):
        p += sigma_level**2
        if np.isnan(y[t]):
            continue
        f = p + sigma_obs**2 + se[t] ** 2
        v = y[t] - a
        loglik += -0.5 * (np.log(2 * np.pi * f) + v * v / f)
        a += p / f * v
        p -= p * p / f
    return a, p, loglik


@pytest.fixture(scope="module")
def recovery():
    """40 series on scales from 0.01 to 100, each with a known, varying standard error per day
    (sd 0.5..1.5 in the series' units, comparable to sigma_obs), and their fit."""
    rng = np.random.default_rng(20240611)
    values, errors, scales = {}, {}, {}
    for i, scale in enumerate(10.0 ** rng.uniform(-2, 2, 40)):
        se = scale * rng.uniform(0.5, 1.5, STEPS)
        key = f"s{i:02d}"
        values[key] = _simulate(rng, scale=scale, std_error=se, missing=0.05)
        errors[key], scales[key] = se, scale
    frame = _frame(values, errors)
    return frame, fit_local_level(frame), scales


@pytest.fixture(scope="module")
def coverage_frame():
    rng = np.random.default_rng(7)
    return _frame({f"s{i:02d}": _simulate(rng, missing=0.1) for i in range(40)})


def test_fitted_parameters_recover_the_simulated_ones(recovery):
    """Per series (~114 days, a known se comparable to sigma_obs) the MLE has a relative sd of
    about 0.16 (sigma_obs) and 0.22 (sigma_level) (simulation over 8 seeds of this fixture); the
    median over 40 series then has an sd of ~0.03-0.045 (1.25 sd / sqrt(40)); over the 8 seeds
    the median ratios stayed within 0.94..1.03. A bound of 0.10 on the median ratio is 2-3 sd
    and far from a wrong model: ignoring the standard errors gives a median sigma_obs ratio of
    1.44. The median absolute relative errors (0.09-0.15 and 0.13-0.20 over the seeds) are
    bounded at 0.20 and 0.30."""
    _, fit, scales = recovery
    assert fit.height == 40
    scale = fit["series"].replace_strict(scales, return_dtype=pl.Float64).to_numpy()
    obs = fit["sigma_obs"].to_numpy() / (SIGMA_OBS * scale)
    lvl = fit["sigma_level"].to_numpy() / (SIGMA_LEVEL * scale)
    assert abs(np.median(obs) - 1) < 0.10, np.median(obs)
    assert abs(np.median(lvl) - 1) < 0.10, np.median(lvl)
    assert np.median(np.abs(obs - 1)) < 0.20
    assert np.median(np.abs(lvl - 1)) < 0.30


def test_level_forecast_and_loglik_match_a_numpy_kalman_filter(recovery):
    """The filtered level, its sd, the diffuse log-likelihood and the h=1 forecast agree with a
    hand-written filter with an exact diffuse start (the module's 1e4 * var prior differs from
    it by ~1e-6 relative), and the fitted sigmas maximize the reference log-likelihood."""
    rng = np.random.default_rng(3)
    se = rng.uniform(0.2, 0.8, STEPS)
    y = _simulate(rng, std_error=se, missing=0.15)
    y[:4] = np.nan  # starts late
    y[-3:] = np.nan  # and misses its last three days: predicted through them
    frame = _frame({"x": y}, {"x": se}, keep_missing=True)
    fit = fit_local_level(frame).row(0, named=True)
    out = forecast(frame).filter(pl.col("h") == 1).row(0, named=True)
    assert out["step"] == STEPS
    a, p, loglik = _reference(y, se, fit["sigma_obs"], fit["sigma_level"])
    assert fit["n_obs"] == int((~np.isnan(y)).sum())
    assert fit["level"] == pytest.approx(a, rel=1e-6)
    assert fit["level_sd"] == pytest.approx(np.sqrt(p), rel=1e-5)
    assert fit["loglik"] == pytest.approx(loglik, abs=1e-4)
    assert out["forecast"] == pytest.approx(a, rel=1e-6)
    se_future = np.median(se[~np.isnan(y)][-20:])
    expected_sd = np.sqrt(p + fit["sigma_level"] ** 2 + fit["sigma_obs"] ** 2 + se_future**2)
    assert out["sd"] == pytest.approx(expected_sd, rel=1e-5)
    for factor_obs, factor_level in [(1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95)]:
        other = _reference(y, se, fit["sigma_obs"] * factor_obs, fit["sigma_level"] * factor_level)
        assert other[2] < loglik


def test_intervals_are_gaussian_and_widen_with_the_horizon(coverage_frame):
    out = forecast(coverage_frame).sort("series", "h")
    assert out.columns[:3] == ["series", "h", "step"]
    assert out["h"].to_list() == [1, 2, 3, 4, 5] * 40
    assert out["step"].to_list() == [120, 121, 122, 123, 124] * 40
    for level, name in [(0.80, "80"), (0.95, "95")]:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        np.testing.assert_allclose(out[f"hi_{name}"] - out["forecast"], z * out["sd"], rtol=1e-12)
        np.testing.assert_allclose(out["forecast"] - out[f"lo_{name}"], z * out["sd"], rtol=1e-12)
    sd = out["sd"].to_numpy().reshape(40, 5)
    assert (np.diff(sd, axis=1) > 0).all()
    assert (out["lo_95"] < out["lo_80"]).all() and (out["hi_80"] < out["hi_95"]).all()
    mean = out["forecast"].to_numpy().reshape(40, 5)
    assert (mean == mean[:, :1]).all()  # a local level forecasts a flat trend
    variance_step = np.diff(sd**2, axis=1)
    np.testing.assert_allclose(
        variance_step, out["sigma_level"].to_numpy().reshape(40, 5)[:, 1:] ** 2, rtol=1e-9
    )


def test_backtest_coverage_is_near_nominal(coverage_frame):
    """With the true parameters the same rolling origins cover 0.80 / 0.95 to within ~1.5
    points (the checks within a series are correlated); plug-in MLE parameters from 30+ days
    lose ~2.5 points at 80% and ~1.7 at 95% (simulation), so +-4 points holds with margin while
    an interval that forgets sigma_obs^2 or h * sigma_level^2 covers far less."""
    settings = ForecastSettings(backtest_min_history=30)
    report = backtest(coverage_frame, settings)
    assert abs(report["coverage_80"] - 0.80) <= 0.04, report
    assert abs(report["coverage_95"] - 0.95) <= 0.04, report
    for h in range(1, 6):
        assert 0.70 < report[f"coverage_80_h{h}"] < 0.90
        assert 0.88 < report[f"coverage_95_h{h}"] <= 1.0
    # 40 series x ~90 origins x 5 horizons, 10% of the realized days missing
    assert 14_000 < report["forecasts"] < 18_000


def test_backtest_with_nothing_to_check_reports_zero_forecasts():
    rng = np.random.default_rng(1)
    frame = _frame({"a": _simulate(rng, steps=8)})
    assert backtest(frame) == {"forecasts": 0.0}


def test_missing_days_absent_null_and_nan_are_the_same(coverage_frame):
    """A day can be missing as an absent row, a null value or a NaN value."""
    absent = coverage_frame.filter(pl.col("series") < "s05")
    steps = pl.DataFrame({"step": np.arange(STEPS, dtype=np.int64)})
    keys = absent.select("series").unique()
    full = keys.join(steps, how="cross").join(absent, on=["series", "step"], how="left")
    as_nan = full.with_columns(pl.col("value").fill_null(float("nan")))
    assert full["value"].null_count() > 20
    expected = forecast(absent)
    assert expected["sd"].is_finite().all()
    assert forecast(full).equals(expected)
    assert forecast(as_nan).equals(expected)


def test_a_series_short_of_history_is_absent():
    rng = np.random.default_rng(5)
    short = np.full(STEPS, np.nan)
    short[50:55] = rng.normal(size=5)
    exact = np.full(STEPS, np.nan)
    exact[::12] = rng.normal(size=10)  # exactly min_history observed days
    frame = _frame({"long": _simulate(rng), "short": short, "exact": exact})
    assert sorted(fit_local_level(frame)["series"]) == ["exact", "long"]
    assert sorted(forecast(frame)["series"].unique()) == ["exact", "long"]
    assert forecast(frame, ForecastSettings(min_history=11))["series"].unique().to_list() == [
        "long"
    ]


def test_a_large_standard_error_widens_the_intervals():
    """Two series share their level path and base noise; `wide` also has a reported standard
    error of 3 on its last 20 days (and the matching extra noise). Its forecast variance carries
    se_future^2 = 9 on top of the other's."""
    rng = np.random.default_rng(11)
    base = _simulate(rng)
    se = np.where(np.arange(STEPS) >= STEPS - 20, 3.0, 0.0)
    wide = base + rng.normal(size=STEPS) * se
    out = forecast(_frame({"narrow": base, "wide": wide}, {"wide": se})).sort("series", "h")
    narrow_sd = out.filter(pl.col("series") == "narrow")["sd"].to_numpy()
    wide_sd = out.filter(pl.col("series") == "wide")["sd"].to_numpy()
    assert (wide_sd**2 - narrow_sd**2 > 0.8 * 9.0).all()
    fit = fit_local_level(_frame({"wide": wide}, {"wide": se})).row(0, named=True)
    h = np.arange(1, 6)
    np.testing.assert_allclose(
        wide_sd**2,
        fit["level_sd"] ** 2 + h * fit["sigma_level"] ** 2 + fit["sigma_obs"] ** 2 + 9.0,
        rtol=1e-9,
    )


def test_same_input_gives_identical_output(coverage_frame):
    subset = coverage_frame.filter(pl.col("series") < "s08")
    shuffled = subset.sample(fraction=1.0, shuffle=True, seed=2)
    first = forecast(subset)
    assert forecast(subset).equals(first)
    assert forecast(shuffled).equals(first)
    settings = ForecastSettings(refit_every=20)
    assert backtest(subset, settings) == backtest(shuffled, settings)


@pytest.mark.parametrize(
    ("change", "column"),
    [
        (lambda f: f.drop("series"), "series"),
        (lambda f: f.drop("step"), "step"),
        (lambda f: f.drop("value"), "value"),
        (lambda f: f.with_columns(pl.col("step").cast(pl.Float64)), "step"),
        (lambda f: f.with_columns(pl.col("value").cast(pl.String)), "value"),
        (lambda f: f.with_columns(pl.lit(-1.0).alias("std_error")), "std_error"),
        (lambda f: pl.concat([f, f.head(1)]), "step"),
    ],
)
def test_bad_input_raises_naming_the_column(change, column):
    rng = np.random.default_rng(0)
    frame = _frame({"a": _simulate(rng, steps=20)})
    with pytest.raises(ValueError, match=column):
        forecast(change(frame))

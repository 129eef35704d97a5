"""Trend forecasts of daily quality metrics from a local-level state-space model.

The product keeps, per trade date, the daily mean of each quality metric (`cost_z`,
`cost_vs_expected_bps`, ...) for the desk and for every venue, algo and broker, each mean with
its standard error. This module turns such a daily series into a forecast of the next trade
dates with prediction intervals, and measures how often those intervals held in the past. It is
pure (numpy, polars, jax): the caller maps trade dates to the integer `step` index and back.

Model (one per series; `se_t` is the known standard error of day t's mean, 0 where not given)::

    y_t     = mu_t + e_t,   e_t ~ N(0, sigma_obs^2 + se_t^2)
    mu_t+1  = mu_t + w_t,   w_t ~ N(0, sigma_level^2)

`sigma_obs` is the day-to-day noise beyond the sampling error of the mean, `sigma_level` the
drift of the underlying level. A Kalman filter (`jax.lax.scan`) gives the likelihood; a missing
day (null or NaN value) has no update step, only the prediction `P += sigma_level^2`.

Diffuse start: the level is initialised at the series' first observed day as
``mu ~ N(first observed y, 1e4 * var(y) + 1)`` (in the standardized units below), which is
practically uninformative, and the first observation's likelihood term is left out: it only
pins the level and carries no information on the two variances, which is the standard treatment
of a diffuse initial state (Durbin & Koopman, ch. 5). Days before the first observation are
skipped entirely, so the log-likelihood is that of observations 2..n given observation 1.

Estimation: maximum likelihood of ``(log sigma_obs, log sigma_level)`` for all series at once.
Each series is standardized by its own centre (mean) and scale (the root mean square of its
successive observed differences, whose square is about ``sigma_level^2 + 2 sigma_obs^2`` and so
bounds both sigmas; for a constant series its largest absolute value, or 1), the series are
padded to a common length with NaN (padding is a run of missing days and changes nothing), and
the negative log-likelihood is `jax.vmap`-ed. The sigmas are kept within ``[1e-3, 10]`` times
the scale, so a flat or degenerate likelihood cannot send a sigma to 0 or infinity.

Optimizer: a damped Newton method with a fixed number of iterations (`_NEWTON_ITERATIONS`),
run from two starts (the method-of-moments estimate from the differences' autocovariances, and
a fixed balanced point), keeping the better optimum. With two parameters the exact gradient and
Hessian are cheap: forward-mode differentiation carries them through one pass of the filter.
The Hessian's eigenvalues are replaced by their absolute values (so the step descends also where
the likelihood is not convex), the step is capped in length, and each iteration evaluates the
objective at several fractions of the step (including 0), clipped into the box, and keeps the
best. The objective therefore never increases, the box holds at every iterate, and there are no
data-dependent loops: the vmapped batch does the same work for every series, the result is
deterministic, and convergence near the optimum is quadratic (on simulated series 16 iterations
reach the 20-iteration optimum to 1e-13 in log-likelihood). Quasi-Newton with line-search
`while` loops (`jax.scipy.optimize.minimize`) has no bounds and, vmapped, waits on its slowest
series. Fits run in float64 (`jax.enable_x64` around the calls only) in fixed chunks of
`_CHUNK` series padded to a multiple of `_TIME_BUCKET` steps, so calls of any size reuse one
compiled program.

Forecast ``h = 1..horizon`` trade dates after the last step ``T - 1`` shared by all series (a
series missing its last days is predicted through them): the mean is the filtered level
``a_T``; the variance of the future day's mean is::

    P_T + h * sigma_level^2 + sigma_obs^2 + se_future^2

with ``P_T`` the filtered level variance and ``se_future`` the median standard error of the
series' last 20 observed days (a stand-in for the unknown sampling error of future days' means;
0 where no standard errors are given). Intervals are Gaussian quantiles (`levels`, 80% and 95%
by default). Parameter uncertainty is not included, so with short histories the intervals are
somewhat narrow; `backtest` measures it.

Backtest: rolling origins. A series' first origin is the step at which it has
`backtest_min_history` observed days; its parameters are fitted on the data up to that origin
and refitted every `refit_every` origins (each fit uses only the data up to its own origin), and
every origin uses the latest fit at or before it. The level is filtered up to the origin with
those parameters, ``1..horizon`` steps are forecast, and each realized value (where observed)
is checked against the intervals. Refitting every few origins instead of at each one keeps the
cost at about ``T / refit_every`` fits per series; parameters fitted a few days earlier barely
differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import polars as pl

__all__ = ["ForecastSettings", "backtest", "fit_local_level", "forecast"]

_REQUIRED = ("series", "step", "value")
_DIFFUSE_SCALE = 1e4
_LOG_SIGMA_LO = math.log(1e-3)
_LOG_SIGMA_HI = math.log(10.0)
# Each fit starts from its moments (`_moment_start`) and from this fixed point (log sigma_obs,
# log sigma_level in standardized units) and keeps the better optimum.
_FIXED_START = np.log([0.5, 0.5])
_NEWTON_ITERATIONS = 20
_MAX_STEP = 2.0
_STEP_FRACTIONS = (1.0, 0.5, 0.25, 0.1, 0.03, 0.0)
_SE_WINDOW = 20
_TIME_BUCKET = 32
_CHUNK = 64


@dataclass(frozen=True)
class ForecastSettings:
    """Forecast horizon and history requirements.

    `horizon`: number of trade dates forecast after the last step. `min_history`: observed days
    a series needs to be fitted and forecast. `levels`: the two central interval levels; the
    columns are named by the percentage (`lo_80`, `hi_95`, ...). `backtest_min_history`:
    observed days up to a backtest origin before it is used. `refit_every`: the backtest refits
    a series' parameters every this many origins (see the module docstring).
    """

    horizon: int = 5
    min_history: int = 10
    levels: tuple[float, float] = (0.80, 0.95)
    backtest_min_history: int = 10
    refit_every: int = 5

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.min_history < 2 or self.backtest_min_history < 2:
            raise ValueError("min_history and backtest_min_history must be >= 2")
        if self.refit_every < 1:
            raise ValueError(f"refit_every must be >= 1, got {self.refit_every}")
        if not all(0.0 < level < 1.0 for level in self.levels):
            raise ValueError(f"levels must lie in (0, 1), got {self.levels}")
        names = [_level_name(level) for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"levels must differ in whole percent, got {self.levels}")


def _level_name(level: float) -> str:
    return f"{round(level * 100):d}"


# --- JAX core --------------------------------------------------------------------------------


def _kalman(log_sigmas, y, se2, a0, p0):
    """Filter one standardized series: per-step filtered level and variance, and the
    log-likelihood without the first observation's term."""
    s2o = jnp.exp(2.0 * log_sigmas[0])
    s2l = jnp.exp(2.0 * log_sigmas[1])

    def step(carry, inputs):
        a, p, started, loglik = carry
        y_t, se2_t = inputs
        observed = ~jnp.isnan(y_t)
        noise = s2o + se2_t
        f = p + noise
        v = jnp.where(observed, y_t, a) - a
        a_f = jnp.where(observed, a + p / f * v, a)
        p_f = jnp.where(observed, p * noise / f, p)
        term = -0.5 * (jnp.log(2.0 * jnp.pi * f) + v * v / f)
        loglik = loglik + jnp.where(observed & started, term, 0.0)
        started = started | observed
        p_next = jnp.where(started, p_f + s2l, p_f)
        return (a_f, p_next, started, loglik), (a_f, p_f)

    init = (a0, p0, jnp.asarray(False), jnp.zeros_like(a0))
    (_, _, _, loglik), (a_f, p_f) = jax.lax.scan(step, init, (y, se2))
    return a_f, p_f, loglik


def _newton(start, y, se2, a0, p0):
    """Damped, box-constrained Newton minimisation of one series' negative log-likelihood."""

    def nll(theta):
        return -_kalman(theta, y, se2, a0, p0)[2]

    def gradient(theta):
        g = jax.jacfwd(nll)(theta)
        return g, g

    # Forward mode throughout: one scan carries the 2 x 2 second-order tangents, which is
    # cheaper than reverse mode through the scan for two parameters.
    hessian_and_gradient = jax.jacfwd(gradient, has_aux=True)
    fractions = jnp.asarray(_STEP_FRACTIONS)

    def body(_, theta):
        hessian, g = hessian_and_gradient(theta)
        eigenvalues, vectors = jnp.linalg.eigh(hessian)
        curvature = jnp.maximum(jnp.abs(eigenvalues), 1e-6)
        direction = -vectors @ ((vectors.T @ g) / curvature)
        direction = jnp.where(jnp.all(jnp.isfinite(direction)), direction, 0.0)
        length = jnp.linalg.norm(direction)
        direction = direction * jnp.minimum(1.0, _MAX_STEP / jnp.maximum(length, 1e-300))
        candidates = jnp.clip(theta + fractions[:, None] * direction, _LOG_SIGMA_LO, _LOG_SIGMA_HI)
        values = jax.vmap(nll)(candidates)
        values = jnp.where(jnp.isfinite(values), values, jnp.inf)
        return candidates[jnp.argmin(values)]

    theta = jax.lax.fori_loop(0, _NEWTON_ITERATIONS, body, start)
    return theta, nll(theta)


@jax.jit
def _fit_batch(starts, y_fit, y_full, se2, a0, p0):
    """Fit each row of `y_fit` from its starts (B, K, 2), keeping the best, then filter the
    row's `y_full` with the fitted parameters: log-sigmas (B, 2), max loglik (B,), filtered
    level and variance (B, T)."""
    over_starts = jax.vmap(_newton, in_axes=(0, None, None, None, None))
    thetas, values = jax.vmap(over_starts)(starts, y_fit, se2, a0, p0)
    values = jnp.where(jnp.isfinite(values), values, jnp.inf)
    best = jnp.argmin(values, axis=1)
    rows = jnp.arange(y_fit.shape[0])
    theta = thetas[rows, best]
    a_f, p_f, _ = jax.vmap(_kalman)(theta, y_full, se2, a0, p0)
    return theta, -values[rows, best], a_f, p_f


# --- numpy preparation -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    """The long frame as a (series x step) panel: values (NaN = missing) and se (0 = none)."""

    keys: pl.Series
    y: np.ndarray
    se: np.ndarray


@dataclass(frozen=True)
class _Problems:
    """Standardized, padded inputs of a batch of fits (one row per fit)."""

    y_fit: np.ndarray
    y_full: np.ndarray
    se2: np.ndarray
    a0: np.ndarray
    p0: np.ndarray
    starts: np.ndarray
    center: np.ndarray
    scale: np.ndarray


def _panel(frame: pl.DataFrame) -> _Panel:
    for column in _REQUIRED:
        if column not in frame.columns:
            raise ValueError(f"forecast input lacks column {column!r}")
    if not frame.schema["step"].is_integer():
        raise ValueError(f"column 'step' must be an integer, got {frame.schema['step']}")
    for column in ("value", "std_error"):
        dtype = frame.schema.get(column, pl.Null)
        if not (dtype.is_numeric() or dtype == pl.Null):
            raise ValueError(f"column {column!r} must be numeric, got {dtype}")
    for column in ("series", "step"):
        if frame[column].null_count():
            raise ValueError(f"column {column!r} has null values")
    if frame.height and frame["step"].min() < 0:
        raise ValueError("column 'step' must be >= 0")
    if frame.select(pl.struct("series", "step").is_duplicated().any()).item():
        raise ValueError("columns 'series' and 'step' must identify a row; duplicates found")
    se_expr = pl.col("std_error") if "std_error" in frame.columns else pl.lit(None)
    long = frame.select(
        "series",
        pl.col("step").cast(pl.Int64),
        pl.col("value").cast(pl.Float64).fill_nan(None),
        se_expr.cast(pl.Float64).fill_nan(None).alias("std_error"),
    )
    if long["std_error"].is_infinite().any() or (long["std_error"] < 0).any():
        raise ValueError("column 'std_error' must be finite and >= 0")
    if long["value"].is_infinite().any():
        raise ValueError("column 'value' must be finite (or null)")
    keys = long["series"].unique().sort()
    length = int(long["step"].max()) + 1 if long.height else 0
    index = pl.DataFrame({"series": keys, "_row": np.arange(keys.len(), dtype=np.int64)})
    rows = long.join(index, on="series")
    y = np.full((keys.len(), length), np.nan)
    se = np.zeros((keys.len(), length))
    r = rows["_row"].to_numpy()
    s = rows["step"].to_numpy()
    y[r, s] = rows["value"].to_numpy(allow_copy=True).astype(float)
    se[r, s] = rows["std_error"].fill_null(0.0).to_numpy()
    return _Panel(keys=keys, y=y, se=se)


def _moment_start(standardized: np.ndarray, se2: np.ndarray) -> np.ndarray:
    """Method-of-moments start from the successive differences d of the observed values:
    ``Var(d) = sigma_level^2 + 2 (sigma_obs^2 + se^2)``, ``Cov(d_t, d_t-1) = -(sigma_obs^2 +
    se^2)``; each variance floored at 0.05 (standardized) to start off the boundary."""
    d = np.diff(standardized)
    if d.size < 3:
        return np.log([0.5, 0.5])
    d = d - d.mean()
    gamma0 = float(np.mean(d * d))
    gamma1 = float(np.mean(d[1:] * d[:-1]))
    noise = max(-gamma1, 0.0)
    obs = max(noise - float(np.mean(se2)), 0.05)
    level = max(gamma0 - 2.0 * noise, 0.05)
    return 0.5 * np.log([obs, level])


def _problems(y: np.ndarray, se: np.ndarray, cutoff: np.ndarray) -> _Problems:
    """Standardize each row on its data up to `cutoff` (inclusive) and pad rows and steps.

    Rows are padded to a multiple of `_CHUNK` and steps to a multiple of `_TIME_BUCKET` (NaN:
    missing days after the last), so calls of any size reuse the same compiled code."""
    n, length = y.shape
    visible = np.arange(length)[None, :] <= cutoff[:, None]
    y_fit = np.where(visible, y, np.nan)
    center = np.zeros(n)
    scale = np.ones(n)
    a0 = np.zeros(n)
    p0 = np.ones(n)
    starts = np.tile(_FIXED_START, (n, 2, 1))
    for i in range(n):
        seen = ~np.isnan(y_fit[i])
        values = y_fit[i][seen]
        if values.size == 0:
            continue
        center[i] = values.mean()
        diff_rms = np.sqrt(np.mean(np.diff(values) ** 2)) if values.size > 1 else 0.0
        largest = np.max(np.abs(values))
        scale[i] = diff_rms if diff_rms > 0 else (largest if largest > 0 else 1.0)
        standardized = (values - center[i]) / scale[i]
        a0[i] = standardized[0]
        p0[i] = _DIFFUSE_SCALE * np.var(standardized) + 1.0
        moments = _moment_start(standardized, (se[i][seen] / scale[i]) ** 2)
        starts[i, 0] = np.clip(moments, _LOG_SIGMA_LO, _LOG_SIGMA_HI)
    rows = -(-max(n, 1) // _CHUNK) * _CHUNK
    steps = -(-max(length, 1) // _TIME_BUCKET) * _TIME_BUCKET

    def pad(a: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((rows, steps), fill)
        out[:n, :length] = a
        return out

    def pad_rows(a: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((rows, *a.shape[1:]), fill)
        out[:n] = a
        return out

    full = (y - center[:, None]) / scale[:, None]
    return _Problems(
        y_fit=pad(np.where(visible, full, np.nan), np.nan),
        y_full=pad(full, np.nan),
        se2=pad((se / scale[:, None]) ** 2, 0.0),
        a0=pad_rows(a0, 0.0),
        p0=pad_rows(p0, 1.0),
        starts=pad_rows(starts, 0.0),
        center=center,
        scale=scale,
    )


def _fit(problems: _Problems) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit every problem; filter its full (unmasked) series with the fitted parameters.

    Returns the log-sigmas (n, 2) and the filtered level and variance (n, T), in
    standardized units, and the max log-likelihood in the original units."""
    n = problems.center.size
    parts: list[tuple[np.ndarray, ...]] = []
    p = problems
    arrays = (p.starts, p.y_fit, p.y_full, p.se2, p.a0, p.p0)
    with jax.enable_x64(True):
        for lo in range(0, p.y_fit.shape[0], _CHUNK):
            outputs = _fit_batch(*(jnp.asarray(a[lo : lo + _CHUNK]) for a in arrays))
            parts.append(tuple(np.asarray(a) for a in outputs))
    theta, loglik, a_f, p_f = (np.concatenate(column)[:n] for column in zip(*parts, strict=True))
    n_terms = np.maximum((~np.isnan(problems.y_fit[:n])).sum(axis=1) - 1, 0)
    loglik = loglik - n_terms * np.log(problems.scale)
    return np.clip(theta, _LOG_SIGMA_LO, _LOG_SIGMA_HI), a_f, p_f, loglik


def _future_se(y: np.ndarray, se: np.ndarray, upto: int) -> float:
    """Median standard error of the last `_SE_WINDOW` observed days at or before `upto`."""
    observed = np.flatnonzero(~np.isnan(y[: upto + 1]))[-_SE_WINDOW:]
    return float(np.median(se[observed])) if observed.size else 0.0


# --- public API ------------------------------------------------------------------------------


def fit_local_level(
    frame: pl.DataFrame, settings: ForecastSettings = ForecastSettings()
) -> pl.DataFrame:
    """Fit the local-level model to every series of a long frame by maximum likelihood.

    `frame` has one row per series and trade date: `series` (the key), `step` (integer index of
    the trade date, 0..T-1 shared by all series; an absent step is a missing day), `value` (the
    day's mean, may be null) and optionally `std_error` (its standard error, null or absent = 0).

    Returns one row per series with at least `settings.min_history` observed values, sorted by
    series: `n_obs`, `sigma_obs`, `sigma_level`, the filtered `level` at the last step T-1 and
    its standard deviation `level_sd`, and the maximized `loglik` (without the first
    observation's term; see the module docstring). Raises ValueError naming a missing or
    malformed column.
    """
    panel = _panel(frame)
    return _fit_frame(panel, settings)[0]


def _fit_frame(panel: _Panel, settings: ForecastSettings) -> tuple[pl.DataFrame, np.ndarray]:
    """The fit table and the index of its series in the panel."""
    n_obs = (~np.isnan(panel.y)).sum(axis=1)
    chosen = np.flatnonzero(n_obs >= settings.min_history)
    schema = {
        "series": panel.keys.dtype,
        "n_obs": pl.Int64,
        "sigma_obs": pl.Float64,
        "sigma_level": pl.Float64,
        "level": pl.Float64,
        "level_sd": pl.Float64,
        "loglik": pl.Float64,
    }
    if chosen.size == 0:
        return pl.DataFrame(schema=schema), chosen
    y, se = panel.y[chosen], panel.se[chosen]
    last = y.shape[1] - 1
    problems = _problems(y, se, np.full(chosen.size, last))
    theta, a_f, p_f, loglik = _fit(problems)
    scale, center = problems.scale, problems.center
    table = pl.DataFrame(
        {
            "series": panel.keys.gather(chosen),
            "n_obs": n_obs[chosen].astype(np.int64),
            "sigma_obs": scale * np.exp(theta[:, 0]),
            "sigma_level": scale * np.exp(theta[:, 1]),
            "level": center + scale * a_f[:, last],
            "level_sd": scale * np.sqrt(p_f[:, last]),
            "loglik": loglik,
        },
        schema=schema,
    )
    return table, chosen


def _intervals(mean: np.ndarray, sd: np.ndarray, levels: tuple[float, ...]) -> dict:
    out = {}
    for level in levels:
        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        out[f"lo_{_level_name(level)}"] = mean - z * sd
        out[f"hi_{_level_name(level)}"] = mean + z * sd
    return out


def forecast(frame: pl.DataFrame, settings: ForecastSettings = ForecastSettings()) -> pl.DataFrame:
    """Forecast every series `1..settings.horizon` trade dates after the last step.

    Input as for `fit_local_level`. Returns one row per series and horizon `h`, sorted by
    series and h: `step` (= T - 1 + h, the step index of the forecast date), `forecast` (the
    filtered level), `sd` (the standard deviation of the future day's mean, see the module
    docstring), `lo_80`/`hi_80`/`lo_95`/`hi_95` (named by `settings.levels`), and the series'
    `sigma_obs`, `sigma_level` and `n_obs`. Series with fewer than `settings.min_history`
    observed values are absent.
    """
    panel = _panel(frame)
    fits, chosen = _fit_frame(panel, settings)
    horizons = np.arange(1, settings.horizon + 1)
    level_names = [_level_name(level) for level in settings.levels]
    schema = {
        "series": panel.keys.dtype,
        "h": pl.Int64,
        "step": pl.Int64,
        "forecast": pl.Float64,
        "sd": pl.Float64,
        **{f"{side}_{name}": pl.Float64 for name in level_names for side in ("lo", "hi")},
        "sigma_obs": pl.Float64,
        "sigma_level": pl.Float64,
        "n_obs": pl.Int64,
    }
    if fits.height == 0:
        return pl.DataFrame(schema=schema)
    last = panel.y.shape[1] - 1
    se_future = np.array([_future_se(panel.y[i], panel.se[i], last) for i in chosen])
    s_obs = fits["sigma_obs"].to_numpy()
    s_lvl = fits["sigma_level"].to_numpy()
    variance = (
        fits["level_sd"].to_numpy()[:, None] ** 2
        + horizons[None, :] * s_lvl[:, None] ** 2
        + (s_obs**2 + se_future**2)[:, None]
    )
    mean = np.repeat(fits["level"].to_numpy()[:, None], horizons.size, axis=1)
    sd = np.sqrt(variance)
    n_series = fits.height
    columns = {
        "series": fits["series"].gather(np.repeat(np.arange(n_series), horizons.size)),
        "h": np.tile(horizons, n_series),
        "step": np.tile(last + horizons, n_series),
        "forecast": mean.ravel(),
        "sd": sd.ravel(),
        **{k: v.ravel() for k, v in _intervals(mean, sd, settings.levels).items()},
        "sigma_obs": np.repeat(s_obs, horizons.size),
        "sigma_level": np.repeat(s_lvl, horizons.size),
        "n_obs": np.repeat(fits["n_obs"].to_numpy(), horizons.size),
    }
    return pl.DataFrame(columns, schema=schema)


def backtest(
    frame: pl.DataFrame, settings: ForecastSettings = ForecastSettings()
) -> dict[str, float]:
    """Coverage of the forecast intervals over rolling origins (see the module docstring).

    Input as for `fit_local_level`. Returns `coverage_80`, `coverage_95` (named by
    `settings.levels`) over all checked forecasts, the same per horizon (`coverage_80_h1`, ...;
    absent for a horizon with nothing to check), and `forecasts`, the number of forecasts checked
    (a forecast is checked where its realized value is observed). Returns `{"forecasts": 0.0}`
    when nothing can be checked.
    """
    panel = _panel(frame)
    n_series, length = panel.y.shape
    observed = ~np.isnan(panel.y)
    counts = np.cumsum(observed, axis=1)
    # A series' origins run from its first step with enough history to the last step that
    # still has a future step; its refits are at the first origin and every `refit_every` after.
    fit_series, fit_cutoff, blocks = [], [], []
    for i in range(n_series):
        reached = np.flatnonzero(counts[i] >= settings.backtest_min_history)
        if reached.size == 0 or reached[0] > length - 2:
            continue
        for start in range(int(reached[0]), length - 1, settings.refit_every):
            fit_series.append(i)
            fit_cutoff.append(start)
            blocks.append(range(start, min(start + settings.refit_every, length - 1)))
    if not fit_series:
        return {"forecasts": 0.0}
    rows = np.asarray(fit_series)
    problems = _problems(panel.y[rows], panel.se[rows], np.asarray(fit_cutoff))
    theta, a_f, p_f, _ = _fit(problems)
    s2o = np.exp(2.0 * theta[:, 0])
    s2l = np.exp(2.0 * theta[:, 1])
    names = [_level_name(level) for level in settings.levels]
    z = np.array([NormalDist().inv_cdf(0.5 + level / 2.0) for level in settings.levels])
    hits = np.zeros((settings.horizon, len(names)))
    checked = np.zeros(settings.horizon)
    for j, (i, block) in enumerate(zip(rows, blocks, strict=True)):
        for origin in block:
            ahead = np.arange(origin + 1, min(origin + settings.horizon, length - 1) + 1)
            realized = panel.y[i, ahead]
            present = ~np.isnan(realized)
            if not present.any():
                continue
            h = ahead - origin
            se_future = _future_se(panel.y[i], panel.se[i], origin) / problems.scale[j]
            sd = np.sqrt(p_f[j, origin] + h * s2l[j] + s2o[j] + se_future**2)
            error = np.abs((realized - problems.center[j]) / problems.scale[j] - a_f[j, origin])
            inside = error[:, None] <= z[None, :] * sd[:, None]
            hits[h[present] - 1] += inside[present]
            checked[h[present] - 1] += 1
    total = checked.sum()
    if total == 0:
        return {"forecasts": 0.0}
    report = {f"coverage_{name}": float(hits[:, k].sum() / total) for k, name in enumerate(names)}
    for h in range(settings.horizon):
        if checked[h]:
            for k, name in enumerate(names):
                report[f"coverage_{name}_h{h + 1}"] = float(hits[h, k] / checked[h])
    report["forecasts"] = float(total)
    return report

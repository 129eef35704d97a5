"""Degradation detectors on daily metric series: static thresholds, an EWMA chart and a
one-sided CUSUM on standardized residuals against each subject's own trailing baseline.

A series is a long frame with one row per subject and trade date: the subject's key columns
(by default `dimension`, `subject`, `metric`), `trade_date`, `value`, its standard error `se`
and its `weight` (fills, shares, orders). Every function handles many subjects at once: the
baseline is a window expression over the keys, and the charts' recursions loop over the dates
only, each step vectorized across subjects (a subjects x dates matrix, NaN where a subject has
no scored row). Statistics are signed so that positive is worse, whatever the metric's
direction. docs/MONITORING.md explains the detectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import polars as pl

from eqs_pipeline.monitor.settings import MonitorSettings

SERIES_KEYS: tuple[str, ...] = ("dimension", "subject", "metric")
Detector = Literal["static_absolute", "static_relative", "ewma", "cusum"]
DETECTORS: tuple[Detector, ...] = get_args(Detector)
# Siegmund's correction of the decision interval for the overshoot of the boundary.
SIEGMUND_OVERSHOOT = 1.166
# The columns of `detect`'s output after the keys and trade_date.
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "detector",
    "statistic",
    "threshold",
    "in_alarm",
    "baseline",
    "recent_level",
    "value",
    "se",
    "weight",
    "z",
)


def siegmund_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Siegmund's approximation of the average run length of the one-sided CUSUM
    S_t = max(0, S_{t-1} + z_t - k), alarm at S_t > h, when z_t ~ N(shift, 1):
    ARL = (exp(-2 d b) + 2 d b - 1) / (2 d^2) with d = shift - k and b = h + 1.166
    (b^2 when d = 0). In control (shift 0) it reads (exp(2 k b) - 2 k b - 1) / (2 k^2)."""
    b = h + SIEGMUND_OVERSHOOT
    d = shift - k
    if abs(d) < 1e-12:
        return b * b
    return (math.exp(-2.0 * d * b) + 2.0 * d * b - 1.0) / (2.0 * d * d)


def cusum_parameters(arl0: float, shift_sd: float) -> tuple[float, float]:
    """(k, h) of the one-sided CUSUM that detects a shift of `shift_sd` standard deviations
    fastest (k = shift_sd / 2, the optimal reference value) and raises, in control, one false
    alarm per `arl0` dates on average. h comes from the target ARL, not a guess."""
    if not (arl0 > 1 and shift_sd > 0):
        raise ValueError(f"need arl0 > 1 and shift_sd > 0, not {arl0}, {shift_sd}")
    # Siegmund's in-control ARL with x = 2 k b reads (e^x - x - 1) / (2 k^2) = arl0, so
    # e^x - x - 1 = c with c = 2 k^2 arl0. With y = x + 1 + c: y e^-y = e^-(1 + c), whose root
    # above 1 is y = -W_-1(-e^-(1 + c)) (Lambert's W, lower branch): h in closed form, from
    # scipy.special (imported here: the charts' steps load it anyway, and scipy.optimize
    # would cost 0.4 s more). Where e^-(1 + c) underflows (c > 700: intraday ARLs of 10^5
    # and more), x = ln(1 + c + x) is iterated from x = ln(1 + c), a contraction by 1 / e^x
    # (on x itself: y - (1 + c) would cancel most of its digits).
    from scipy.special import lambertw

    k = shift_sd / 2.0
    a = 1.0 + 2.0 * k * k * arl0
    if a < 700.0:
        x = -float(lambertw(-math.exp(-a), -1).real) - a
    else:
        x = math.log(a)
        for _ in range(50):
            x = math.log(a + x)
    h = x / (2.0 * k) - SIEGMUND_OVERSHOOT
    # A target so short that h = 0 already reaches it: alarm at any positive S.
    return k, max(h, 0.0)


def cusum_path(z: np.ndarray, k: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided CUSUM of the standardized residuals `z` (subjects x dates; NaN: no scored
    row, the statistic carries over): S_t = max(0, S_{t-1} + z_t - k), alarm when S_t > h,
    and S restarts at 0 after an alarm so a persisting shift alarms again rather than once.
    Returns (S, alarm), NaN / False where z is NaN; S is the value before the reset."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    stat = np.full(z.shape, np.nan)
    alarm = np.zeros(z.shape, dtype=bool)
    s = np.zeros(z.shape[0])
    for t in range(z.shape[1]):
        zt = z[:, t]
        seen = ~np.isnan(zt)
        s = np.where(seen, np.maximum(0.0, s + np.where(seen, zt, 0.0) - k), s)
        fired = seen & (s > h)
        stat[seen, t] = s[seen]
        alarm[:, t] = fired
        s = np.where(fired, 0.0, s)
    return stat, alarm


def ewma_path(
    z: np.ndarray, lam: float, limit_l: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-sided EWMA chart of the standardized residuals `z` (subjects x dates, NaN: no
    scored row): E_t = lam z_t + (1 - lam) E_{t-1}, E_0 = 0, in alarm while
    E_t > L sigma_t with sigma_t = sqrt(lam / (2 - lam) (1 - (1 - lam)^(2 n))), n the
    subject's scored dates so far (the exact variance, so the first dates are not too
    sensitive). The chart does not reset: it stays in alarm while the shift lasts, and the
    alert layer keeps one open alert. Returns (E, limit, alarm)."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    stat = np.full(z.shape, np.nan)
    limit = np.full(z.shape, np.nan)
    e = np.zeros(z.shape[0])
    n = np.zeros(z.shape[0])
    for t in range(z.shape[1]):
        zt = z[:, t]
        seen = ~np.isnan(zt)
        e = np.where(seen, lam * np.where(seen, zt, 0.0) + (1.0 - lam) * e, e)
        n = n + seen
        stat[seen, t] = e[seen]
        sigma = np.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** (2.0 * n)))
        limit[seen, t] = limit_l * sigma[seen]
    with np.errstate(invalid="ignore"):
        alarm = stat > limit
    return stat, limit, alarm


def _sign(metric: pl.Expr, settings: MonitorSettings) -> pl.Expr:
    """+1 where higher is worse, -1 where lower is worse (by `settings.direction`)."""
    lower = [m for m, d in settings.directions.items() if d == "lower_is_worse"]
    return pl.when(metric.is_in(lower)).then(-1.0).otherwise(1.0)


def residuals(
    series: pl.DataFrame,
    settings: MonitorSettings | None = None,
    keys: Sequence[str] = SERIES_KEYS,
) -> pl.DataFrame:
    """The series with each date's trailing baseline and standardized residual.

    baseline: mean of the subject's `baseline_days` values before the current date and the
        `baseline_gap_days` before it, null before `min_baseline_days` of such history.
    baseline_var: the uncertainty of that baseline, s^2 / n (s^2: the baseline values' sample
        variance), plus, with `between_day_variance`, the day-to-day variance beyond the
        standard errors, max(0, s^2 - mean se^2 of the baseline dates).
    z: sign x (value - baseline) / sqrt(se^2 + baseline_var), positive = worse, as the normal
        score of the same tail probability under Student's t with n - 1 degrees of freedom (n
        baseline dates: the scale is estimated from them, so the ratio is t, not normal, and
        its tails are heavier); null where there is no baseline, the weight is below
        `min_weight`, the effective number of units (`n_eff`, where the series has it) is
        below `min_n_eff`, or the scale is not positive.
    sign: +1 for a higher_is_worse metric, -1 otherwise (needs a `metric` column; without one
        every series is higher_is_worse).
    """
    settings = settings or MonitorSettings()
    keys = list(keys)
    missing = [c for c in [*keys, "trade_date", "value", "se", "weight"] if c not in series]
    if missing:
        raise ValueError(f"the series lacks columns {missing}")
    over = keys or pl.lit(0)
    win, least = settings.baseline_days, settings.min_baseline_days
    lag = 1 + settings.baseline_gap_days
    prior = pl.col("value").shift(lag).over(over)
    prior_se2 = (pl.col("se") ** 2).shift(lag).over(over)
    sign = _sign(pl.col("metric"), settings) if "metric" in series else pl.lit(1.0)
    frame = (
        series.filter(pl.col("value").is_finite() & pl.col("se").is_finite())
        .sort([*keys, "trade_date"])
        .with_columns(
            baseline=prior.rolling_mean(win, min_samples=least).over(over),
            _s2=prior.rolling_var(win, min_samples=least).over(over),
            _n=prior.is_not_null().cast(pl.Float64).rolling_sum(win, min_samples=1).over(over),
            _se2=prior_se2.rolling_mean(win, min_samples=least).over(over),
            sign=sign,
        )
    )
    excess = (pl.col("_s2") - pl.col("_se2")).clip(lower_bound=0.0)
    var_b = pl.col("_s2") / pl.col("_n")
    if settings.between_day_variance:
        var_b = var_b + excess
    scale = (pl.col("se") ** 2 + pl.col("baseline_var")).sqrt()
    scored = (pl.col("weight") >= settings.min_weight) & (scale > 0)
    if "n_eff" in series.columns:
        scored = scored & (pl.col("n_eff") >= settings.min_n_eff)
    frame = frame.with_columns(baseline_var=var_b).with_columns(
        _t=pl.when(scored).then(pl.col("sign") * (pl.col("value") - pl.col("baseline")) / scale)
    )
    return frame.with_columns(
        z=pl.Series(_normal_score(frame["_t"].to_numpy(), frame["_n"].to_numpy() - 1.0)).fill_nan(
            None
        )
    ).drop("_s2", "_n", "_se2", "_t")


def _normal_score(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """The standard normal quantile of the same tail probability as `t` under Student's t
    with `df` degrees of freedom (NaN stays NaN); computed from the nearer tail, so that a
    large t keeps its precision."""
    # scipy.special, not scipy.stats: the same functions without 1.2 s more of imports in
    # every step that scores a series. stdtr is Student's t CDF, ndtri the normal quantile.
    from scipy.special import ndtri, stdtr

    t = np.asarray(t, dtype=float)
    out = np.full(t.shape, np.nan)
    ok = ~np.isnan(t) & (df >= 1)
    upper = ok & (t > 0)
    lower = ok & (t <= 0)
    out[upper] = -ndtri(stdtr(df[upper], -t[upper]))
    out[lower] = ndtri(stdtr(df[lower], t[lower]))
    return out


def _matrix(frame: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """(frame with row/column indices, subjects x dates matrix of z, of value): the dense
    layout the recursions step through, one column per trade date of any subject."""
    ids = (
        frame.with_columns(
            _row=(pl.struct(keys).rank("dense") - 1) if keys else pl.lit(0, pl.UInt32),
            _col=pl.col("trade_date").rank("dense") - 1,
        )
        if frame.height
        else frame.with_columns(_row=pl.lit(0, pl.UInt32), _col=pl.lit(0, pl.UInt32))
    )
    rows = ids["_row"].to_numpy().astype(np.int64)
    cols = ids["_col"].to_numpy().astype(np.int64)
    shape = (int(rows.max()) + 1 if rows.size else 0, int(cols.max()) + 1 if cols.size else 0)
    z = np.full(shape, np.nan)
    value = np.full(shape, np.nan)
    z[rows, cols] = ids["z"].fill_null(np.nan).to_numpy()
    value[rows, cols] = ids["value"].to_numpy()
    return ids, z, value


def _run_level(value: np.ndarray, stat: np.ndarray, alarm: np.ndarray) -> np.ndarray:
    """The mean value over each CUSUM run: the dates since the statistic last stood at 0 (or
    was reset by an alarm), the current one included. It is the "recent level" an alert
    quotes against the baseline."""
    level = np.full(value.shape, np.nan)
    total = np.zeros(value.shape[0])
    count = np.zeros(value.shape[0])
    for t in range(value.shape[1]):
        seen = ~np.isnan(stat[:, t])
        total = np.where(seen, total + np.where(seen, value[:, t], 0.0), total)
        count = count + seen
        level[seen, t] = total[seen] / count[seen]
        restart = seen & ((stat[:, t] <= 0.0) | alarm[:, t])
        total = np.where(restart, 0.0, total)
        count = np.where(restart, 0.0, count)
    return level


def _ewma_level(value: np.ndarray, scored: np.ndarray, lam: float) -> np.ndarray:
    """EWMA of the raw values on the scored dates, started at the first scored value: the
    EWMA chart's "recent level" in the metric's own unit."""
    level = np.full(value.shape, np.nan)
    current = np.full(value.shape[0], np.nan)
    for t in range(value.shape[1]):
        seen = scored[:, t]
        v = value[:, t]
        blend = np.where(np.isnan(current), v, lam * v + (1.0 - lam) * current)
        current = np.where(seen, blend, current)
        level[seen, t] = current[seen]
    return level


def detect(
    series: pl.DataFrame,
    settings: MonitorSettings | None = None,
    keys: Sequence[str] = SERIES_KEYS,
) -> pl.DataFrame:
    """Every detector on every subject and date: one row per (keys, trade_date, detector) with
    the statistic, its threshold, whether it is in alarm, and the evidence an alert quotes
    (baseline, recent level, value, se, weight, z). Static rows appear only for metrics that
    have a static threshold; chart rows only on scored dates (z not null). Statistics and
    thresholds are in "worse" units: the CUSUM and EWMA in standard deviations of the
    residual, static_absolute as sign x value against sign x level, static_relative as the
    signed change over |baseline| against the fraction."""
    settings = settings or MonitorSettings()
    keys = list(keys)
    frame = residuals(series, settings, keys)
    ids, z, value = _matrix(frame, keys)
    k, h = cusum_parameters(settings.cusum_arl0, settings.cusum_shift_sd)
    # The charts read z capped at +-z_cap (a Huber-type robust CUSUM and EWMA): one outlying
    # date, a mix accident on a thin day, cannot push the CUSUM over h alone; two can.
    capped = np.clip(z, -settings.z_cap, settings.z_cap)
    c_stat, c_alarm = cusum_path(capped, k, h)
    e_stat, e_limit, e_alarm = ewma_path(capped, settings.ewma_lambda, settings.ewma_limit_l)
    c_level = _run_level(value, c_stat, c_alarm)
    e_level = _ewma_level(value, ~np.isnan(z), settings.ewma_lambda)
    rows = ids["_row"].to_numpy().astype(np.int64)
    cols = ids["_col"].to_numpy().astype(np.int64)
    base = ids.select(*keys, "trade_date", "baseline", "value", "se", "weight", "z", "sign")
    charts = [
        base.with_columns(
            detector=pl.lit(name),
            statistic=pl.Series(stat[rows, cols]).fill_nan(None),
            threshold=pl.Series(limit[rows, cols]).fill_nan(None),
            in_alarm=pl.Series(alarm[rows, cols]),
            recent_level=pl.Series(level[rows, cols]).fill_nan(None),
        ).filter(pl.col("z").is_not_null())
        for name, stat, limit, alarm, level in (
            ("cusum", c_stat, np.full(z.shape, h), c_alarm, c_level),
            ("ewma", e_stat, e_limit, e_alarm, e_level),
        )
    ]
    metric = pl.col("metric") if "metric" in base else pl.lit("")
    absolute = base.filter(
        metric.is_in(list(settings.static_absolute)) & (pl.col("weight") >= settings.min_weight)
    ).with_columns(
        detector=pl.lit("static_absolute"),
        statistic=pl.col("sign") * pl.col("value"),
        threshold=pl.col("sign") * metric.replace_strict(settings.static_absolute, default=None),
        recent_level=pl.col("value"),
    )
    relative = base.filter(
        metric.is_in(list(settings.static_relative))
        & (pl.col("weight") >= settings.min_weight)
        & (pl.col("baseline").abs() > 0)
    ).with_columns(
        detector=pl.lit("static_relative"),
        statistic=pl.col("sign")
        * (pl.col("value") - pl.col("baseline"))
        / pl.col("baseline").abs(),
        threshold=metric.replace_strict(settings.static_relative, default=None),
        recent_level=pl.col("value"),
    )
    statics = [
        f.with_columns(in_alarm=pl.col("statistic") > pl.col("threshold"))
        for f in (absolute, relative)
    ]
    columns = [*keys, "trade_date", *EVIDENCE_COLUMNS]
    parts = [f.select(columns) for f in [*statics, *charts]]
    return (
        pl.concat(parts, how="vertical_relaxed")
        .with_columns(pl.col("detector").cast(pl.Enum(DETECTORS)))
        .sort([*keys, "trade_date", "detector"])
    )

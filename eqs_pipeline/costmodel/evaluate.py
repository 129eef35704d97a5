"""Out-of-sample figures of a distributional cost prediction.

A prediction gives each order a Gaussian for its implementation shortfall y (bps): a mean m
and a standard deviation s > 0 (`baselines.FittedBaseline.predict`, or a trained model). This
module scores such predictions against realized costs; it fits nothing. With Phi the standard
normal CDF and z_L = Phi^-1((1 + L) / 2):

- percentile: ``Phi((m - y) / s)``, the predicted probability that an order like this one
  costs more than y did (1 = cheap, 0 = expensive); uniform on (0, 1) for a true model.
- interval at level L: ``(m - z_L * s, m + z_L * s)``, the central interval.
- rmse ``sqrt(mean((y - m)**2))``, mae ``mean(|y - m|)``.
- nll, the mean Gaussian negative log-likelihood:
  ``mean(0.5 * log(2 pi) + log s + 0.5 * ((y - m) / s)**2)``.
- r2 ``1 - SSE / SST`` with ``SSE = sum((y - m)**2)``, ``SST = sum((y - mean(y))**2)``.
- coverage_L, the share of y inside the central L interval (0.5 and 0.9 for a true model).
- `r2_against`: the R^2 of a prediction against a known true expected cost (synthetic data).
- `calibration_table`: the orders in quantile bins of m, predicted against realized by bin.

Every function also takes `nu`: the prediction is then a Student-t with nu > 2 degrees of
freedom, mean m and standard deviation s (its scale is ``s * sqrt((nu - 2) / nu)``); Phi and
z_L above become the t's CDF and quantiles in units of its standard deviation, and the nll is
the t's.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import gammaln, ndtr, ndtri, stdtr, stdtrit

_HALF_LOG_2PI = 0.5 * float(np.log(2.0 * np.pi))


def _arrays(**named: np.ndarray | float) -> list[np.ndarray]:
    """The named inputs as 1-D float64 arrays of one length, each finite; sd (if given) > 0.

    A ValueError names the input that is off.
    """
    arrays = {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in named.items()}
    first, n = next(iter(arrays)), len(next(iter(arrays.values())))
    for name, a in arrays.items():
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
        if len(a) != n:
            raise ValueError(f"{name} has {len(a)} rows, {first} has {n}")
        bad = int((~np.isfinite(a)).sum())
        if bad:
            raise ValueError(f"{name} is not finite in {bad} rows")
    if "sd" in arrays:
        bad = int((arrays["sd"] <= 0).sum())
        if bad:
            raise ValueError(f"sd must be > 0; {bad} rows are not")
    return list(arrays.values())


def _check_nu(nu: float | None) -> None:
    if nu is not None and not (np.isfinite(nu) and nu > 2.0):
        raise ValueError(f"nu must be a finite number above 2 (a finite sd), got {nu}")


def _t_unit(nu: float) -> float:
    """The t's scale for a unit standard deviation."""
    return float(np.sqrt((nu - 2.0) / nu))


def _z(level: float, nu: float | None = None) -> float:
    """The central interval's half width in standard deviations."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    _check_nu(nu)
    if nu is None:
        return float(ndtri(0.5 + 0.5 * level))
    return float(stdtrit(nu, 0.5 + 0.5 * level)) * _t_unit(nu)


def _cdf(z: np.ndarray, nu: float | None) -> np.ndarray:
    """P(Z <= z) for Z standardized to unit sd."""
    _check_nu(nu)
    return ndtr(z) if nu is None else stdtr(nu, z / _t_unit(nu))


def percentile(
    y: np.ndarray, mean: np.ndarray, sd: np.ndarray, nu: float | None = None
) -> np.ndarray:
    """Per order, the predicted probability of a cost above the realized y: Phi((mean - y) / sd)."""
    y, mean, sd = _arrays(y=y, mean=mean, sd=sd)
    return _cdf((mean - y) / sd, nu)


def interval(
    mean: np.ndarray, sd: np.ndarray, level: float, nu: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the central `level` interval, per order."""
    mean, sd = _arrays(mean=mean, sd=sd)
    half = _z(level, nu) * sd
    return mean - half, mean + half


def _coverage(
    y: np.ndarray, mean: np.ndarray, sd: np.ndarray, level: float, nu: float | None
) -> float:
    return float(np.mean(np.abs(y - mean) <= _z(level, nu) * sd))


def _nll(err: np.ndarray, sd: np.ndarray, nu: float | None) -> float:
    if nu is None:
        return float(np.mean(_HALF_LOG_2PI + np.log(sd) + 0.5 * (err / sd) ** 2))
    scale = sd * _t_unit(nu)
    const = gammaln(nu / 2.0) - gammaln((nu + 1.0) / 2.0) + 0.5 * np.log(nu * np.pi)
    return float(
        const + np.mean(np.log(scale) + 0.5 * (nu + 1.0) * np.log1p((err / scale) ** 2 / nu))
    )


def scores(
    y: np.ndarray, mean: np.ndarray, sd: np.ndarray, nu: float | None = None
) -> dict[str, float]:
    """rmse, mae, nll, r2, coverage_50, coverage_90 and n of the prediction (mean, sd) of y.

    r2 is NaN when y is constant (SST = 0).
    """
    _check_nu(nu)
    y, mean, sd = _arrays(y=y, mean=mean, sd=sd)
    if len(y) == 0:
        raise ValueError("y has no rows")
    err = y - mean
    sse = float(err @ err)
    centred = y - y.mean()
    sst = float(centred @ centred)
    return {
        "rmse": float(np.sqrt(sse / len(y))),
        "mae": float(np.mean(np.abs(err))),
        "nll": _nll(err, sd, nu),
        "r2": 1.0 - sse / sst if sst > 0 else float("nan"),
        "coverage_50": _coverage(y, mean, sd, 0.5, nu),
        "coverage_90": _coverage(y, mean, sd, 0.9, nu),
        "n": float(len(y)),
    }


def r2_against(truth: np.ndarray, pred: np.ndarray) -> float:
    """R^2 of `pred` against the true expected values `truth`: 1 - SSE / SST, SST about
    mean(truth). NaN when truth is constant."""
    truth, pred = _arrays(truth=truth, pred=pred)
    if len(truth) == 0:
        raise ValueError("truth has no rows")
    err = truth - pred
    centred = truth - truth.mean()
    sst = float(centred @ centred)
    return 1.0 - float(err @ err) / sst if sst > 0 else float("nan")


def calibration_table(
    y: np.ndarray, mean: np.ndarray, sd: np.ndarray, bins: int = 10, nu: float | None = None
) -> pl.DataFrame:
    """Predicted against realized cost in `bins` quantile bins of the predicted mean.

    Orders are ranked by predicted mean (ties in input order) and cut into `bins` bins of
    equal count (sizes differ by at most one), so that tied predictions never empty a bin.
    One row per bin: `bin` (1 = cheapest predicted), `orders`, `predicted_bps` (mean of
    mean), `realized_bps` (mean of y), `predicted_sd_bps` (sqrt of the mean of sd**2, the
    predicted RMS of y - mean), `realized_sd_bps` (the sample sd, ddof 1, of y - mean; null
    in a one-order bin) and `coverage_90` (share of y in the central 90% interval).
    """
    y, mean, sd = _arrays(y=y, mean=mean, sd=sd)
    n = len(y)
    if not 1 <= bins <= n:
        raise ValueError(f"bins must be between 1 and the number of orders ({n}), got {bins}")
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(mean, kind="stable")] = np.arange(n)
    z90 = _z(0.9, nu)
    return (
        pl.DataFrame(
            {
                "bin": (rank * bins // n + 1).astype(np.int32),
                "mean": mean,
                "y": y,
                "sd": sd,
            }
        )
        .group_by("bin")
        .agg(
            orders=pl.len().cast(pl.Int64),
            predicted_bps=pl.col("mean").mean(),
            realized_bps=pl.col("y").mean(),
            predicted_sd_bps=(pl.col("sd") ** 2).mean().sqrt(),
            realized_sd_bps=(pl.col("y") - pl.col("mean")).std(ddof=1),
            coverage_90=((pl.col("y") - pl.col("mean")).abs() <= z90 * pl.col("sd"))
            .cast(pl.Float64)
            .mean(),
        )
        .sort("bin")
    )

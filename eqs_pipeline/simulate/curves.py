"""Intraday shapes (volume, volatility, spread) and the exponential-kernel sums that put
impact and adverse selection onto the mid path.

Times inside a day are seconds since the open (0 .. SESSION_S); `tau` is the fraction of
the session elapsed (0 .. 1).
"""

from __future__ import annotations

import numpy as np

SESSION_S = 6.5 * 3600.0
_GRID = np.linspace(0.0, 1.0, 391)


def volume_intensity(tau: np.ndarray) -> np.ndarray:
    """U-shaped relative volume: heavy at the open, heavier into the close."""
    return 1.0 + 2.2 * np.exp(-tau / 0.05) + 2.8 * np.exp(-(1.0 - tau) / 0.045)


def variance_intensity(tau: np.ndarray) -> np.ndarray:
    """U-shaped relative variance rate: the open is the most volatile part of the day."""
    return 1.0 + 4.0 * np.exp(-tau / 0.06) + 1.0 * np.exp(-(1.0 - tau) / 0.05)


def spread_multiplier(tau: np.ndarray) -> np.ndarray:
    """Spreads are widest right after the open and tighten within half an hour."""
    return 1.0 + 1.6 * np.exp(-tau / 0.03)


def _cumulative(intensity) -> np.ndarray:
    dens = intensity(_GRID)
    cum = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2.0)])
    return cum / cum[-1]


_VOL_CUM = _cumulative(volume_intensity)
_VAR_CUM = _cumulative(variance_intensity)


def volume_cdf(tau: np.ndarray) -> np.ndarray:
    """Fraction of the day's volume traded by session fraction tau."""
    return np.interp(tau, _GRID, _VOL_CUM)


def volume_cdf_inv(u: np.ndarray) -> np.ndarray:
    """Session fraction by which a fraction u of the day's volume has traded."""
    return np.interp(u, _VOL_CUM, _GRID)


def variance_cdf(tau: np.ndarray) -> np.ndarray:
    """Fraction of the day's variance accumulated by session fraction tau."""
    return np.interp(tau, _GRID, _VAR_CUM)


def kernel_sum(
    event_t: np.ndarray, coef: np.ndarray, tau_s: float | None, eval_t: np.ndarray
) -> np.ndarray:
    """sum_i coef_i * k(t - t_i) * 1{t >= t_i} at every eval time t (one symbol's events).

    k is 1 (a step) when tau_s is None, else exp(-(t - t_i) / tau_s). Events at exactly t count.
    O((n + m) log n) through a sorted cumulative sum; exp(t / tau) stays finite because times
    are at most one session (23,400 s) and tau_s >= 40 s.
    """
    if event_t.size == 0:
        return np.zeros(eval_t.shape)
    order = np.argsort(event_t, kind="stable")
    t_sorted = event_t[order]
    c_sorted = coef[order]
    if tau_s is not None:
        c_sorted = c_sorted * np.exp(t_sorted / tau_s)
    cum = np.concatenate([[0.0], np.cumsum(c_sorted)])
    idx = np.searchsorted(t_sorted, eval_t, side="right")
    out = cum[idx]
    if tau_s is not None:
        out = out * np.exp(-eval_t / tau_s)
    return out


def segment_starts(group: np.ndarray) -> np.ndarray:
    """For a sorted group-id array, the index of each row's group start."""
    n = group.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    is_start = np.ones(n, dtype=bool)
    is_start[1:] = group[1:] != group[:-1]
    starts = np.flatnonzero(is_start)
    return starts[np.cumsum(is_start) - 1]


def segment_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (rows sorted by group)."""
    cum = np.cumsum(values)
    starts = segment_starts(group)
    base = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    return cum - base


def make_unique_increasing(t_us: np.ndarray) -> np.ndarray:
    """Nudge a sorted int64 microsecond array so that it is strictly increasing."""
    if t_us.size == 0:
        return t_us
    k = np.arange(t_us.size, dtype=np.int64)
    return np.maximum.accumulate(t_us - k) + k

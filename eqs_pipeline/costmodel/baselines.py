"""Fitted textbook baselines that an expected-cost model is compared with.

Each baseline predicts an order's implementation shortfall (IS, bps of the arrival mid,
positive = cost) from what is known at the order's arrival (`CostInputs`): half the quoted
spread h, the daily volatility sigma (bps), the size over the average daily volume s and the
planned participation rate p. Every form adds h with coefficient 1, so that the forms differ
only in their impact term and a comparison between them is fair:

- ``sqrt``, the square-root law: ``h + Y * sigma * sqrt(s)``; fitted: Y.
- ``almgren`` (Almgren, Thum, Hauptmann & Li 2005), the temporary impact with beta fixed at 3/5
  plus half the permanent impact: ``h + eta * sigma * p**(3/5) + 0.5 * gamma * sigma * s``;
  fitted: eta, gamma.
- ``istar`` (Kissell's I-Star): the instantaneous impact ``I = a1 * s**a2 * (sigma/100)**a3``
  (sigma in percent, so a1 is in bps and the exponents have sane scales), of which the share
  b1 depends on the participation: ``MI = b1 * I * p**a4 + (1 - b1) * I``; the prediction is
  ``h + MI``; fitted: a1, a2, a3, a4, b1 within a1 >= 0, 0.05 <= a2 <= 1.5, 0 <= a3 <= 2,
  0 <= a4 <= 2, 0 <= b1 <= 1.

The mean coefficients minimize the plain sum of squared errors (`scipy.optimize.least_squares`
with bounds that keep every coefficient non-negative, from fixed starting values, so a fit is
deterministic). I-Star's surface is not convex in its exponents: it is fitted from two
starting points, compared on a subsample of the orders, and the better one is refined on all.
Every baseline then gets the same dispersion model, so that each has a likelihood and
intervals:

    sd = exp(d0 + d1 * log(sigma) + d2 * log1p(h) + d3 * log(s)),

fitted by maximizing the Gaussian log-likelihood of the residuals r = y - mean with the mean
held fixed, i.e. minimizing ``sum(log sd + r**2 / (2 sd**2))`` (`scipy.optimize.minimize`,
L-BFGS-B, analytic gradient), started from ``d0 = log(RMS(r))`` and d1 = d2 = d3 = 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy.optimize import least_squares, minimize

BASELINES = ("sqrt", "almgren", "istar")
MIN_ROWS = 50
START_ROWS = 2_000  # orders on which several starting points are compared (`_fit_mean`)
DISPERSION = ("d0", "d1", "d2", "d3")

ALMGREN_BETA = 0.6


@dataclass(frozen=True, eq=False)
class CostInputs:
    """What is known of a set of orders at their arrival, one row per order.

    The fields are converted to 1-D float64 arrays; a ValueError names the first field that is
    not of the common length, not finite or out of its domain, with the number of bad rows.
    """

    half_spread_bps: np.ndarray  # half the quoted spread at arrival, bps (>= 0)
    sigma_bps: np.ndarray  # daily volatility in bps, 0.02 -> 200 (> 0)
    size_adv: np.ndarray  # order size / average daily volume, a fraction (> 0)
    pov: np.ndarray  # planned participation rate, in (0, 1]

    def __post_init__(self) -> None:
        names = ("half_spread_bps", "sigma_bps", "size_adv", "pov")
        arrays = {}
        for name in names:
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.ndim != 1:
                raise ValueError(f"CostInputs.{name} must be 1-D, got shape {a.shape}")
            arrays[name] = a
        n = len(arrays["half_spread_bps"])
        for name, a in arrays.items():
            if len(a) != n:
                raise ValueError(
                    f"CostInputs.{name} has {len(a)} rows, half_spread_bps has {n}: "
                    "all fields must have the same length"
                )
        domains: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
            "half_spread_bps": (">= 0", lambda a: a >= 0),
            "sigma_bps": ("> 0", lambda a: a > 0),
            "size_adv": ("> 0", lambda a: a > 0),
            "pov": ("in (0, 1]", lambda a: (a > 0) & (a <= 1)),
        }
        for name, a in arrays.items():
            finite = np.isfinite(a)
            if not finite.all():
                raise ValueError(f"CostInputs.{name} is not finite in {int((~finite).sum())} rows")
            what, ok = domains[name]
            bad = int((~ok(a)).sum())
            if bad:
                raise ValueError(f"CostInputs.{name} must be {what}; {bad} rows are not")
            object.__setattr__(self, name, a)

    def __len__(self) -> int:
        return len(self.half_spread_bps)

    @cached_property
    def _logs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """log(size_adv), log(sigma in percent), log(pov): computed once, a fit reads them often."""
        return np.log(self.size_adv), np.log(self.sigma_bps / 100.0), np.log(self.pov)


def _rows(x: CostInputs, index: slice | np.ndarray) -> CostInputs:
    return CostInputs(x.half_spread_bps[index], x.sigma_bps[index], x.size_adv[index], x.pov[index])


# --- the mean forms -------------------------------------------------------------------------
# Each form's impact (the prediction less the half spread) and its Jacobian with respect to
# the coefficients, in the order of `_Form.params`.


def _sqrt_impact(x: CostInputs, c: np.ndarray) -> np.ndarray:
    return c[0] * x.sigma_bps * np.sqrt(x.size_adv)


def _sqrt_jac(x: CostInputs, c: np.ndarray) -> np.ndarray:
    return (x.sigma_bps * np.sqrt(x.size_adv))[:, None]


def _almgren_impact(x: CostInputs, c: np.ndarray) -> np.ndarray:
    return c[0] * x.sigma_bps * x.pov**ALMGREN_BETA + 0.5 * c[1] * x.sigma_bps * x.size_adv


def _almgren_jac(x: CostInputs, c: np.ndarray) -> np.ndarray:
    return np.column_stack(
        [x.sigma_bps * x.pov**ALMGREN_BETA, 0.5 * x.sigma_bps * x.size_adv],
    )


def _istar_parts(x: CostInputs, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(I / a1, p**a4, the participation factor b1 * p**a4 + 1 - b1)."""
    _, a2, a3, a4, b1 = c
    log_size, log_sigma_pct, log_pov = x._logs
    unit = np.exp(a2 * log_size + a3 * log_sigma_pct)
    p_a4 = np.exp(a4 * log_pov)
    return unit, p_a4, b1 * p_a4 + (1.0 - b1)


def _istar_impact(x: CostInputs, c: np.ndarray) -> np.ndarray:
    unit, _, factor = _istar_parts(x, c)
    return c[0] * unit * factor


def _istar_jac(x: CostInputs, c: np.ndarray) -> np.ndarray:
    a1, _, _, _, b1 = c
    log_size, log_sigma_pct, log_pov = x._logs
    unit, p_a4, factor = _istar_parts(x, c)
    instantaneous = a1 * unit
    mi = instantaneous * factor
    return np.column_stack(
        [
            unit * factor,
            mi * log_size,
            mi * log_sigma_pct,
            instantaneous * b1 * p_a4 * log_pov,
            instantaneous * (p_a4 - 1.0),
        ]
    )


@dataclass(frozen=True)
class _Form:
    params: tuple[str, ...]
    impact: Callable[[CostInputs, np.ndarray], np.ndarray]
    jac: Callable[[CostInputs, np.ndarray], np.ndarray]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    # Starting points; a start may leave the scale coefficient (the first) as None, to be set
    # by least squares given the start's shape, since its size depends on the data's units.
    starts: tuple[tuple[float | None, ...], ...]


_FORMS: dict[str, _Form] = {
    "sqrt": _Form(
        params=("Y",),
        impact=_sqrt_impact,
        jac=_sqrt_jac,
        lower=(0.0,),
        upper=(np.inf,),
        starts=((0.5,),),
    ),
    "almgren": _Form(
        params=("eta", "gamma"),
        impact=_almgren_impact,
        jac=_almgren_jac,
        lower=(0.0, 0.0),
        upper=(np.inf, np.inf),
        # The coefficients Almgren et al. (2005) estimated.
        starts=((0.142, 0.314),),
    ),
    "istar": _Form(
        params=("a1", "a2", "a3", "a4", "b1"),
        impact=_istar_impact,
        jac=_istar_jac,
        lower=(0.0, 0.05, 0.0, 0.0, 0.0),
        upper=(np.inf, 1.5, 2.0, 2.0, 1.0),
        # Kissell's typical shape, then a steeper one in size and participation: the I-Star
        # surface is not convex in its exponents, so the better of the two fits is kept.
        starts=(
            (None, 0.5, 1.0, 0.5, 0.9),
            (None, 0.8, 0.5, 1.0, 0.5),
        ),
    ),
}


def _check_name(name: str) -> _Form:
    try:
        return _FORMS[name]
    except KeyError:
        raise ValueError(
            f"unknown baseline {name!r}; the known ones are {', '.join(BASELINES)}"
        ) from None


def _dispersion_features(x: CostInputs) -> np.ndarray:
    """The columns multiplying d1, d2, d3: log(sigma), log1p(h), log(s)."""
    return np.column_stack([np.log(x.sigma_bps), np.log1p(x.half_spread_bps), np.log(x.size_adv)])


@dataclass(frozen=True)
class FittedBaseline:
    """A fitted baseline: its mean coefficients (`params`) and its dispersion (d0..d3)."""

    name: str
    params: dict[str, float]
    dispersion: dict[str, float]

    def __post_init__(self) -> None:
        form = _check_name(self.name)
        if set(self.params) != set(form.params):
            raise ValueError(
                f"baseline {self.name!r} takes params {form.params}, got {tuple(self.params)}"
            )
        if set(self.dispersion) != set(DISPERSION):
            raise ValueError(f"dispersion takes {DISPERSION}, got {tuple(self.dispersion)}")
        # The documented order, whatever order the caller gave.
        object.__setattr__(self, "params", {p: self.params[p] for p in form.params})
        object.__setattr__(self, "dispersion", {k: self.dispersion[k] for k in DISPERSION})

    def predict(self, x: CostInputs) -> tuple[np.ndarray, np.ndarray]:
        """(expected IS in bps, its standard deviation in bps), one of each per order."""
        form = _FORMS[self.name]
        c = np.array([self.params[p] for p in form.params])
        mean = x.half_spread_bps + form.impact(x, c)
        d = np.array([self.dispersion[k] for k in DISPERSION])
        sd = np.exp(d[0] + _dispersion_features(x) @ d[1:])
        return mean, sd

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that `from_dict` turns back into this baseline."""
        return {
            "name": self.name,
            "params": {k: float(v) for k, v in self.params.items()},
            "dispersion": {k: float(v) for k, v in self.dispersion.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FittedBaseline:
        return cls(
            name=str(d["name"]),
            params={k: float(v) for k, v in d["params"].items()},
            dispersion={k: float(v) for k, v in d["dispersion"].items()},
        )


def _check_target(x: CostInputs, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y has shape {y.shape}, the inputs have {len(x)} rows")
    bad = int((~np.isfinite(y)).sum())
    if bad:
        raise ValueError(f"y is not finite in {bad} rows")
    if len(y) < MIN_ROWS:
        raise ValueError(f"a baseline needs at least {MIN_ROWS} orders to fit, got {len(y)}")
    return y


def _least_squares(form: _Form, x: CostInputs, target: np.ndarray, c0: np.ndarray) -> Any:
    """`least_squares` of the form's impact on `target` (y less the half spread) from c0."""
    return least_squares(
        lambda c: form.impact(x, c) - target,
        np.clip(c0, form.lower, form.upper),
        jac=lambda c: form.jac(x, c),
        bounds=(np.array(form.lower), np.array(form.upper)),
        method="trf",
        x_scale="jac",
        # scipy's default tolerances: where the data fit the square-root law, I-Star's
        # (a4, b1) lie on a flat ridge (b1 = 0 or a4 = 0 both give it) that tighter ones
        # crawl along for hundreds of steps to gain 1e-7 of the cost.
        ftol=1e-8,
        xtol=1e-8,
        gtol=1e-8,
        max_nfev=500,
    )


def _fit_mean(form: _Form, x: CostInputs, y: np.ndarray) -> np.ndarray:
    """The mean coefficients: the best fit from the form's starts.

    With several starts and many orders, the starts are compared on every k-th order (about
    `START_ROWS` of them) and the best is refined on all: the same optimum for a fraction of
    the work, since most of a start's steps are spent far from it.
    """
    target = y - x.half_spread_bps
    stride = max(1, len(y) // START_ROWS) if len(form.starts) > 1 else 1
    sub_x = x if stride == 1 else _rows(x, slice(None, None, stride))
    sub_target = target[::stride]
    best = None
    for start in form.starts:
        c0 = np.array([1.0 if v is None else v for v in start])
        if start[0] is None:
            # The impact is linear in the scale coefficient: its least-squares value given
            # the start's shape (kept off the bound so that the shape's gradient is not 0).
            g = form.impact(sub_x, c0)
            c0[0] = max(float(g @ sub_target / (g @ g)), 1e-6)
        sol = _least_squares(form, sub_x, sub_target, c0)
        if best is None or sol.cost < best.cost:
            best = sol
    assert best is not None
    if stride == 1:
        return best.x
    return _least_squares(form, x, target, best.x).x


def _fit_dispersion(x: CostInputs, resid: np.ndarray) -> np.ndarray:
    """d0..d3 maximizing the Gaussian likelihood of `resid` (see the module docstring)."""
    z = _dispersion_features(x)
    # Optimize over standardized features (and map back) so that the problem is well
    # conditioned; a constant feature becomes a zero column and keeps its coefficient at 0.
    centre = z.mean(axis=0)
    scale = z.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    u = (z - centre) / scale
    reach = np.maximum(np.abs(u).max(axis=0), 1.0)
    r2 = resid**2
    # A floor, so that a perfect fit (all residuals 0) still has a finite start.
    log_rms = np.log(max(float(np.sqrt(r2.mean())), 1e-12))

    # Elementwise sums rather than matrix products: these tall, thin products gain nothing
    # from a threaded BLAS, which only contends with the other processes on a busy machine.
    def nll_and_grad(c: np.ndarray) -> tuple[float, np.ndarray]:
        eta = c[0] + u[:, 0] * c[1] + u[:, 1] * c[2] + u[:, 2] * c[3]
        w = r2 * np.exp(-2.0 * eta)
        v = 1.0 - w
        grad = [v.mean(), *(np.mean(u[:, k] * v) for k in range(3))]
        return float(np.mean(eta + 0.5 * w)), np.array(grad)

    # The objective is convex in c; the box only keeps exp() finite on a wild line-search step:
    # log sd stays within 60 of log RMS(r) on every row. It is far from any fit: at a bound,
    # sd is 2e4 times larger at one end of a feature's range than at the feature's mean.
    bounds = [(log_rms - 30.0, log_rms + 30.0)] + [(-10.0 / m, 10.0 / m) for m in reach]
    sol = minimize(
        nll_and_grad,
        np.array([log_rms, 0.0, 0.0, 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-8},
    )
    c = sol.x
    d = c[1:] / scale
    return np.concatenate([[c[0] - d @ centre], d])


def fit_baseline(name: str, x: CostInputs, y: np.ndarray) -> FittedBaseline:
    """Fit baseline `name` (one of `BASELINES`) to the realized IS `y` (bps) of the orders `x`.

    Raises ValueError for an unknown name, a `y` that is not finite or not of `x`'s length,
    or fewer than `MIN_ROWS` orders.
    """
    form = _check_name(name)
    y = _check_target(x, y)
    c = _fit_mean(form, x, y)
    resid = y - (x.half_spread_bps + form.impact(x, c))
    d = _fit_dispersion(x, resid)
    return FittedBaseline(
        name=name,
        params={p: float(v) for p, v in zip(form.params, c, strict=True)},
        dispersion={k: float(v) for k, v in zip(DISPERSION, d, strict=True)},
    )


def fit_baselines(x: CostInputs, y: np.ndarray) -> dict[str, FittedBaseline]:
    """`fit_baseline` for each of `BASELINES`, by name."""
    y = _check_target(x, y)
    return {name: fit_baseline(name, x, y) for name in BASELINES}

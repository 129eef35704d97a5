"""Designed order costs: the cost model's test bed (docs/SIMULATOR.md, "Designed costs").

In the default mode an order's implementation shortfall emerges from the market the engine
simulates (spread, impact, venues, the random walk), so nobody knows its exact distribution.
With `SimulationConfig.costs = CostDesign(...)`, every order that fills at least
`min_fill_fraction` of its quantity (and needs an offset of at most `max_offset`) has a known cost distribution instead:

    IS = mu + sd * z,    z ~ N(0, 1)

where mu (the true expected cost) and sd (the true dispersion) are functions of what is known
when the order arrives (`expected_cost`). The engine prices the order's fills as usual; then
every kept fill of the order is moved by the same price offset, so that the shortfall the
pipeline computes from the landed files (Perold's, with fees and the opportunity cost of what
did not fill) is exactly the drawn IS. The fills then sit off the quotes by that offset, so
fill-level metrics in this mode say nothing about venues: it is a test bed for the cost model,
not for the venue analysis.

mu goes beyond the textbook square-root law in the ways real costs do:

    spread part = 0.5 * spread_bps * pay[algo] * urgency_pay[urgency] * regime(spread_bps)
    regime(s)   = 1 - wide_relief / (1 + exp(-(s - wide_spread_bps) / wide_width_bps))
    impact part = impact_y * sigma_bps * sqrt(size / ADV) * algo_impact[algo]
                  * urgency_impact[urgency] * tod(tau) * broker_multiplier
    tod(tau)    = 1 + open_impact * exp(-tau / open_tau) + close_impact * exp(-(1 - tau) / close_tau)
    mu          = (spread part + impact part + algo_fixed_bps[algo]) * (1 - limit_discount if LIMIT)
                  + short_cost (SELL_SHORT)

with tau the arrival's fraction of the session, sigma_bps the instrument's daily volatility, the
broker multiplier exp(broker skill) of the universe, algo_fixed_bps what an algo costs whatever
the order (nothing by default; the algo test bed's design, `algos.ALGO_COSTS`, uses it), and

    sd = sqrt((sigma_bps * sqrt(horizon[algo] * urgency_horizon[urgency] / 3))**2
              + (spread_noise * spread_bps)**2 + (impact_noise * impact part)**2)

(the price risk of trading over the algo's usual horizon, a fraction of the day, plus the noise of
the spread paid and of the impact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqs_pipeline.quality import formulas as f


@dataclass(frozen=True)
class CostDesign:
    """The coefficients of the designed cost (see the module docstring); tuples by algo are
    in the order of `config.ALGOS` (VWAP, TWAP, POV, IS, DARK), by urgency LOW, MEDIUM, HIGH."""

    pay: tuple[float, ...] = (0.55, 0.6, 0.7, 0.85, 0.25)
    urgency_pay: tuple[float, float, float] = (0.7, 1.0, 1.3)
    wide_spread_bps: float = 15.0
    wide_width_bps: float = 3.0
    wide_relief: float = 0.5
    impact_y: float = 0.9
    algo_impact: tuple[float, ...] = (0.8, 0.85, 1.0, 0.9, 0.55)
    # What an algo costs whatever the order's spread and size (bps): its commission, or what
    # its footprint signals. With it, the algo an order should use depends on the order's size
    # more than on its symbol's spread (`algos.ALGO_COSTS`).
    algo_fixed_bps: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    urgency_impact: tuple[float, float, float] = (0.7, 1.0, 1.5)
    open_impact: float = 0.8
    open_tau: float = 0.06
    close_impact: float = 0.3
    close_tau: float = 0.05
    limit_discount: float = 0.2
    short_cost_bps: float = 1.5
    horizon: tuple[float, ...] = (0.25, 0.16, 0.12, 0.06, 0.3)
    urgency_horizon: tuple[float, float, float] = (1.8, 1.0, 0.45)
    spread_noise: float = 0.35
    impact_noise: float = 0.5
    # An order that fills less than this share of its quantity, or whose offset would move its
    # fills by more than `max_offset` of the arrival mid, keeps the engine's prices and has no
    # designed truth (ingestion quarantines fills 10% away from the quote as bad prints).
    min_fill_fraction: float = 0.2
    max_offset: float = 0.06

    def __post_init__(self) -> None:
        for name in ("pay", "algo_impact", "algo_fixed_bps", "horizon"):
            if len(getattr(self, name)) != 5:
                raise ValueError(f"CostDesign.{name} needs one value per algo (5)")
        if not 0.0 < self.min_fill_fraction <= 1.0:
            raise ValueError("CostDesign.min_fill_fraction must be in (0, 1]")


@dataclass(frozen=True)
class ArrivalState:
    """What the design reads of each order (aligned arrays): algo and urgency (indices),
    whether it is a LIMIT order and a short sale, the arrival's fraction of the session, the
    quoted spread at arrival in bps, the instrument's daily volatility in bps, size over ADV and
    the broker's impact multiplier."""

    algo: np.ndarray
    urgency: np.ndarray
    is_limit: np.ndarray
    is_short: np.ndarray
    tau: np.ndarray
    spread_bps: np.ndarray
    sigma_bps: np.ndarray
    size_adv: np.ndarray
    broker_multiplier: np.ndarray


def expected_cost(design: CostDesign, s: ArrivalState) -> tuple[np.ndarray, np.ndarray]:
    """The true expected cost and dispersion (mu, sd) in bps of each order."""
    pay = np.asarray(design.pay)[s.algo] * np.asarray(design.urgency_pay)[s.urgency]
    regime = 1.0 - design.wide_relief / (
        1.0 + np.exp(-(s.spread_bps - design.wide_spread_bps) / design.wide_width_bps)
    )
    spread_part = 0.5 * s.spread_bps * pay * regime
    tod = (
        1.0
        + design.open_impact * np.exp(-s.tau / design.open_tau)
        + design.close_impact * np.exp(-(1.0 - s.tau) / design.close_tau)
    )
    impact = (
        design.impact_y
        * s.sigma_bps
        * np.sqrt(s.size_adv)
        * np.asarray(design.algo_impact)[s.algo]
        * np.asarray(design.urgency_impact)[s.urgency]
        * tod
        * s.broker_multiplier
    )
    fixed = np.asarray(design.algo_fixed_bps)[s.algo]
    mu = (spread_part + impact + fixed) * np.where(s.is_limit, 1.0 - design.limit_discount, 1.0)
    mu = mu + np.where(s.is_short, design.short_cost_bps, 0.0)
    horizon = np.asarray(design.horizon)[s.algo] * np.asarray(design.urgency_horizon)[s.urgency]
    sd = np.sqrt(
        (s.sigma_bps * np.sqrt(horizon / 3.0)) ** 2
        + (design.spread_noise * s.spread_bps) ** 2
        + (design.impact_noise * impact) ** 2
    )
    return mu, sd


@dataclass(frozen=True)
class FilledOrders:
    """Per order (aligned arrays): side sign, quantity, the arrival and end mids the pipeline
    uses, and over its kept fills the filled quantity, notional and fees."""

    sign: np.ndarray
    qty: np.ndarray
    m0: np.ndarray
    m_end: np.ndarray
    filled: np.ndarray
    notional: np.ndarray
    fees: np.ndarray


def price_offsets(
    design: CostDesign, o: FilledOrders, target_bps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The price offset of each order's fills that makes its shortfall `target_bps`, and
    whether the order is designed (filled enough); undesigned orders get offset 0.

    Moving each of F filled shares by delta moves the shortfall by D F delta / (S M0) * 1e4.
    """
    current = f.implementation_shortfall_bps(
        o.sign, o.qty, o.filled, o.notional, o.fees, o.m0, o.m_end
    )
    designed = (o.filled >= design.min_fill_fraction * o.qty) & np.isfinite(current)
    safe_filled = np.where(designed, o.filled, 1.0)
    delta = o.sign * (target_bps - current) * o.qty * o.m0 / (safe_filled * f.BPS)
    designed &= np.abs(delta) <= design.max_offset * o.m0
    return np.where(designed, delta, 0.0), designed

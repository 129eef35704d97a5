"""The metric formulas of docs/METRICS.md, written once.

Every function here is plain arithmetic, so it evaluates on Python floats (the in-process event
path scores one fill at a time) and on Polars expressions (the batch path scores millions) alike.
`d` is the side sign D: +1 for a buy, -1 for a sell. Costs are positive when they cost the
trader; price improvement and markouts are positive when favourable. Division by a zero
denominator is never reached for valid quotes (M > 0 and P > 0 by the contract rules); a locked
quote gives a null spread capture, handled by the caller.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

X = TypeVar("X", float, pl.Expr)

BPS = 1e4


def mid(bid: X, ask: X) -> X:
    """M = (bid + ask) / 2."""
    return (bid + ask) / 2


def quoted_spread_bps(bid: X, ask: X, m: X) -> X:
    """(A - B) / M in bps."""
    return (ask - bid) / m * BPS


def effective_spread_bps(d: X, p: X, m: X) -> X:
    """2 D (P - M) / M in bps (SEC Rule 600/605)."""
    return 2 * d * (p - m) / m * BPS


def price_improvement_bps(d: X, p: X, bid: X, ask: X, m: X) -> X:
    """(A - P) / M for buys, (P - B) / M for sells, in bps.

    Written as one arithmetic expression in D so that it evaluates on floats and expressions:
    (1 + D) / 2 selects the buy term and (1 - D) / 2 the sell term, exactly.
    """
    return ((1 + d) / 2 * (ask - p) + (1 - d) / 2 * (p - bid)) / m * BPS


def realized_spread_bps(d: X, p: X, m: X, m_h: X) -> X:
    """2 D (P - M_{t+h}) / M in bps."""
    return 2 * d * (p - m_h) / m * BPS


def price_impact_bps(d: X, m: X, m_h: X) -> X:
    """2 D (M_{t+h} - M) / M in bps; effective = realized + impact."""
    return 2 * d * (m_h - m) / m * BPS


def markout_bps(d: X, p: X, m_h: X) -> X:
    """D (M_{t+h} - P) / P in bps; positive is favourable."""
    return d * (m_h - p) / p * BPS


def spread_capture(d: X, p: X, m: X, bid: X, ask: X) -> X:
    """D (M - P) / ((A - B) / 2): 1 at the near touch for a passive fill, -1 at the far touch."""
    return d * (m - p) / ((ask - bid) / 2)


def fee_bps(fee: X, notional: X) -> X:
    """Fee as bps of notional; positive is a cost, negative a rebate."""
    return fee / notional * BPS


def slippage_bps(d: X, avg_px: X, benchmark: X) -> X:
    """D (avg_px - benchmark) / benchmark in bps: arrival, interval VWAP and TWAP slippage."""
    return d * (avg_px - benchmark) / benchmark * BPS


def implementation_shortfall_bps(
    d: X, order_qty: X, filled_qty: X, notional: X, fees: X, m0: X, m_end: X
) -> X:
    """Perold: [sum D q_j (p_j - M0) + fees + D (S - sum q_j)(M_end - M0)] / (S M0) in bps.

    sum D q_j (p_j - M0) = D (notional - filled_qty M0), with notional = sum q_j p_j.
    """
    executed = d * (notional - filled_qty * m0)
    return (executed + fees + d * (order_qty - filled_qty) * (m_end - m0)) / (order_qty * m0) * BPS


def opportunity_cost_bps(d: X, order_qty: X, filled_qty: X, m0: X, m_end: X) -> X:
    """The unfilled part of implementation shortfall: D (S - sum q)(M_end - M0) / (S M0) in bps."""
    return d * (order_qty - filled_qty) * (m_end - m0) / (order_qty * m0) * BPS


def reversion_bps(d: X, m_end: X, m_after: X) -> X:
    """D (M_end - M_{end+h}) / M_end in bps: positive when the price comes back after the order."""
    return d * (m_end - m_after) / m_end * BPS

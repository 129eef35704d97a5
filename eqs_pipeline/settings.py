"""Documented defaults for every threshold, weight and horizon of the pure computations.

The Dagster layer exposes these through `dg.Config` classes whose defaults come from here, so a
setting has exactly one default and one place that documents it. The pure functions take these
frozen dataclasses as arguments and never read the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The markout / realized-spread horizons of DESIGN.md; the column names depend on them.
HORIZONS_S: tuple[int, ...] = (1, 5, 15, 60, 300)


@dataclass(frozen=True)
class IngestSettings:
    """Row rules of ingestion.

    max_price_deviation: a fill whose price is further than this fraction from the prevailing
        NBBO mid is a bad print and is quarantined (0.10 = 10%).
    chunk_fills: the fills' prevailing mids are looked up in symbol ranges of at most this
        many fills (and their quotes), as the quality step scores them (`QualitySettings`).
    max_identifier_chars: the longest id, symbol, venue, broker, algo, trader, account,
        currency or market accepted (rule `bad_text`, with control characters).
    """

    max_price_deviation: float = 0.10
    chunk_fills: int = 1_000_000
    max_identifier_chars: int = 128


@dataclass(frozen=True)
class CostModelSettings:
    """Almgren et al. (2005) expected cost, used until the learned model exists.

    expected_cost_bps = half_spread_bps
                        + eta * sigma_bps * participation ** beta        (temporary)
                        + 0.5 * gamma * sigma_bps * size_pct_adv         (permanent, half paid)

    sigma_bps is the daily volatility in bps, participation the order's filled quantity over the
    market volume of its interval (or size / ADV over the order's duration as a fraction of the
    day when the interval has no tape), size_pct_adv = order_qty / adv_shares.
    """

    eta: float = 0.142
    gamma: float = 0.314
    beta: float = 0.6
    default_daily_volatility: float = 0.02
    session_seconds: float = 6.5 * 3600
    min_duration_s: float = 1.0


@dataclass(frozen=True)
class ScoreSettings:
    """quality_score = 100 * (w_cost * cost + w_fill * fill + w_speed * speed) / (sum of weights).

    cost  = 1 / (1 + exp((IS_bps - expected_cost_bps) / scale)), scale = max(|expected|, floor)
    fill  = clip(fill_rate, 0, 1)
    speed = exp(-time_to_first_fill_s / speed_tau_s) (0 when nothing filled)
    Grades: score >= excellent -> excellent, >= good -> good, >= average -> average, else poor.
    An order whose cost part cannot be computed (no implementation shortfall or no expected
    cost: no arrival quote, unfilled without an end, unknown instrument) is not graded:
    quality_score and quality_grade are both null and its null_reason lists `not_graded` after
    the reasons why. Fill rate and speed alone never grade an order.
    """

    w_cost: float = 0.6
    w_fill: float = 0.25
    w_speed: float = 0.15
    cost_scale_floor_bps: float = 5.0
    speed_tau_s: float = 60.0
    excellent: float = 80.0
    good: float = 60.0
    average: float = 40.0


@dataclass(frozen=True)
class QualitySettings:
    """Everything the fill- and order-quality computation needs."""

    horizons_s: tuple[int, ...] = HORIZONS_S
    reversion_horizon_s: int = 300
    cost_model: CostModelSettings = field(default_factory=CostModelSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    # A trade date with more fills is scored in symbol ranges of at most this many fills
    # (`metrics.day`): the same rows, with memory bounded by the range instead of the day.
    chunk_fills: int = IngestSettings.chunk_fills
    # The `market_data` check of the quality assets warns (it does not block) when more than
    # this share of the trade date's orders have no arrival quote, or of its fills no prior
    # quote, and names the symbols concerned.
    max_no_market_data_share: float = 0.01

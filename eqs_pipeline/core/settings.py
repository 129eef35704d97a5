"""Documented defaults for every threshold, weight and horizon of the pure computations.

The Dagster layer exposes these through `dg.Config` classes whose defaults come from here, so a
setting has exactly one default and one place that documents it. The pure functions take these
frozen dataclasses as arguments and never read the environment.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field

# The markout / realized-spread horizons (docs/METRICS.md); the column names depend on them.
HORIZONS_S: tuple[int, ...] = (1, 5, 15, 60, 300)


# Where an instrument's trade date is counted: its `market` (a country code such as the
# simulator's and the LOBSTER importer's "US", or an ISO 10383 exchange code) maps to an IANA zone;
# a market not listed here, or no market, uses `IngestSettings.default_timezone`.
MARKET_TIMEZONES: tuple[tuple[str, str], ...] = (
    ("US", "America/New_York"),
    ("XNAS", "America/New_York"),
    ("XNYS", "America/New_York"),
    ("ARCX", "America/New_York"),
    ("BATS", "America/New_York"),
    ("CA", "America/Toronto"),
    ("XTSE", "America/Toronto"),
    ("GB", "Europe/London"),
    ("XLON", "Europe/London"),
    ("DE", "Europe/Berlin"),
    ("XETR", "Europe/Berlin"),
    ("FR", "Europe/Paris"),
    ("XPAR", "Europe/Paris"),
    ("CH", "Europe/Zurich"),
    ("XSWX", "Europe/Zurich"),
    ("JP", "Asia/Tokyo"),
    ("XTKS", "Asia/Tokyo"),
    ("HK", "Asia/Hong_Kong"),
    ("XHKG", "Asia/Hong_Kong"),
    ("AU", "Australia/Sydney"),
    ("XASX", "Australia/Sydney"),
)


@dataclass(frozen=True)
class IngestSettings:
    """Row rules of ingestion (docs/INGESTION.md lists every rule with its bound).

    max_price_deviation: a fill whose price is further than this fraction from the prevailing
        NBBO mid is a bad print and is quarantined (0.10 = 10%).
    chunk_fills: the fills' prevailing mids are looked up in symbol ranges of at most this
        many fills (and their quotes), as the quality step scores them (`QualitySettings`).
    max_identifier_chars: the longest id, symbol, venue, broker, algo, trader, account,
        currency or market accepted (rule `bad_text`, with control characters).
    max_adv_multiple: the largest order, child, fill, quote or print size accepted, in
        multiples of the instrument's ADV (rule `implausible_size`).
    min_lot_fraction: the smallest of those sizes accepted, as a fraction of the instrument's
        lot size (1 share when it has none): 1e-4 keeps fractional shares and rejects 1e-300.
    price_band_factor: a quote's bid below the symbol's median mid of the day divided by this,
        or its ask above the median times this, is quarantined; a print, fill, or order or
        child limit price outside [lowest bid / factor, highest ask * factor] of the day's staged
        quotes too (rule `implausible_price`).
    max_fee_bps: the largest fee or rebate accepted, in bps of the fill's notional
        (rule `implausible_fee`).
    max_daily_volatility: the largest daily volatility of an instrument (1.0 = 100%; rule
        `implausible_value`).
    min_price / max_price: whatever the day's quotes say, no price (quote, print, fill, limit,
        tick size) lies outside these, in the instrument's currency (`implausible_price`): a
        symbol landed in absurd units throughout is caught although it agrees with itself.
    min_adv_shares / max_adv_shares: the ADV an instrument may have (`implausible_value`);
        sizes are bounded by `max_adv_multiple` x `max_adv_shares` even without an instrument.
    off_date_tolerance_hours: a timestamp (order arrival, child send, fill, quote, print) may
        lie this far outside its folder's trade date, counted on its market's clock, before the
        row is quarantined (rule `off_date`).
    default_timezone / market_timezones: the clock of each instrument's market
        (`MARKET_TIMEZONES`).
    """

    max_price_deviation: float = 0.10
    chunk_fills: int = 500_000
    max_identifier_chars: int = 128
    max_adv_multiple: float = 10.0
    min_lot_fraction: float = 1e-4
    price_band_factor: float = 10.0
    max_fee_bps: float = 500.0
    max_daily_volatility: float = 1.0
    min_price: float = 1e-6
    max_price: float = 1e8
    min_adv_shares: float = 1.0
    max_adv_shares: float = 1e11
    off_date_tolerance_hours: float = 6.0
    default_timezone: str = "America/New_York"
    market_timezones: tuple[tuple[str, str], ...] = MARKET_TIMEZONES

    def __post_init__(self) -> None:
        for market, zone in (("default_timezone", self.default_timezone), *self.market_timezones):
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"IngestSettings: {market} -> {zone!r} is not an IANA time zone"
                ) from exc


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
class CostNetSettings:
    """The expected-cost network's architecture and training (docs/MODEL.md).

    shape_width: hidden units of each numeric feature's shape function (the additive part).
    hidden: widths of the interaction MLP's hidden layers; () leaves it out (the default: on
        the designed test bed it added more variance than it removed bias).
    learning_rate / weight_decay: AdamW's; the step size decays along a cosine to
        `final_lr_fraction` of itself over the `steps`.
    steps: optimizer steps of `batch_size` orders (a batch is all orders when there are fewer),
        the same whatever the number of orders, so training time follows the steps.
    seed: the initial weights and the order in which orders are drawn.
    """

    shape_width: int = 4
    hidden: tuple[int, ...] = ()
    learning_rate: float = 0.02
    weight_decay: float = 0.2
    final_lr_fraction: float = 0.01
    steps: int = 800
    batch_size: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        if self.shape_width < 1 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("CostNetSettings: shape_width, steps and batch_size must be >= 1")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"CostNetSettings.hidden: every width must be >= 1, not {self.hidden}")
        if not 0.0 < self.final_lr_fraction <= 1.0:
            raise ValueError("CostNetSettings.final_lr_fraction must be in (0, 1]")


@dataclass(frozen=True)
class CostTrainingSettings:
    """Walk-forward training of the expected-cost model (docs/MODEL.md).

    window_days: trade dates (those with orders) the model learns from, ending before the
        training date; the last `holdout_days` of them are held out: the model and the
        baselines learn from the others and are scored on these, out of sample.
    calibration_days: the latest of the other dates, which the network does not learn from:
        its predicted scale and its t's degrees of freedom are calibrated on them (by maximum
        likelihood), so that a network that learned its training orders too well does not
        promise narrow intervals.
        The baselines learn from them.
    min_train_orders: fewer usable orders in the window than this and no model is trained.
    coverage_tolerance: promotion needs the held-out coverage of the 50% and 90% intervals
        within this many points (0.03 = 3) of nominal.
    """

    window_days: int = 60
    holdout_days: int = 3
    calibration_days: int = 1
    min_train_orders: int = 2000
    coverage_tolerance: float = 0.03
    net: CostNetSettings = field(default_factory=CostNetSettings)

    def __post_init__(self) -> None:
        if (
            self.holdout_days < 1
            or self.calibration_days < 0
            or self.window_days <= self.holdout_days + self.calibration_days
        ):
            raise ValueError(
                "CostTrainingSettings: need holdout_days >= 1, calibration_days >= 0 and "
                "window_days > holdout_days + calibration_days (got "
                f"{self.window_days}, {self.holdout_days} and {self.calibration_days})"
            )


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
    # The market before an order's arrival (`quality.order_quality`'s pre_arrival_* columns,
    # features of the cost model): the mid's realized volatility over the last
    # `pre_arrival_volatility_s`, sampled every `pre_arrival_volatility_step_s`, and the tape
    # volume of the last `pre_arrival_volume_s`.
    pre_arrival_volatility_s: int = 1800
    pre_arrival_volatility_step_s: int = 300
    pre_arrival_volume_s: int = 900
    cost_model: CostModelSettings = field(default_factory=CostModelSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    # A trade date with more fills is scored in symbol ranges of at most this many fills
    # (`quality.day`): the same rows, with memory bounded by the range instead of the day.
    chunk_fills: int = IngestSettings.chunk_fills
    # The `market_data` check of the quality assets warns (it does not block) when more than
    # this share of the trade date's orders have no arrival quote, or of its fills no prior
    # quote, and names the symbols concerned.
    max_no_market_data_share: float = 0.01

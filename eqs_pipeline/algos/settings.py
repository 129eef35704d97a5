"""Documented defaults of the algo analysis (window, buckets, controls, intervals, score,
selection). The Dagster layer exposes every field through `AlgoConfig`, whose defaults come
from here; docs/ALGOS.md explains each choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from eqs_pipeline.core.buckets import UNKNOWN, check_comparison, clock_minutes
from eqs_pipeline.stats import METHODS, Method

SIZE_BUCKETS: tuple[str, ...] = ("small", "medium", "large")
DIFFICULTY_BUCKETS: tuple[str, ...] = ("easy", "medium", "hard")
# What the trader chose, or found, before the algo: the scorecard controls for each as an
# additive effect, besides the order-size bucket (its cell).
Control = Literal["volatility_bucket", "spread_bucket", "time_bucket", "urgency"]
CONTROLS: tuple[Control, ...] = get_args(Control)
CONTROL_LEVELS: dict[str, tuple[str, ...]] = {
    "volatility_bucket": ("calm", "normal", "volatile", UNKNOWN),
    "spread_bucket": ("tight", "normal", "wide", UNKNOWN),
    "time_bucket": ("open", "midday", "close", UNKNOWN),
    "urgency": ("LOW", "MEDIUM", "HIGH", UNKNOWN),
}

# The order metrics the scorecards estimate (weight: the order's notional at arrival), each
# with `<m>`, `<m>_ci_low`, `<m>_ci_high` and `<m>_unadjusted`.
KEY_METRICS: tuple[str, ...] = (
    "implementation_shortfall_bps",
    "cost_vs_expected_bps",
    "arrival_slippage_bps",
    "interval_vwap_slippage_bps",
    "fill_rate",
)

# The resampling unit of the cluster-robust variance.
Cluster = Literal["order", "symbol_day"]
CLUSTERS: tuple[Cluster, ...] = get_args(Cluster)


@dataclass(frozen=True)
class AlgoSettings:
    """Everything the algo analysis needs.

    window_days: trailing trade dates of the scorecards, the parameter curves, the selection
        and the recommendations (and the dates whose algo_daily rows a refresh replaces).
    size_edges_pct_adv: order size (order_qty / ADV, in percent) separating the size buckets
        small | medium | large (the scorecard's cell).
    volatility_edges_bps: the instrument's daily volatility, in bps, separating the
        volatility buckets calm | normal | volatile.
    spread_edges_bps: the quoted spread at arrival, in bps, separating tight | normal | wide.
    session_timezone / time_edges: the session clock and the times ("HH:MM") separating the
        time buckets open | midday | close of the order's arrival.
    controls: the conditions (of `CONTROLS`) the comparison controls for besides the size
        bucket, as additive effects; () for none.
    difficulty_edges_bps: the order's difficulty (its expected cost at the desk's algo mix,
        by the cost model; docs/ALGOS.md) separating easy | medium | hard.
    participation_edges: the instructed target participation (a ratio: 0.1 = 10% of market
        volume) separating the parameter curves' levels low | medium | high; an order without
        a target is "none".
    duration_edges_minutes: the instructed duration (end_ts - arrival_ts, where end_ts
        landed) separating short | medium | long; "unknown" where no end time landed.
    aggressive_limit_half_spreads: a limit order is "aggressive" when its limit lets it pay at
        least this many half spreads beyond the arrival mid (1: it reaches the far touch at
        arrival and could take liquidity at once), else "passive"; orders without a limit
        are "market".
    ci_level: two-sided level of the confidence intervals.
    ci_method: "cr1" (default): the Liang-Zeger CR1 sandwich with t(G - 1); "conditional":
        CR2 scores of a working model and t with each algo's effective number of clusters.
    cluster: the resampling unit: "symbol_day" (default: orders of one symbol on one date
        share its price moves, so their costs are correlated) or "order".
    score_weights: score = sum of weight x adjusted metric (higher is better); the default
        reads "bps of implementation shortfall saved".
    min_orders: an algo needs this many orders in the window to be ranked.
    min_pair_orders: a broker x algo pair needs this many orders to be in its scorecard.
    min_support_orders: the selection's candidates for an order are the algos that the cost
        model's training window holds at least this many orders of in the order's size bucket.
    min_saving_bps: a per-order recommendation other than the algo used needs an expected
        saving of at least this much; below it the order keeps its algo.
    wheel_power: the power of the wheel's sample-size calculation (two-sided at ci_level).
    trading_days_per_month: converts savings per day into savings per month.
    """

    window_days: int = 20
    size_edges_pct_adv: tuple[float, float] = (0.2, 1.0)
    volatility_edges_bps: tuple[float, float] = (150.0, 300.0)
    spread_edges_bps: tuple[float, float] = (5.0, 20.0)
    session_timezone: str = "America/New_York"
    time_edges: tuple[str, str] = ("10:00", "15:30")
    controls: tuple[Control, ...] = CONTROLS
    difficulty_edges_bps: tuple[float, float] = (5.0, 15.0)
    participation_edges: tuple[float, float] = (0.08, 0.15)
    duration_edges_minutes: tuple[float, float] = (30.0, 120.0)
    aggressive_limit_half_spreads: float = 1.0
    ci_level: float = 0.95
    ci_method: Method = "cr1"
    cluster: Cluster = "symbol_day"
    score_weights: dict[str, float] = field(
        default_factory=lambda: {"implementation_shortfall_bps": -1.0}
    )
    min_orders: int = 30
    min_pair_orders: int = 30
    min_support_orders: int = 20
    min_saving_bps: float = 0.5
    wheel_power: float = 0.8
    trading_days_per_month: float = 21.0

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise ValueError(f"window_days must be at least 1, not {self.window_days}")
        if self.cluster not in CLUSTERS:
            raise ValueError(f"cluster must be one of {CLUSTERS}, not {self.cluster!r}")
        if self.ci_method not in METHODS:
            raise ValueError(f"ci_method must be one of {METHODS}, not {self.ci_method!r}")
        for name in ("ci_level", "wheel_power"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), not {getattr(self, name)}")
        edges = ("size_edges_pct_adv", "volatility_edges_bps", "spread_edges_bps",
                 "difficulty_edges_bps", "participation_edges", "duration_edges_minutes",
                 "time_edges")  # fmt: skip
        check_comparison(self, edges, CONTROLS, KEY_METRICS)
        for name in ("min_orders", "min_pair_orders", "min_support_orders"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.aggressive_limit_half_spreads < 0:
            raise ValueError(
                "aggressive_limit_half_spreads must be >= 0, "
                f"not {self.aggressive_limit_half_spreads}"
            )
        if self.min_saving_bps < 0:
            raise ValueError(f"min_saving_bps must be >= 0, not {self.min_saving_bps}")


def time_edges_minutes(settings: AlgoSettings) -> tuple[int, int]:
    """`settings.time_edges` in minutes after midnight."""
    low, high = settings.time_edges
    return clock_minutes(low), clock_minutes(high)

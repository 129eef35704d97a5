"""Documented defaults of the venue analysis (window, buckets, intervals, score, optimizer).

The Dagster layer exposes every field through `VenueConfig`, whose defaults come from here.
docs/VENUES.md explains each choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from eqs_pipeline.core.buckets import UNKNOWN, check_comparison, clock_minutes
from eqs_pipeline.stats import METHODS, Method

FLAGS: tuple[str, ...] = ("ADD", "REMOVE", "MID")
SIZE_BUCKETS: tuple[str, ...] = ("small", "medium", "large")
LIQUIDITY_BUCKETS: tuple[str, ...] = ("low", "mid", "high")
# The conditions a router does not choose that the scorecard controls for besides the cell
# (liquidity bucket x order-size bucket), each as an additive effect (docs/VENUES.md): the
# quoted spread at the order's arrival, the order's urgency, the time of day the child order
# was sent and the child order's notional.
Control = Literal["spread_bucket", "urgency", "time_bucket", "child_size_bucket"]
CONTROLS: tuple[Control, ...] = get_args(Control)
# Each control's levels, in the order of its codes.
CONTROL_LEVELS: dict[str, tuple[str, ...]] = {
    "spread_bucket": ("tight", "normal", "wide", UNKNOWN),
    "urgency": ("LOW", "MEDIUM", "HIGH", UNKNOWN),
    "time_bucket": ("open", "midday", "close", UNKNOWN),
    "child_size_bucket": ("small", "medium", "large", UNKNOWN),
}

# The metrics of the scorecard: each gets a mix-adjusted estimate and a confidence interval.
# `fill_rate` is a child-order metric (weight: routed quantity); the others are fill metrics
# (weight: executed shares).
KEY_METRICS: tuple[str, ...] = (
    "all_in_cost_bps",
    "effective_spread_bps",
    "price_improvement_bps",
    "markout_5s_bps",
    "markout_60s_bps",
    "markout_300s_bps",
    "fee_bps",
    "fill_rate",
)

# Also compared within style (lit venues against each other on effective spread), as the
# scorecard's `<m>_within_style` columns.
WITHIN_STYLE_METRICS: tuple[str, ...] = ("effective_spread_bps", "price_improvement_bps")

# The resampling unit of the cluster-robust variance (`VenueSettings.cluster`).
Cluster = Literal["order", "symbol_day"]
CLUSTERS: tuple[Cluster, ...] = get_args(Cluster)


@dataclass(frozen=True)
class VenueSettings:
    """Everything the venue analysis needs.

    window_days: trailing trade dates of the scorecard and the recommendations.
    size_edges_pct_adv: parent order size (order_qty / ADV, in percent) separating the size
        buckets small | medium | large.
    liquidity_edges_usd: symbol dollar ADV (adv_shares x the day's median arrival mid)
        separating the liquidity buckets low | mid | high.
    controls: the conditions (of `CONTROLS`) the venue comparison controls for besides the
        liquidity and order-size buckets, as additive effects; () for none.
    spread_edges_bps: the order's quoted spread at arrival, in bps, separating the spread
        buckets tight | normal | wide.
    session_timezone / time_edges: the local clock of the session and the times ("HH:MM")
        separating the time buckets open | midday | close of a child order's send time.
    child_size_edges: a child order's notional (its quantity x its order's reference price,
        in the instrument's currency) separating the child size buckets small | medium | large.
    all_in_horizon_s: markout horizon of the all-in cost (all_in = fee_bps - markout_h_bps).
    ci_level: two-sided level of the confidence intervals.
    ci_method: "conditional" (default): the intervals cover the mix-adjusted expected metric
        given the fills actually sent (their cells, sizes and prevailing quotes), from CR2
        residuals of a working model that absorbs what the quotes predict and t with each
        venue's effective number of clusters; "cr1": the Liang-Zeger CR1 sandwich with
        t(G - 1), conservative for that estimand (it also carries the variation of spreads
        across fills). docs/VENUES.md, "Confidence intervals".
    cluster: the resampling unit of the cluster-robust variance: "order" (parent order) or
        "symbol_day" (every fill of a symbol on a date; more conservative, fewer clusters).
    score_weights: composite score = sum of weight x mix-adjusted metric (higher is better);
        the defaults read "bps saved, plus 5 bps per unit of fill rate".
    min_fills: a venue (or a venue in an optimizer segment) needs this many fills to be scored
        or re-allocated; below it the scorecard leaves it untiered and the optimizer keeps its
        current share.
    capacity_multiple: the optimizer may give a venue at most this multiple of the larger of
        its current share of our flow and its share of the tape in the segment's symbols.
    cost_uncertainty_penalty: the optimizer ranks venues by cost + this many standard errors
        (pessimistic costs, so noise does not move flow); savings use the point estimates.
    switching_cost_bps: the optimizer's cost per unit of share moved, so that venues whose
        costs differ by less keep their current shares (no churn on ties).
    trading_days_per_month: converts the daily saving into a monthly one.
    """

    window_days: int = 20
    size_edges_pct_adv: tuple[float, float] = (0.2, 1.0)
    liquidity_edges_usd: tuple[float, float] = (20e6, 200e6)
    controls: tuple[Control, ...] = CONTROLS
    spread_edges_bps: tuple[float, float] = (5.0, 20.0)
    session_timezone: str = "America/New_York"
    time_edges: tuple[str, str] = ("10:00", "15:30")
    child_size_edges: tuple[float, float] = (20e3, 100e3)
    all_in_horizon_s: int = 60
    ci_level: float = 0.95
    ci_method: Method = "conditional"
    cluster: Cluster = "order"
    score_weights: dict[str, float] = field(
        default_factory=lambda: {"all_in_cost_bps": -1.0, "fill_rate": 5.0}
    )
    min_fills: int = 30
    capacity_multiple: float = 2.0
    cost_uncertainty_penalty: float = 1.0
    switching_cost_bps: float = 0.25
    trading_days_per_month: float = 21.0

    def __post_init__(self) -> None:
        if self.cluster not in CLUSTERS:
            raise ValueError(f"cluster must be one of {CLUSTERS}, not {self.cluster!r}")
        if self.ci_method not in METHODS:
            raise ValueError(f"ci_method must be one of {METHODS}, not {self.ci_method!r}")
        if not 0 < self.ci_level < 1:
            raise ValueError(f"ci_level must be in (0, 1), not {self.ci_level}")
        edges = ("size_edges_pct_adv", "liquidity_edges_usd", "spread_edges_bps",
                 "child_size_edges", "time_edges")  # fmt: skip
        check_comparison(self, edges, CONTROLS, KEY_METRICS)


def time_edges_minutes(settings: VenueSettings) -> tuple[int, int]:
    """`settings.time_edges` in minutes after midnight."""
    low, high = settings.time_edges
    return clock_minutes(low), clock_minutes(high)

"""The venue tables (docs/VENUES.md): daily figures and their buckets, the scorecard, the routing
recommendations, the VenuePerformanceEvents and the view that recomputes the scorecard's
unadjusted figures from the fills."""

from __future__ import annotations

import polars as pl

from eqs_pipeline.core.contract import TS
from eqs_pipeline.core.settings import HORIZONS_S
from eqs_pipeline.tables.quality import JSON_OBJECT, SEMVER
from eqs_pipeline.tables.spec import (
    TRADE_DAYS,
    WINDOW_END,
    WINDOW_START,
    Column,
    RowCheck,
    Table,
    Unit,
)
from eqs_pipeline.venues.settings import KEY_METRICS, WITHIN_STYLE_METRICS

# A share of a whole: in [0, 1].
_UNIT_RANGE = {"ge": 0.0, "le": 1.0}
# A share the optimizer computes: in [0, 1] up to its tolerance.
_SOLVED_RANGE = {"ge": 0.0, "le": 1.0 + 1e-9}
_FLAG_VALUES = ("ADD", "REMOVE", "MID", "AUCTION", "ALL")


def _f(name: str, description: str, unit: Unit | None, **rules) -> Column:
    return Column(name, pl.Float64, description, unit, **rules)


VENUE = Column("venue", pl.String, "Venue MIC.", nullable=False)
TRADE_DATE = Column("trade_date", pl.Date, "Trade date.", nullable=False)


def _venue_figures() -> list[Column]:
    """The figures of a venue on a trade date (venue_daily, and each bucket of the buckets)."""
    cols = [
        Column("fills", pl.UInt32, "Number of fills.", "count", nullable=False, ge=0),
        _f("shares", "Executed shares.", "shares", nullable=False, ge=0),
        _f(
            "notional",
            "Executed notional (qty x price), in the instruments' currency.",
            "currency",
        ),
        _f(
            "flow_share",
            "The venue's share of our executed shares (same trade date and bucket).",
            "ratio",
            **_UNIT_RANGE,
        ),
        Column("child_orders", pl.UInt32, "Child orders routed to the venue.", "count"),
        _f("routed_qty", "Quantity routed (sum of child qty).", "shares"),
        _f(
            "executed_qty",
            "Quantity the child orders executed (fills joined by child_id).",
            "shares",
        ),
        _f(
            "fill_rate",
            "Child-order fill rate: executed_qty / routed_qty.",
            "ratio",
            **_UNIT_RANGE,
        ),
        _f(
            "latency_median_ms",
            "Median over fills of exec_ts - sent_ts of the fill's child, ms.",
            "ms",
        ),
        _f("latency_p95_ms", "95th percentile of exec_ts - sent_ts over fills, ms.", "ms"),
        _f(
            "eq_ratio",
            "E/Q: sum(effective spread x shares) / sum(quoted spread x shares).",
            "ratio",
        ),
        _f(
            "pct_improved",
            "Share of shares (fills with a quote) filled inside the quote.",
            "ratio",
            **_UNIT_RANGE,
        ),
        _f("pct_at_quote", "Share of shares filled at the quote.", "ratio", **_UNIT_RANGE),
        _f("pct_outside", "Share of shares filled outside the quote.", "ratio", **_UNIT_RANGE),
        _f("fees_paid", "Fees paid, currency (sum of positive fees).", "currency"),
        _f(
            "rebates_received",
            "Rebates received, currency (minus the sum of negative fees).",
            "currency",
        ),
        _f("quoted_spread_bps", "Share-weighted quoted spread, bps.", "bps"),
        _f(
            "effective_spread_bps", "Share-weighted effective spread, bps (positive = cost).", "bps"
        ),
        _f(
            "price_improvement_bps",
            "Share-weighted price improvement, bps (positive = better).",
            "bps",
        ),
    ]
    for h in HORIZONS_S:
        cols += [
            _f(
                f"realized_spread_{h}s_bps", f"Share-weighted realized spread at {h} s, bps.", "bps"
            ),
            _f(f"price_impact_{h}s_bps", f"Share-weighted price impact at {h} s, bps.", "bps"),
            _f(
                f"markout_{h}s_bps",
                f"Share-weighted markout at {h} s, bps (negative = adverse selection).",
                "bps",
            ),
        ]
    cols += [
        _f(
            "fee_bps",
            "Share-weighted net fee, bps of notional (negative = net rebate).",
            "bps",
        ),
        _f(
            "all_in_cost_bps",
            "Share-weighted all-in cost, bps: fee_bps - markout_60s_bps per fill "
            "(docs/METRICS.md).",
            "bps",
        ),
    ]
    return cols


_MEDIAN_NOT_ABOVE_P95 = RowCheck(
    "median_latency_not_above_p95",
    "the median fill latency is not above its 95th percentile",
    pl.col("latency_median_ms") <= pl.col("latency_p95_ms") + 1e-9,
)

VENUE_DAILY = Table(
    "venue.venue_daily",
    "One row per venue and trade date: fill rate and latency, flow, spreads, E/Q, quote "
    "position, price improvement, realized spread / impact / markouts, fees and the all-in cost "
    "(docs/VENUES.md).",
    (TRADE_DATE, VENUE, *_venue_figures()),
    unique=("trade_date", "venue"),
    row_checks=(_MEDIAN_NOT_ABOVE_P95,),
)

VENUE_DAILY_BUCKETS = Table(
    "venue.venue_daily_buckets",
    "The venue_daily figures per venue and trade date broken down by liquidity flag, order-size "
    "bucket, symbol-liquidity bucket, and by their full cell, so venues compare like for like.",
    (
        Column(
            "breakdown",
            pl.String,
            "liquidity_flag, size_bucket or liquidity_bucket (the other two read ALL), or cell "
            "(all three set).",
            nullable=False,
            allowed=("liquidity_flag", "size_bucket", "liquidity_bucket", "cell"),
        ),
        TRADE_DATE,
        VENUE,
        Column(
            "liquidity_flag",
            pl.String,
            "ADD / REMOVE / MID (AUCTION) of the fills; a child's flag is implied by its style "
            "(MIDPEG -> MID, IOC or MARKET -> REMOVE, else ADD); ALL when not broken down.",
            nullable=False,
            allowed=_FLAG_VALUES,
        ),
        Column(
            "size_bucket",
            pl.String,
            "Parent order size: small (< 0.2% ADV), medium (< 1%), large, unknown; ALL when not "
            "broken down.",
            nullable=False,
            allowed=("small", "medium", "large", "unknown", "ALL"),
        ),
        Column(
            "liquidity_bucket",
            pl.String,
            "Symbol dollar ADV: low (< $20M), mid (< $200M), high, unknown; ALL when not broken "
            "down.",
            nullable=False,
            allowed=("low", "mid", "high", "unknown", "ALL"),
        ),
        *_venue_figures(),
    ),
    unique=(
        "trade_date",
        "breakdown",
        "venue",
        "liquidity_flag",
        "size_bucket",
        "liquidity_bucket",
    ),
)


# --- venue.venue_scorecard -------------------------------------------------------------------

_MEANING = {
    "all_in_cost_bps": "all-in cost, bps (lower is better)",
    "effective_spread_bps": "effective spread, bps",
    "price_improvement_bps": "price improvement, bps",
    "markout_5s_bps": "markout at 5 s, bps",
    "markout_60s_bps": "markout at 60 s, bps",
    "markout_300s_bps": "markout at 300 s, bps",
    "fee_bps": "net fee, bps",
    "fill_rate": "child fill rate (clipped to [0, 1])",
}


def _metric_unit(metric: str) -> Unit:
    return "ratio" if metric == "fill_rate" else "bps"


def _scorecard_metrics() -> list[Column]:
    cols: list[Column] = []
    for m in KEY_METRICS:
        unit = _metric_unit(m)
        # The fill rate is a share in [0, 1] in every form; the costs have no bounds.
        rules = _UNIT_RANGE if m == "fill_rate" else {}
        cols += [
            _f(
                m,
                f"Mix-adjusted {_MEANING[m]} across styles: the venue's value for the reference "
                "mix of conditions; null when the venue is not comparable (see note).",
                unit,
                **rules,
            ),
            _f(
                f"{m}_ci_low",
                f"Lower bound of the confidence interval of {m}; null when the venue's rows come "
                "from one cluster.",
                unit,
                **rules,
            ),
            _f(f"{m}_ci_high", f"Upper bound of the confidence interval of {m}.", unit, **rules),
            _f(
                f"{m}_unadjusted",
                (
                    "Executed / routed quantity of the window's child orders"
                    if m == "fill_rate"
                    else f"Plain share-weighted {m} over the window's fills"
                )
                + " (view venue.scorecard_from_fills).",
                unit,
                **rules,
            ),
        ]
    return cols


def _within_style_metrics() -> list[Column]:
    cols: list[Column] = []
    for m in WITHIN_STYLE_METRICS:
        unit = _metric_unit(m)
        cols += [
            _f(
                f"{m}_within_style",
                f"{m} compared within style (cells split by liquidity flag), at the pooled mix "
                "of the venues it is compared with; null when no other venue trades in its "
                "style.",
                unit,
            ),
            _f(
                f"{m}_within_style_ci_low",
                f"Lower bound of the interval of {m}_within_style.",
                unit,
            ),
            _f(
                f"{m}_within_style_ci_high",
                f"Upper bound of the interval of {m}_within_style.",
                unit,
            ),
        ]
    return cols


def _ci_check(metric: str) -> RowCheck:
    return RowCheck(
        f"ci_contains_{metric}",
        f"{metric}_ci_low <= {metric} <= {metric}_ci_high",
        (pl.col(f"{metric}_ci_low") <= pl.col(metric) + 1e-9)
        & (pl.col(metric) <= pl.col(f"{metric}_ci_high") + 1e-9),
    )


VENUE_SCORECARD = Table(
    "venue.venue_scorecard",
    "One row per venue over the trailing window of trade dates: key metrics compared across "
    "execution styles under the same conditions, with cluster-robust confidence intervals, the "
    "composite score and the rank tier; within-style comparisons as extra columns "
    "(docs/VENUES.md).",
    (
        Column("venue", pl.String, "Venue MIC.", nullable=False, unique=True),
        WINDOW_START,
        WINDOW_END,
        TRADE_DAYS,
        _f(
            "score",
            "Composite score: sum of weight x adjusted metric (default -all_in_cost_bps + 5 x "
            "fill_rate); higher is better.",
            None,
        ),
        _f("score_ci_low", "Lower bound of the score's confidence interval.", None),
        _f("score_ci_high", "Upper bound of the score's confidence interval.", None),
        Column(
            "rank",
            pl.Int32,
            "Rank tier (1 = best); venues not significantly different from their tier's leader "
            "share it; null when not ranked (fewer than min_fills fills, or fills from one "
            "cluster: no interval).",
            ge=1,
        ),
        Column("rank_tier_members", pl.String, "The venues sharing this rank."),
        Column("fills", pl.UInt32, "Fills in the window.", "count", nullable=False, ge=0),
        _f("shares", "Executed shares in the window.", "shares"),
        _f("notional", "Executed notional in the window.", "currency"),
        _f("flow_share", "Share of our executed shares in the window.", "ratio", **_UNIT_RANGE),
        Column(
            "style_mix",
            pl.String,
            "How the venue's shares were obtained: its executed shares by liquidity flag, "
            "largest first (e.g. 'MID 100%').",
        ),
        *_scorecard_metrics(),
        *_within_style_metrics(),
        Column(
            "within_style_peers",
            pl.String,
            "The venues it is compared with within style (empty: none).",
        ),
        Column(
            "adjusted_for",
            pl.String,
            "What the comparison controls for: the liquidity x order-size cell and the additive "
            "controls.",
        ),
        Column(
            "clusters",
            pl.Int32,
            "Independent clusters (parent orders by default) behind the intervals.",
            "count",
        ),
        Column("ci_method", pl.String, "How the intervals were computed."),
        Column(
            "note",
            pl.String,
            "Why a figure is missing or the venue is not ranked; null when everything is reported.",
        ),
        Column(
            "inputs_fingerprint",
            pl.String,
            "SHA-256 of what the window was computed from: its trade dates' inputs "
            "fingerprints (staging.ingest_log), the venue settings and the code. `eqs run` "
            "skips the window assets while it is unchanged.",
            pattern="[0-9a-f]{64}$",
        ),
    ),
    row_checks=tuple(
        _ci_check(m)
        for m in (
            "score",
            "all_in_cost_bps",
            "fill_rate",
            "markout_60s_bps",
            *(f"{w}_within_style" for w in WITHIN_STYLE_METRICS),
        )
    ),
)


# --- venue.routing_recommendations ----------------------------------------------------------

ROUTING_RECOMMENDATIONS = Table(
    "venue.routing_recommendations",
    "Per liquidity bucket, order-size bucket and venue (every style, dark and lit): the current "
    "and the recommended share of routed quantity from the cost-minimizing linear program, what "
    "a share routed there costs, and the expected saving (docs/VENUES.md).",
    (
        Column(
            "liquidity_bucket",
            pl.String,
            "Symbol-liquidity bucket of the segment.",
            nullable=False,
        ),
        Column("size_bucket", pl.String, "Order-size bucket of the segment.", nullable=False),
        VENUE,
        Column("window_start", pl.Date, "First trade date of the window."),
        Column("window_end", pl.Date, "Last trade date of the window."),
        Column("fills", pl.UInt32, "The venue's fills in the segment.", "count"),
        _f("shares", "The venue's executed shares in the segment.", "shares"),
        _f(
            "routed_qty",
            "Quantity of the child orders routed to the venue in the segment.",
            "shares",
        ),
        _f(
            "current_share",
            "Current share of the segment's routed quantity.",
            "ratio",
            nullable=False,
            **_UNIT_RANGE,
        ),
        _f(
            "recommended_share",
            "Recommended share of routed quantity (the optimizer's solution); sums to 1 per "
            "segment.",
            "ratio",
            nullable=False,
            **_SOLVED_RANGE,
        ),
        _f("share_change", "recommended_share - current_share.", "ratio"),
        _f(
            "capacity_share",
            "Upper bound: capacity_multiple x max(current_share, tape_share), at most 1.",
            "ratio",
            nullable=False,
            **_SOLVED_RANGE,
        ),
        Column(
            "movable",
            pl.Boolean,
            "Whether the optimizer may move this venue's share (enough fills, a fill rate, fills "
            "from two clusters or more).",
        ),
        _f(
            "all_in_cost_bps",
            "The venue's all-in cost per executed share in the segment, adjusted for the controls.",
            "bps",
        ),
        _f(
            "all_in_cost_se_bps",
            "Its cluster-robust standard error; null when the venue's fills in the segment come "
            "from one cluster.",
            "bps",
        ),
        _f(
            "fill_rate",
            "The venue's child fill rate in the segment (executed / routed).",
            "ratio",
        ),
        _f(
            "wait_s",
            "Mean wait of the venue's unfilled quantity before it could be re-routed (child "
            "end_ts - sent_ts, weighted by unfilled quantity).",
            "s",
            nullable=False,
            ge=0.0,
        ),
        _f(
            "delay_cost_bps",
            "Opportunity cost of that wait: drift_bps_per_s x wait_s.",
            "bps",
            nullable=False,
            ge=0.0,
        ),
        _f(
            "fallback_cost_bps",
            "Cost of re-routing a miss: the segment's all-in cost of taking liquidity (its "
            "REMOVE fills).",
            "bps",
        ),
        _f(
            "routed_cost_bps",
            "Expected cost of a share routed here first: fill_rate x cost + (1 - fill_rate) x "
            "(fallback + delay), bps.",
            "bps",
        ),
        _f(
            "drift_bps_per_s",
            "The segment's adverse drift of the mid while our orders work, bps per second (at "
            "least 0).",
            "bps/s",
            nullable=False,
            ge=0.0,
        ),
        _f(
            "tape_share",
            "The venue's share of the consolidated tape in the segment's liquidity bucket's "
            "symbol-days.",
            "ratio",
        ),
        _f(
            "expected_saving_bps",
            "Segment saving: sum (current - recommended) x routed cost, bps of the segment's "
            "quantity (positive = cheaper).",
            "bps",
            nullable=False,
        ),
        _f(
            "expected_saving_per_month",
            "Segment saving in currency per month at the window's average daily notional.",
            "currency/month",
        ),
        _f(
            "segment_notional_per_day",
            "The segment's average executed notional per trade date.",
            "currency/day",
        ),
        Column("solver_status", pl.String, "optimal, or why the current allocation was kept."),
    ),
    unique=("liquidity_bucket", "size_bucket", "venue"),
    row_checks=(
        RowCheck(
            "recommended_within_capacity",
            "recommended_share <= capacity_share",
            pl.col("recommended_share") <= pl.col("capacity_share") + 1e-6,
        ),
    ),
)


# --- venue.venue_performance_events ---------------------------------------------------------

VENUE_PERFORMANCE_EVENTS = Table(
    "venue.venue_performance_events",
    "VenuePerformanceEvent records, one per venue each time the scorecard is refreshed, with a "
    "versioned JSON payload; also exported as JSON Lines per window end.",
    (
        Column(
            "event_id",
            pl.String,
            "Stable id: vpe:<venue>:<window_end>:<schema_version>.",
            nullable=False,
            unique=True,
        ),
        Column(
            "event_type",
            pl.String,
            "VenuePerformanceEvent.",
            nullable=False,
            allowed=("VenuePerformanceEvent",),
        ),
        Column(
            "schema_version",
            pl.String,
            "Payload schema version (semver).",
            nullable=False,
            pattern=SEMVER,
        ),
        Column("window_start", pl.Date, "First trade date of the scorecard window."),
        Column("window_end", pl.Date, "Last trade date of the scorecard window.", nullable=False),
        VENUE,
        Column("emitted_at", TS, "When the event was materialized (UTC)."),
        Column(
            "payload",
            pl.String,
            "JSON object: score, rank, tier members and every key metric with its interval.",
            nullable=False,
            pattern=JSON_OBJECT,
        ),
    ),
)


# --- venue.scorecard_from_fills (a view: sql/create_scorecard_from_fills_view.sql) -----------

SCORECARD_FROM_FILLS = Table(
    "venue.scorecard_from_fills",
    "View: the scorecard's unadjusted figures recomputed from quality.fill_quality and "
    "staging.child_orders over the scorecard's window (traceability; docs/VENUES.md).",
    (
        Column("venue", pl.String, "Venue MIC."),
        Column("fills", pl.Int64, "Fills in the window.", "count"),
        _f("shares", "Executed shares in the window.", "shares"),
        _f("notional", "Executed notional in the window.", "currency"),
        *[
            _f(
                f"{m}_unadjusted",
                "Executed / routed quantity of the window's child orders."
                if m == "fill_rate"
                else f"Share-weighted {m} over the window's fills.",
                _metric_unit(m),
            )
            for m in KEY_METRICS
        ],
    ),
    view=True,
)

TABLES: tuple[Table, ...] = (
    VENUE_DAILY,
    VENUE_DAILY_BUCKETS,
    VENUE_SCORECARD,
    ROUTING_RECOMMENDATIONS,
    VENUE_PERFORMANCE_EVENTS,
    SCORECARD_FROM_FILLS,
)

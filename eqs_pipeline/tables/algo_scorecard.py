"""The algo scorecards (docs/ALGOS.md, "Scorecards" and "The wheel"): `algo.algo_scorecard`
and `algo.broker_algo_scorecard`, in the column order `algos.scorecard` produces."""

from __future__ import annotations

import polars as pl

from eqs_pipeline.algos.scorecard import algo_columns, broker_algo_columns
from eqs_pipeline.algos.settings import KEY_METRICS
from eqs_pipeline.tables.spec import (
    TRADE_DAYS,
    WINDOW_END,
    WINDOW_START,
    Column,
    RowCheck,
    Table,
    Unit,
)

_UNIT_RANGE = {"ge": 0.0, "le": 1.0}

_MEANING = {
    "implementation_shortfall_bps": (
        "implementation shortfall, bps of the arrival notional (lower is better)",
        "arrival notional",
    ),
    "cost_vs_expected_bps": (
        "implementation shortfall less the order's expected cost, bps",
        "arrival notional",
    ),
    "arrival_slippage_bps": ("arrival slippage of the fills, bps", "executed notional"),
    "interval_vwap_slippage_bps": (
        "slippage against the interval VWAP, bps",
        "executed notional",
    ),
    "fill_rate": ("fill rate, filled / ordered shares (clipped to [0, 1])", "arrival notional"),
}


def _f(name: str, description: str, unit: Unit | None, **rules) -> Column:
    return Column(name, pl.Float64, description, unit, **rules)


def _metric_columns(subject: str) -> list[Column]:
    cols: list[Column] = []
    for m in KEY_METRICS:
        meaning, weight = _MEANING[m]
        unit: Unit = "ratio" if m == "fill_rate" else "bps"
        rules = _UNIT_RANGE if m == "fill_rate" else {}
        cols += [
            _f(
                m,
                f"Difficulty-adjusted {meaning}: the {subject}'s figure on the desk's whole flow, "
                "standardized over order-size buckets (its value at each bucket's pooled mix "
                "of conditions, weighted by the bucket's share of the desk's "
                f"{weight}); null when not comparable, e.g. no order in a size bucket "
                "(see note).",
                unit,
                **rules,
            ),
            _f(
                f"{m}_ci_low",
                f"Lower bound of the confidence interval of {m}; null when the {subject}'s "
                "orders come from one cluster.",
                unit,
                **rules,
            ),
            _f(f"{m}_ci_high", f"Upper bound of the confidence interval of {m}.", unit, **rules),
            _f(
                f"{m}_unadjusted",
                f"Plain {weight}-weighted mean of {m} over the {subject}'s orders in the window.",
                unit,
                **rules,
            ),
        ]
    return cols


def _common(subject: str, plural: str) -> dict[str, Column]:
    """The columns both scorecards share, by name."""
    cols = [
        WINDOW_START,
        WINDOW_END,
        TRADE_DAYS,
        _f(
            "score",
            "Composite score: sum of weight x adjusted metric (default "
            "-implementation_shortfall_bps, bps saved); higher is better.",
            None,
        ),
        _f("score_ci_low", "Lower bound of the score's confidence interval.", None),
        _f("score_ci_high", "Upper bound of the score's confidence interval.", None),
        Column(
            "rank",
            pl.Int32,
            f"Rank tier (1 = best): {plural} whose score is not significantly below their "
            f"tier's leader share it; null when not ranked (see note).",
            ge=1,
        ),
        Column("rank_tier_members", pl.String, f"The {plural} sharing this rank."),
        Column("orders", pl.UInt32, "Parent orders in the window.", "count", nullable=False, ge=1),
        _f(
            "arrival_notional",
            "Sum of order_qty x arrival mid of its orders (orders without an arrival quote "
            "count 0).",
            "currency",
            nullable=False,
            ge=0.0,
        ),
        _f(
            "flow_share",
            f"The {subject}'s share of the desk's arrival notional in the window.",
            "ratio",
            **_UNIT_RANGE,
        ),
        _f(
            "difficulty_bps",
            "Arrival-notional-weighted mean difficulty of its orders: their expected cost at "
            "the desk's algo mix by the cost model, else their own expected cost (orders' "
            "difficulty_source); above the desk's means it was sent the harder orders.",
            "bps",
        ),
        *_metric_columns(subject),
        Column(
            "adjusted_for",
            pl.String,
            "What the comparison holds equal: the order-size buckets it is standardized over "
            "and the additive controls within them.",
        ),
        Column(
            "clusters",
            pl.Int32,
            "Independent clusters (symbol-days by default) behind the intervals.",
            "count",
        ),
        Column("ci_method", pl.String, "How the intervals were computed."),
        Column(
            "note",
            pl.String,
            f"Why a figure is missing or the {subject} is not ranked; null when everything is "
            "reported.",
        ),
    ]
    return {c.name: c for c in cols}


_WHEEL = [
    Column(
        "wheel_orders",
        pl.UInt32,
        "The algo's orders allocated by the algo wheel in the window (0: none).",
        "count",
        nullable=False,
        ge=0,
    ),
    _f(
        "wheel_implementation_shortfall_bps",
        "Unbiased comparison on the wheel's orders alone: the Hajek inverse-propensity-"
        "weighted mean shortfall (weight: arrival notional / probability of the algo drawn), "
        "what the whole wheel flow would have cost with this algo; null without wheel orders.",
        "bps",
    ),
    _f(
        "wheel_implementation_shortfall_bps_ci_low",
        "Lower bound of its cluster-robust confidence interval.",
        "bps",
    ),
    _f(
        "wheel_implementation_shortfall_bps_ci_high",
        "Upper bound of its cluster-robust confidence interval.",
        "bps",
    ),
    _f(
        "wheel_difference_to_best_bps",
        "wheel_implementation_shortfall_bps minus that of the best wheel algo (the lowest "
        "with an interval; 0 for the best itself).",
        "bps",
    ),
    _f(
        "wheel_difference_to_best_bps_ci_low",
        "Lower bound of the difference's confidence interval (from the two algos' cluster "
        "influences, their correlation included); null for the best itself.",
        "bps",
    ),
    _f(
        "wheel_difference_to_best_bps_ci_high",
        "Upper bound of the difference's confidence interval.",
        "bps",
    ),
    Column(
        "wheel_orders_needed",
        pl.Int64,
        "More wheel orders, in total over the algos at the current allocation probabilities, "
        "for the observed difference to the best to be significant with power wheel_power; 0 "
        "when it already is; null for the best, without an interval or without a difference.",
        "count",
        ge=0,
    ),
    Column(
        "wheel_test",
        pl.String,
        "The wheel comparison's estimator and test, in words; null without wheel orders.",
    ),
]

_FINGERPRINT = Column(
    "inputs_fingerprint",
    pl.String,
    "SHA-256 of what the window was computed from: its trade dates' inputs fingerprints, the "
    "algo settings, the cost model version and the code. `eqs run` skips the window while it "
    "is unchanged.",
    pattern="[0-9a-f]{64}$",
)


def _ci_check(metric: str) -> RowCheck:
    return RowCheck(
        f"ci_contains_{metric}",
        f"{metric}_ci_low <= {metric} <= {metric}_ci_high",
        (pl.col(f"{metric}_ci_low") <= pl.col(metric) + 1e-9)
        & (pl.col(metric) <= pl.col(f"{metric}_ci_high") + 1e-9),
    )


_CI_CHECKS = tuple(_ci_check(m) for m in ("score", *KEY_METRICS))
_RANKED_WITH_INTERVAL = RowCheck(
    "ranked_only_with_an_interval",
    "a ranked row has an interval for its score",
    pl.col("rank").is_null() | pl.col("score_ci_low").is_not_null(),
)
_WHEEL_TEST = RowCheck(
    "wheel_test_iff_wheel_orders",
    "wheel_test is set exactly on the algos with wheel orders",
    (pl.col("wheel_orders") > 0) == pl.col("wheel_test").is_not_null(),
)


def _columns(names: list[str], common: dict[str, Column], own: list[Column]) -> tuple:
    by_name = common | {c.name: c for c in own}
    return tuple(by_name[n] for n in names)


ALGO_SCORECARD = Table(
    "algo.algo_scorecard",
    "One row per algo over the trailing window of trade dates: key metrics adjusted for "
    "what the trader chose before the algo (order size, volatility, spread, time of day, "
    "urgency) on the desk's whole flow (standardized over order-size buckets), with "
    "cluster-robust confidence intervals, the score "
    "and the rank tier; on algo-wheel orders, the unbiased inverse-propensity-weighted "
    "comparison and the orders needed to separate each algo from the best (docs/ALGOS.md).",
    (
        *_columns(
            algo_columns(),
            _common("algo", "algos"),
            [Column("algo", pl.String, "Execution algorithm.", nullable=False), *_WHEEL],
        ),
        _FINGERPRINT,
    ),
    unique=("algo",),
    row_checks=(
        *_CI_CHECKS,
        _ci_check("wheel_implementation_shortfall_bps"),
        _ci_check("wheel_difference_to_best_bps"),
        _RANKED_WITH_INTERVAL,
        _WHEEL_TEST,
    ),
)

BROKER_ALGO_SCORECARD = Table(
    "algo.broker_algo_scorecard",
    "The algo scorecard for broker x algo pairs with at least min_pair_orders orders in the "
    "window, each estimated on all the window's orders and ranked among the published pairs "
    "(docs/ALGOS.md).",
    _columns(
        broker_algo_columns(),
        _common("pair", "pairs"),
        [
            Column("broker", pl.String, "Executing broker.", nullable=False),
            Column("algo", pl.String, "Execution algorithm.", nullable=False),
        ],
    ),
    unique=("broker", "algo"),
    row_checks=(*_CI_CHECKS, _RANKED_WITH_INTERVAL),
)

TABLES: tuple[Table, ...] = (ALGO_SCORECARD, BROKER_ALGO_SCORECARD)

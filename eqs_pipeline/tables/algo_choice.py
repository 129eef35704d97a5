"""The algo choice tables (docs/ALGOS.md): the parameter curves, the per-order selection through
the cost model and the recommended algo mix per difficulty bucket."""

from __future__ import annotations

import polars as pl

from eqs_pipeline.algos.parameters import PARAMETER_LEVELS, PARAMETERS, VALUE
from eqs_pipeline.algos.recommendations import ALL
from eqs_pipeline.algos.settings import CONTROL_LEVELS, DIFFICULTY_BUCKETS, SIZE_BUCKETS
from eqs_pipeline.core.buckets import UNKNOWN
from eqs_pipeline.core.contract import SIDES
from eqs_pipeline.tables.model import VERSION_PATTERN
from eqs_pipeline.tables.spec import (
    TRADE_DAYS,
    WINDOW_END,
    WINDOW_START,
    Column,
    RowCheck,
    Table,
    Unit,
)

_DIFFICULTY = (*DIFFICULTY_BUCKETS, UNKNOWN)
_URGENCY = CONTROL_LEVELS["urgency"]
_LEVELS = tuple(dict.fromkeys(v for levels in PARAMETER_LEVELS.values() for v in levels))
# A share of a whole: in [0, 1] up to the rounding of a sum.
_SHARE = {"ge": 0.0, "le": 1.0 + 1e-9}


def _f(name: str, description: str, unit: Unit | None, **rules) -> Column:
    return Column(name, pl.Float64, description, unit, **rules)


def _window() -> tuple[Column, ...]:
    return (WINDOW_START, WINDOW_END, TRADE_DAYS)


ALGO_PARAMETERS = Table(
    "algo.algo_parameters",
    "Parameter curves over the trailing window: per algo x difficulty bucket x instruction "
    "(urgency, target participation, instructed duration, limit aggressiveness) x level, the "
    "orders' implementation shortfall mix-adjusted for order size and the other controls, "
    "with cluster-robust intervals; per algo x bucket x instruction the best level, its saving "
    "against the current mix of levels, and the recommended level where that saving is "
    "significant (docs/ALGOS.md, 'Parameter curves').",
    (
        *_window(),
        Column("algo", pl.String, "Execution algorithm.", nullable=False),
        Column(
            "difficulty_bucket",
            pl.String,
            "Difficulty bucket of the orders' base difficulty: their expected cost at the "
            "desk's algo mix, at the desk's usual urgency and as market orders (so that no "
            "instruction moves an order between buckets); without a cost model, of their own "
            "expected cost.",
            nullable=False,
            allowed=_DIFFICULTY,
        ),
        Column(
            "parameter",
            pl.String,
            "The instruction whose curve the row is a point of.",
            nullable=False,
            allowed=PARAMETERS,
        ),
        Column(
            "level",
            pl.String,
            "The instruction's level: urgency as landed; target_participation none (no "
            "target) | low | medium | high by the settings' participation_edges; duration "
            "(end_ts - arrival_ts) short | medium | long by duration_edges_minutes; "
            "limit_aggressiveness market | passive | aggressive (the limit reaches "
            "aggressive_limit_half_spreads half spreads beyond the arrival mid); unknown "
            "where not landed.",
            nullable=False,
            allowed=_LEVELS,
        ),
        Column(
            "level_order",
            pl.Int32,
            "The level's place on the curve's axis (0 first).",
            nullable=False,
            ge=0,
        ),
        Column(
            "orders",
            pl.UInt32,
            "Orders at the level (with a shortfall and an arrival notional).",
            "count",
            nullable=False,
            ge=1,
        ),
        _f("notional", "Their arrival notional.", "currency", nullable=False, gt=0.0),
        _f(
            "share",
            "The level's share of the algo x bucket's arrival notional (the current mix).",
            "ratio",
            nullable=False,
            **_SHARE,
        ),
        _f(
            VALUE,
            "Implementation shortfall at the level, mix-adjusted (the algo x bucket's pooled mix "
            "of order sizes and controls); null where the level cannot be told apart from the "
            "controls.",
            "bps",
        ),
        _f(f"{VALUE}_ci_low", "Lower bound of its cluster-robust interval (ci_level).", "bps"),
        _f(f"{VALUE}_ci_high", "Upper bound of its cluster-robust interval.", "bps"),
        _f(
            f"{VALUE}_unadjusted",
            "The level's raw shortfall, arrival-notional-weighted.",
            "bps",
            nullable=False,
        ),
        Column(
            "best_level",
            pl.String,
            "Of the algo x bucket x instruction: the level with the lowest adjusted shortfall "
            "among those a trader can set (not unknown) with min_orders orders and an interval.",
            allowed=_LEVELS,
        ),
        _f(
            "best_saving_bps",
            "The current mix of levels' adjusted shortfall minus the best level's.",
            "bps",
        ),
        _f(
            "best_saving_ci_low",
            "Lower bound of the saving's cluster-robust interval (t at the contrast's effective "
            "number of clusters) at the Bonferroni level 1 - (1 - ci_level) / k, k the "
            "eligible levels.",
            "bps",
        ),
        _f("best_saving_ci_high", "Upper bound of that interval.", "bps"),
        Column(
            "recommended_level",
            pl.String,
            "The best level, only where its saving's interval lies above 0; else null (note).",
            allowed=_LEVELS,
        ),
        _f(
            "expected_saving_bps",
            "The recommended level's saving against the current mix (null without one).",
            "bps",
            gt=0.0,
        ),
        Column(
            "adjusted_for",
            pl.String,
            "What the curve controls for, in words.",
            nullable=False,
        ),
        Column("test", pl.String, "The recommendation's test, in words.", nullable=False),
        Column("note", pl.String, "Why there is no recommendation, when there is none."),
    ),
    unique=("algo", "difficulty_bucket", "parameter", "level"),
    row_checks=(
        RowCheck(
            "recommended_is_best",
            "a recommended level is the best level, with its saving",
            pl.col("recommended_level").is_null()
            | (
                (pl.col("recommended_level") == pl.col("best_level"))
                & (pl.col("expected_saving_bps") == pl.col("best_saving_bps"))
            ),
        ),
        RowCheck(
            "recommended_only_when_significant",
            "a level is recommended only where its saving's interval lies above 0",
            pl.col("recommended_level").is_null() | (pl.col("best_saving_ci_low") > 0),
        ),
    ),
)

ALGO_SELECTION = Table(
    "algo.algo_selection",
    "Per order of the trailing window: the cost model's expected cost with the algo it got, "
    "and the algo (with its parameters) the model expects to be cheapest for an order with "
    "these arrival features among the candidates, the algos the model's training window holds "
    "enough comparable orders of (docs/ALGOS.md, 'Algo selection').",
    (
        Column("trade_date", pl.Date, "Trade date.", nullable=False),
        Column("order_id", pl.String, "Parent order id.", nullable=False),
        Column("symbol", pl.String, "Instrument.", nullable=False),
        Column("side", pl.String, "Order side.", allowed=SIDES),
        Column(
            "size_bucket",
            pl.String,
            "Order size against ADV (the settings' size_edges_pct_adv).",
            nullable=False,
            allowed=(*SIZE_BUCKETS, UNKNOWN),
        ),
        Column(
            "urgency",
            pl.String,
            "The order's urgency (unknown when not landed): the trader's, which the "
            "recommendation keeps.",
            nullable=False,
            allowed=_URGENCY,
        ),
        _f("arrival_notional", "order_qty x arrival mid.", "currency", gt=0.0),
        Column("algo", pl.String, "The algo the order got.", nullable=False),
        _f("target_participation", "The order's target participation.", "ratio", gt=0.0),
        _f(
            "expected_cost_bps",
            "The model's expected cost of the order with its algo and parameters (null: the "
            "model cannot price it, or does not know its algo; note).",
            "bps",
        ),
        Column(
            "recommended_algo",
            pl.String,
            "The cheapest candidate, where it is expected to save at least min_saving_bps; "
            "else the order's own algo; null where no comparison is possible (note).",
        ),
        Column(
            "recommended_urgency",
            pl.String,
            "The urgency the recommendation is priced at: the order's own.",
            allowed=_URGENCY,
        ),
        _f(
            "recommended_target_participation",
            "The recommended algo's target participation: its median in the training window "
            "for orders of this size and urgency (null: no target, the algo's usual "
            "instruction); the order's own where it keeps its algo.",
            "ratio",
            gt=0.0,
        ),
        _f(
            "recommended_expected_cost_bps",
            "The model's expected cost of the order with the recommended algo and parameters.",
            "bps",
        ),
        _f(
            "expected_saving_bps",
            "expected_cost_bps - recommended_expected_cost_bps (0 where the order keeps its algo).",
            "bps",
            ge=0.0,
        ),
        Column(
            "candidate_count",
            pl.UInt32,
            "Candidates: algos the model knows with at least min_support_orders orders of this "
            "size bucket and urgency in its training window.",
            "count",
        ),
        Column("candidates", pl.String, "The candidates, comma-separated."),
        Column(
            "candidate_expected_costs",
            pl.String,
            "Each candidate's expected cost for the order, e.g. 'DARK 3.1 bps, VWAP 4.2 bps'.",
        ),
        _f(
            "difficulty_bps",
            "The order's difficulty: its expected cost at the desk's algo mix (the window's "
            "arrival-notional shares of the algos the model knows).",
            "bps",
        ),
        _f(
            "base_difficulty_bps",
            "Its base difficulty: the same at the desk's usual urgency and as a market order, "
            "which no instruction moves (the parameter curves' buckets).",
            "bps",
        ),
        Column(
            "model_version",
            pl.String,
            "The cost model in service (model.model_versions).",
            pattern=VERSION_PATTERN,
        ),
        Column("note", pl.String, "Why figures are missing or the order keeps its algo."),
    ),
    unique=("trade_date", "order_id"),
    row_checks=(
        RowCheck(
            "urgency_kept",
            "the recommendation keeps the order's urgency",
            pl.col("recommended_urgency").is_null()
            | (pl.col("recommended_urgency") == pl.col("urgency")),
        ),
        RowCheck(
            "saving_is_the_difference",
            "expected_saving_bps = expected_cost_bps - recommended_expected_cost_bps",
            (
                pl.col("expected_saving_bps")
                - (pl.col("expected_cost_bps") - pl.col("recommended_expected_cost_bps"))
            ).abs()
            < 1e-9,
        ),
    ),
)

ALGO_RECOMMENDATIONS = Table(
    "algo.algo_recommendations",
    "Per difficulty bucket (and 'all', the desk) of the trailing window: the current algo mix "
    "and the mix if every order took its recommended algo (algo.algo_selection), one row per "
    "algo and one bucket row (algo null) with the totals, the mixes as text, the cost model's "
    "expected saving in bps and in currency per month, and the realized evidence: the "
    "scorecard-style comparison of the two mixes on the window's orders, with its interval "
    "and test (docs/ALGOS.md, 'Recommended mix').",
    (
        *_window(),
        Column(
            "difficulty_bucket",
            pl.String,
            "Difficulty bucket, or 'all' for the desk.",
            nullable=False,
            allowed=(*_DIFFICULTY, ALL),
        ),
        Column("algo", pl.String, "The algo of the row; null on the bucket's totals row."),
        Column(
            "orders",
            pl.UInt32,
            "Orders with an arrival notional that used the algo (bucket row: all of them).",
            "count",
            nullable=False,
        ),
        _f("notional", "Their arrival notional.", "currency", nullable=False, ge=0.0),
        _f(
            "current_share",
            "The algo's share of the bucket's arrival notional (algo rows).",
            "ratio",
            **_SHARE,
        ),
        Column(
            "recommended_orders",
            pl.UInt32,
            "Orders recommended the algo, or keeping it (algo rows); orders with a "
            "recommendation (bucket row).",
            "count",
        ),
        _f(
            "recommended_share",
            "The algo's share if every order took its recommended algo (orders without a "
            "recommendation keep theirs).",
            "ratio",
            **_SHARE,
        ),
        Column(
            "switched_orders",
            pl.UInt32,
            "Orders of the algo recommended another one (bucket row: all such orders).",
            "count",
            nullable=False,
        ),
        Column(
            "current_mix",
            pl.String,
            "The current shares as text, largest first (bucket row).",
        ),
        Column("recommended_mix", pl.String, "The recommended shares as text (bucket row)."),
        _f(
            "expected_saving_bps",
            "The cost model's expected saving, arrival-notional-weighted over the row's orders "
            "(no recommendation: 0).",
            "bps",
        ),
        _f(
            "expected_saving_per_month",
            "expected saving x notional / 1e4 per trade date x trading_days_per_month, in the "
            "instruments' currency; the algo rows sum to the bucket row.",
            "currency/month",
        ),
        Column(
            "evidence_orders",
            pl.UInt32,
            "Orders with a realized shortfall that the evidence reads (bucket row).",
            "count",
        ),
        _f(
            "evidence_coverage",
            "Share of their notional in the size strata the evidence covers (bucket row).",
            "ratio",
            **_SHARE,
        ),
        _f(
            "evidence_saving_bps",
            "Realized evidence: mix-adjusted shortfall of the current mix minus the recommended "
            "mix, per size stratum, notional-weighted (bucket row).",
            "bps",
        ),
        _f("evidence_ci_low", "Lower bound of its cluster-robust interval (ci_level).", "bps"),
        _f("evidence_ci_high", "Upper bound of that interval.", "bps"),
        _f(
            "evidence_p_value",
            "Two-sided p-value of a zero realized saving.",
            "ratio",
            ge=0.0,
            le=1.0,
        ),
        Column("test", pl.String, "The evidence's test, in words (bucket row)."),
        Column(
            "model_version",
            pl.String,
            "The cost model behind the recommendations.",
            pattern=VERSION_PATTERN,
        ),
        Column("note", pl.String, "Why figures are missing, or what the evidence leaves out."),
    ),
    unique=("difficulty_bucket", "algo"),
    row_checks=(
        RowCheck(
            "shares_on_algo_rows",
            "current_share is set exactly on the algo rows",
            pl.col("algo").is_null() == pl.col("current_share").is_null(),
        ),
    ),
)

TABLES: tuple[Table, ...] = (ALGO_PARAMETERS, ALGO_SELECTION, ALGO_RECOMMENDATIONS)

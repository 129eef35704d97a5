"""The algo tables (docs/ALGOS.md): the per-date figures here; the scorecards in
`algo_scorecard`, the parameter curves, the per-order selection and the recommendations in
`algo_choice`. `TABLES` lists them all, in the order docs/TABLES.md shows them."""

from __future__ import annotations

import polars as pl

from eqs_pipeline.algos.daily import BREAKDOWNS
from eqs_pipeline.algos.settings import DIFFICULTY_BUCKETS
from eqs_pipeline.core.buckets import UNKNOWN
from eqs_pipeline.tables import algo_choice, algo_scorecard
from eqs_pipeline.tables.spec import Column, RowCheck, Table, Unit

ALGO = Column("algo", pl.String, "Execution algorithm.", nullable=False)


def _f(name: str, description: str, unit: Unit | None, **rules) -> Column:
    return Column(name, pl.Float64, description, unit, **rules)


def _bps(name: str, description: str) -> Column:
    return _f(name, description, "bps")


_GROUP_OF_BREAKDOWN = RowCheck(
    "group_of_its_breakdown",
    "broker, urgency and difficulty_bucket are set exactly in their own breakdown's rows",
    (pl.col("broker").is_not_null() == (pl.col("breakdown") == "broker"))
    & (pl.col("urgency").is_not_null() == (pl.col("breakdown") == "urgency"))
    & (pl.col("difficulty_bucket").is_not_null() == (pl.col("breakdown") == "difficulty")),
)

ALGO_DAILY = Table(
    "algo.algo_daily",
    "Per trade date and algo, and broken down by broker, urgency and difficulty bucket: the "
    "orders' raw figures, each weighted as its description says (docs/ALGOS.md). A window "
    "refresh replaces its trade dates' rows.",
    (
        Column("trade_date", pl.Date, "Trade date.", nullable=False),
        ALGO,
        Column(
            "breakdown",
            pl.String,
            "all (the algo's day), broker, urgency or difficulty: which column holds the group.",
            nullable=False,
            allowed=tuple(BREAKDOWNS),
        ),
        Column("broker", pl.String, "Broker (breakdown broker)."),
        Column(
            "urgency",
            pl.String,
            "Urgency, unknown when not landed (breakdown urgency).",
            allowed=("LOW", "MEDIUM", "HIGH", UNKNOWN),
        ),
        Column(
            "difficulty_bucket",
            pl.String,
            "Difficulty bucket of the orders' expected cost (breakdown difficulty).",
            allowed=(*DIFFICULTY_BUCKETS, UNKNOWN),
        ),
        Column("orders", pl.UInt32, "Parent orders.", "count", nullable=False, ge=1),
        _f(
            "arrival_notional",
            "Sum of order_qty x arrival mid (orders without an arrival quote count 0).",
            "currency",
            ge=0.0,
        ),
        _f("notional", "Executed notional (fills' qty x price).", "currency", nullable=False, ge=0),
        _f("fill_rate", "Filled shares / ordered shares.", "ratio", nullable=False, ge=0, le=1.0),
        _bps(
            "implementation_shortfall_bps", "Implementation shortfall, arrival-notional-weighted."
        ),
        _bps("cost_vs_expected_bps", "IS - expected cost, arrival-notional-weighted."),
        _bps("arrival_slippage_bps", "Arrival slippage, executed-notional-weighted."),
        _bps("interval_vwap_slippage_bps", "Interval VWAP slippage, executed-notional-weighted."),
        _bps("interval_twap_slippage_bps", "Interval TWAP slippage, executed-notional-weighted."),
        _bps(
            "reversion_bps",
            "Reversion after the order's end at the quality settings' horizon, "
            "executed-notional-weighted.",
        ),
        _f(
            "spread_capture",
            "Spread capture of the children's fills, share-weighted (1 = bought at the bid).",
            "ratio",
        ),
        _f("pct_passive", "Share of filled shares that added liquidity.", "ratio", ge=0, le=1),
        _f("participation_rate", "Participation in market volume, share-weighted.", "ratio", ge=0),
        _f("cost_z", "Mean cost_z of the orders.", None),
        _f("cost_percentile", "Mean cost_percentile of the orders.", "ratio", ge=0, le=1),
        _f("duration_s", "Mean seconds from arrival to the order's end.", "s", ge=0),
        _f("venue_count", "Mean number of venues that filled an order.", "count", ge=0),
    ),
    unique=("trade_date", "algo", "breakdown", "broker", "urgency", "difficulty_bucket"),
    row_checks=(_GROUP_OF_BREAKDOWN,),
)

TABLES: tuple[Table, ...] = (ALGO_DAILY, *algo_scorecard.TABLES, *algo_choice.TABLES)

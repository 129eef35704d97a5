"""The quality tables: fill quality, order quality and the ExecutionQualityEvents.

Every column docs/METRICS.md says is never null is declared non-nullable, and the row checks
are the rules it defines: the quote-based fill metrics are null exactly when `null_reason` says
why, an order is graded exactly when its cost can be computed, `side_sign` follows `side`, and
`status` follows filled_qty vs order_qty.
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.core.contract import TS
from eqs_pipeline.core.settings import HORIZONS_S
from eqs_pipeline.quality.fills import PREVAILING_QUOTE_COLUMNS
from eqs_pipeline.tables.spec import Column, RowCheck, Table
from eqs_pipeline.tables.staging import carried

_BPS_TOLERANCE = 1e-6
# docs/METRICS.md, `status`: an order is filled when Q >= S within this relative tolerance.
_FILLED_TOLERANCE = 1e-9

# The fill metrics that need the prevailing quote (docs/METRICS.md, "null when: no prior
# quote"); spread_capture is also null for a locked quote and the markouts and mids at t + h need
# only a quote by t + h, so neither is listed.
FILL_QUOTE_METRICS: tuple[str, ...] = (
    *PREVAILING_QUOTE_COLUMNS,
    *[f"{k}_{h}s_bps" for h in HORIZONS_S for k in ("realized_spread", "price_impact")],
)

SIDE_SIGN = Column("side_sign", pl.Int8, "D: +1 buy, -1 sell.", nullable=False, allowed=(1, -1))
# Events: the envelope's schema version is semver, the payload a JSON object.
SEMVER = r"^\d+\.\d+\.\d+$"
JSON_OBJECT = r"^\{"


def side_sign_check() -> RowCheck:
    return RowCheck(
        "side_sign_matches_side",
        "side_sign is +1 for BUY and -1 for SELL and SELL_SHORT (docs/METRICS.md, D)",
        pl.when(pl.col("side") == "BUY")
        .then(pl.col("side_sign") == 1)
        .when(pl.col("side").is_in(["SELL", "SELL_SHORT"]))
        .then(pl.col("side_sign") == -1),
    )


# --- quality.fill_quality --------------------------------------------------------------------


def _horizon_columns() -> list[Column]:
    cols = [
        Column(
            f"mid_{h}s",
            pl.Float64,
            f"Mid prevailing at exec_ts + {h} s (last quote at or before).",
            "price",
        )
        for h in HORIZONS_S
    ]
    for h in HORIZONS_S:
        cols += [
            Column(
                f"realized_spread_{h}s_bps",
                pl.Float64,
                f"2 D (P - M_t+{h}s) / M, bps: what the liquidity provider kept.",
                "bps",
            ),
            Column(
                f"price_impact_{h}s_bps",
                pl.Float64,
                f"2 D (M_t+{h}s - M) / M, bps; effective = realized + impact.",
                "bps",
            ),
            Column(
                f"markout_{h}s_bps",
                pl.Float64,
                f"D (M_t+{h}s - P) / P, bps; positive is favourable to us.",
                "bps",
            ),
        ]
    return cols


def _decomposition_check(h: int) -> RowCheck:
    lab = f"{h}s"
    return RowCheck(
        f"effective_eq_realized_plus_impact_{lab}",
        f"effective_spread_bps = realized_spread_{lab}_bps + price_impact_{lab}_bps",
        (
            pl.col("effective_spread_bps")
            - pl.col(f"realized_spread_{lab}_bps")
            - pl.col(f"price_impact_{lab}_bps")
        ).abs()
        <= _BPS_TOLERANCE,
    )


_NO_QUOTE = pl.col("null_reason").is_not_null()
_PI = pl.col("price_improvement_bps")

FILL_QUALITY = Table(
    "quality.fill_quality",
    "One row per fill (exec_id): the NBBO prevailing strictly before the fill and every fill-level "
    "metric of docs/METRICS.md.",
    (
        Column("exec_id", pl.String, "Fill id.", nullable=False),
        Column("trade_date", pl.Date, "Trade date.", nullable=False),
        Column("order_id", pl.String, "Parent order id.", nullable=False),
        carried("executions", "child_id", "Child order id, if landed."),
        carried("executions", "symbol", "Symbol."),
        carried("executions", "venue", "Venue MIC of the fill."),
        carried("orders", "side", "Parent order side."),
        SIDE_SIGN,
        carried("orders", "algo", "Parent order algorithm."),
        carried("orders", "broker", "Parent order broker."),
        carried("orders", "trader", "Parent order trader."),
        carried("orders", "urgency", "Parent order urgency."),
        carried("executions", "liquidity_flag", "ADD / REMOVE / MID / AUCTION."),
        carried("executions", "exec_ts", "Execution time (UTC)."),
        Column("qty", pl.Float64, "Shares filled.", "shares", nullable=False, gt=0),
        Column("price", pl.Float64, "Fill price P.", "price", nullable=False, gt=0),
        Column("notional", pl.Float64, "qty x price.", "currency", nullable=False, gt=0),
        carried("executions", "fee", "Fee in currency (negative = rebate).", "currency"),
        Column("fee_bps", pl.Float64, "fee / notional, bps (positive = cost).", "bps"),
        Column("quote_ts", TS, "Time of the prevailing quote (last strictly before exec_ts)."),
        Column("nbb", pl.Float64, "Prevailing national best bid B.", "price"),
        Column("nbo", pl.Float64, "Prevailing national best offer A.", "price"),
        Column("nbb_size", pl.Float64, "Size at the prevailing bid.", "shares"),
        Column("nbo_size", pl.Float64, "Size at the prevailing offer.", "shares"),
        Column("mid", pl.Float64, "Prevailing mid M = (A + B) / 2.", "price", gt=0),
        Column("quoted_spread_bps", pl.Float64, "(A - B) / M, bps.", "bps", ge=0),
        Column(
            "effective_spread_bps",
            pl.Float64,
            "2 D (P - M) / M, bps (the SEC Rule 605 formula, M the mid of the quote before the "
            "fill, not at order receipt); positive is a cost.",
            "bps",
        ),
        Column(
            "price_improvement_bps",
            pl.Float64,
            "(A - P) / M for buys, (P - B) / M for sells, bps; positive is better than the quote.",
            "bps",
        ),
        Column(
            "quote_position",
            pl.String,
            "improved (> 0), at_quote (= 0) or outside (< 0) by price improvement.",
            allowed=("improved", "at_quote", "outside"),
        ),
        Column(
            "spread_capture",
            pl.Float64,
            "D (M - P) / ((A - B) / 2): +1 at the near touch, -1 at the far touch; null when "
            "locked.",
            "ratio",
        ),
        *_horizon_columns(),
        Column(
            "null_reason",
            pl.String,
            "Why quote-based metrics are null (no_prior_quote), else null.",
            allowed=("no_prior_quote",),
        ),
    ),
    unique=("exec_id",),
    row_checks=(
        RowCheck(
            "nbb_not_above_nbo",
            "the prevailing quote is not crossed",
            pl.col("nbb") <= pl.col("nbo"),
        ),
        RowCheck(
            "null_reason_iff_no_quote",
            "the quote-based metrics (" + ", ".join(FILL_QUOTE_METRICS) + ") are all null "
            "exactly when null_reason says why",
            pl.all_horizontal([pl.col(c).is_null() == _NO_QUOTE for c in FILL_QUOTE_METRICS]),
        ),
        RowCheck(
            "spread_capture_null_iff_no_quote_or_locked",
            "spread_capture is null exactly when there is no prior quote or it is locked",
            pl.col("spread_capture").is_null() == (_NO_QUOTE | (pl.col("nbb") == pl.col("nbo"))),
        ),
        RowCheck(
            "quote_position_matches_price_improvement",
            "quote_position is improved / at_quote / outside as price_improvement_bps is > / = / "
            "< 0",
            pl.col("quote_position")
            == pl.when(_PI > 0)
            .then(pl.lit("improved"))
            .when(_PI == 0)
            .then(pl.lit("at_quote"))
            .when(_PI < 0)
            .then(pl.lit("outside")),
        ),
        side_sign_check(),
        *[_decomposition_check(h) for h in HORIZONS_S],
    ),
    lake=True,
)


# --- quality.order_quality -------------------------------------------------------------------


def _status_check() -> RowCheck:
    filled, size = pl.col("filled_qty"), pl.col("order_qty")
    return RowCheck(
        "status_matches_filled_qty",
        "status is unfilled if filled_qty = 0, filled if filled_qty >= order_qty (within "
        f"{_FILLED_TOLERANCE:g}), else partial (docs/METRICS.md)",
        pl.col("status")
        == pl.when(filled <= 0)
        .then(pl.lit("unfilled"))
        .when(filled >= size * (1 - _FILLED_TOLERANCE))
        .then(pl.lit("filled"))
        .otherwise(pl.lit("partial")),
    )


def _graded_check() -> RowCheck:
    ungraded = pl.col("quality_score").is_null()
    return RowCheck(
        "graded_iff_cost_known",
        "quality_score and quality_grade are null together, exactly when the cost part cannot "
        "be computed (cost_vs_expected_bps is null) and null_reason then lists not_graded "
        "(docs/METRICS.md, Quality score)",
        (pl.col("quality_grade").is_null() == ungraded)
        & (pl.col("cost_vs_expected_bps").is_null() == ungraded)
        & (
            pl.col("null_reason").str.split(";").list.contains("not_graded").fill_null(False)
            == ungraded
        ),
    )


def _bps(name: str, description: str, **rules) -> Column:
    return Column(name, pl.Float64, description, "bps", **rules)


ORDER_QUALITY = Table(
    "quality.order_quality",
    "One row per parent order (order_id), unfilled orders included: every order-level metric of "
    "docs/METRICS.md, the market before arrival, the expected cost (docs/MODEL.md) and the "
    "quality score and grade.",
    (
        Column("order_id", pl.String, "Parent order id.", nullable=False),
        Column("trade_date", pl.Date, "Trade date.", nullable=False),
        carried("orders", "symbol", "Symbol."),
        carried("orders", "side", "BUY, SELL or SELL_SHORT."),
        SIDE_SIGN,
        carried("orders", "order_type", "MARKET or LIMIT."),
        carried("orders", "limit_price", "Limit price of LIMIT orders.", "price"),
        carried("orders", "algo", "Algorithm."),
        carried("orders", "urgency", "Urgency."),
        carried("orders", "target_participation", "Target participation.", "ratio"),
        carried(
            "orders",
            "allocation",
            "How the algo was chosen: wheel (at random) or discretionary; null when not landed.",
        ),
        carried(
            "orders",
            "allocation_prob",
            "Probability with which the wheel drew the algo (landed, in (0, 1]).",
            "ratio",
        ),
        carried("orders", "broker", "Broker."),
        carried("orders", "trader", "Trader."),
        carried("orders", "account", "Account."),
        carried("orders", "decision_ts", "Decision time (UTC)."),
        carried("orders", "arrival_ts", "Arrival time (UTC)."),
        carried("orders", "end_ts", "Landed end time (UTC), if any."),
        Column(
            "order_end_ts", TS, "End of the order's interval: end_ts, else the last fill (UTC)."
        ),
        Column("first_fill_ts", TS, "First fill time (UTC)."),
        Column("last_fill_ts", TS, "Last fill time (UTC)."),
        Column(
            "status",
            pl.String,
            "filled, partial or unfilled.",
            nullable=False,
            allowed=("filled", "partial", "unfilled"),
        ),
        Column("order_qty", pl.Float64, "Order quantity S.", "shares", nullable=False, gt=0),
        Column("filled_qty", pl.Float64, "Sum of fill quantities.", "shares", nullable=False, ge=0),
        Column("fill_count", pl.Int64, "Number of fills.", "count", nullable=False, ge=0),
        Column(
            "venue_count",
            pl.Int64,
            "Number of distinct venues that filled.",
            "count",
            nullable=False,
            ge=0,
        ),
        # Overfills are quarantined at ingestion, so no order can be more than filled.
        Column(
            "fill_rate",
            pl.Float64,
            "filled_qty / order_qty.",
            "ratio",
            nullable=False,
            ge=0.0,
            le=1.0 + 1e-9,
        ),
        Column("avg_px", pl.Float64, "Share-weighted average fill price.", "price"),
        Column("notional", pl.Float64, "Sum of qty x price over fills.", "currency"),
        Column(
            "fees",
            pl.Float64,
            "Sum of fees in currency (negative = net rebate).",
            "currency",
            nullable=False,
        ),
        Column(
            "arrival_bid",
            pl.Float64,
            "Best bid at arrival (last quote at or before arrival_ts).",
            "price",
        ),
        Column("arrival_ask", pl.Float64, "Best offer at arrival.", "price"),
        Column("arrival_mid", pl.Float64, "Arrival mid M0.", "price"),
        _bps("arrival_spread_bps", "Quoted spread at arrival, bps."),
        Column("arrival_bid_size", pl.Float64, "Best bid size at arrival.", "shares"),
        Column("arrival_ask_size", pl.Float64, "Best offer size at arrival.", "shares"),
        Column(
            "arrival_imbalance",
            pl.Float64,
            "(bid size - ask size) / (bid size + ask size) at arrival.",
            "ratio",
            ge=-1.0,
            le=1.0,
        ),
        _bps(
            "pre_arrival_volatility_bps",
            "Realized volatility of the mid over the 30 min before arrival (5-min returns; both "
            "in settings), scaled to a session, bps; null with fewer than two returns.",
            ge=0.0,
        ),
        Column(
            "pre_arrival_volume_pct_adv",
            pl.Float64,
            "Tape volume of the 15 min (in settings) before arrival / adv_shares.",
            "ratio",
            ge=0.0,
        ),
        Column("end_mid", pl.Float64, "Mid at order_end_ts, M_end.", "price"),
        Column(
            "interval_vwap",
            pl.Float64,
            "VWAP of the tape over [arrival_ts, order_end_ts], both ends included.",
            "price",
        ),
        Column(
            "interval_twap",
            pl.Float64,
            "Time-weighted mid over [arrival_ts, order_end_ts].",
            "price",
        ),
        Column(
            "market_volume", pl.Float64, "Tape volume over [arrival_ts, order_end_ts].", "shares"
        ),
        _bps("arrival_slippage_bps", "D (avg_px - M0) / M0, bps; positive is a cost."),
        _bps("interval_vwap_slippage_bps", "D (avg_px - VWAP) / VWAP, bps."),
        _bps("interval_twap_slippage_bps", "D (avg_px - TWAP) / TWAP, bps."),
        Column("participation_rate", pl.Float64, "filled_qty / market_volume.", "ratio", ge=0),
        _bps(
            "implementation_shortfall_bps",
            "Perold implementation shortfall incl. fees and opportunity cost, bps of S x M0.",
        ),
        _bps(
            "opportunity_cost_bps",
            "D (S - filled)(M_end - M0) / (S M0), bps: the unfilled part of the shortfall.",
        ),
        _bps("fee_bps", "fees / notional, bps."),
        _bps("effective_spread_bps", "Share-weighted effective spread of the fills, bps."),
        _bps("price_improvement_bps", "Share-weighted price improvement of the fills, bps."),
        Column(
            "spread_capture",
            pl.Float64,
            "Share-weighted spread capture of the fills that have one: +1 at the near touch, -1 "
            "at the far touch; null when none has (no prior quote, or locked quotes).",
            "ratio",
        ),
        Column(
            "pct_passive", pl.Float64, "Share of filled quantity with liquidity_flag ADD.", "ratio"
        ),
        Column("time_to_first_fill_s", pl.Float64, "Seconds from arrival to the first fill.", "s"),
        Column("duration_s", pl.Float64, "Seconds from arrival to order_end_ts.", "s"),
        _bps(
            "reversion_300s_bps",
            "D (M_end - M_end+300s) / M_end, bps: positive when the price came back after the "
            "order. Named after reversion_horizon_s (default 300 s): reversion_60s_bps at 60 s.",
            name_pattern=r"reversion_\d+s_bps",
        ),
        Column("adv_shares", pl.Float64, "Instrument ADV.", "shares"),
        Column("size_pct_adv", pl.Float64, "order_qty / adv_shares.", "ratio"),
        Column(
            "daily_volatility",
            pl.Float64,
            "Instrument daily volatility (default from settings when not landed).",
            "ratio",
            nullable=False,
            ge=0,
        ),
        _bps(
            "expected_cost_bps",
            "Expected implementation shortfall of an order like this one: the promoted cost "
            "model trained on earlier trade dates, else the Almgren et al. (2005) formula "
            "(expected_cost_source says which), bps.",
        ),
        _bps(
            "expected_cost_sd_bps",
            "Standard deviation of that expectation's cost distribution, bps.",
            gt=0.0,
        ),
        Column(
            "expected_cost_source",
            pl.String,
            "The cost model version that priced the order (cm-...), or formula:almgren when no "
            "trained model could; null when nothing could.",
            pattern=r"^(cm-[0-9a-f]{16}|formula:[a-z_]+)$",
        ),
        _bps("cost_vs_expected_bps", "implementation_shortfall_bps - expected_cost_bps."),
        Column(
            "cost_z",
            pl.Float64,
            "(implementation_shortfall_bps - expected_cost_bps) / expected_cost_sd_bps.",
        ),
        Column(
            "cost_percentile",
            pl.Float64,
            "Predicted probability that an order like this one costs more than this one did "
            "(1 = cheaper than all, 0 = dearer than all); the score's cost part.",
            "ratio",
            ge=0.0,
            le=1.0,
        ),
        # Null for an order that is not graded: see the `graded_iff_cost_known` check.
        Column(
            "quality_score",
            pl.Float64,
            "0-100 composite of cost vs expected, fill rate and speed; null when the order is not "
            "graded (its cost cannot be computed: cost_vs_expected_bps is null).",
            "points",
            ge=0.0,
            le=100.0,
        ),
        Column(
            "quality_grade",
            pl.String,
            "excellent, good, average or poor by quality_score thresholds; null when "
            "quality_score is (not graded).",
            allowed=("excellent", "good", "average", "poor"),
        ),
        Column(
            "null_reason",
            pl.String,
            "';'-joined reasons some metrics are null (no_arrival_quote, no_fills, no_end_time, "
            "no_tape_in_interval, unknown_instrument), then not_graded when quality_score and "
            "quality_grade are null.",
        ),
    ),
    unique=("order_id",),
    row_checks=(
        RowCheck(
            "avg_px_iff_filled",
            "an order has an average price exactly when something filled",
            pl.col("avg_px").is_not_null() == (pl.col("filled_qty") > 0),
        ),
        RowCheck(
            "end_not_before_arrival",
            "the order's interval is not reversed",
            pl.col("order_end_ts") >= pl.col("arrival_ts"),
        ),
        _graded_check(),
        _status_check(),
        side_sign_check(),
    ),
)


# --- quality.execution_quality_events --------------------------------------------------------

EXECUTION_QUALITY_EVENTS = Table(
    "quality.execution_quality_events",
    "ExecutionQualityEvent records, one per order, with a versioned JSON payload; also exported as "
    "JSON Lines per trade date.",
    (
        Column(
            "event_id",
            pl.String,
            "Stable id: eqe:<trade_date>:<order_id>:<schema_version> (ISO date; order ids are "
            "unique per trade date only).",
            nullable=False,
        ),
        Column(
            "event_type",
            pl.String,
            "ExecutionQualityEvent.",
            nullable=False,
            allowed=("ExecutionQualityEvent",),
        ),
        Column(
            "schema_version",
            pl.String,
            "Payload schema version (semver).",
            nullable=False,
            pattern=SEMVER,
        ),
        Column("trade_date", pl.Date, "Trade date.", nullable=False),
        Column("order_id", pl.String, "Parent order id.", nullable=False),
        Column("symbol", pl.String, "Symbol."),
        Column("event_ts", TS, "Business time of the event: the order's end (else arrival)."),
        Column("emitted_at", TS, "When the event was materialized (UTC)."),
        Column(
            "payload",
            pl.String,
            "JSON object: event_type, schema_version, trade_date, event_ts and the order_quality "
            "columns listed in eqs_pipeline/quality/events.py PAYLOAD_FIELDS, by the same names "
            "(the reversion figure under its configured horizon's name).",
            nullable=False,
            pattern=JSON_OBJECT,
        ),
    ),
    unique=("event_id",),
)

TABLES: tuple[Table, ...] = (FILL_QUALITY, ORDER_QUALITY, EXECUTION_QUALITY_EVENTS)

"""The data catalog: one description for every warehouse table and column.

This is the single source of the column documentation: `docs/TABLES.md` is generated from it
(`python -m eqs_pipeline.tables.catalog > docs/TABLES.md`, and a test keeps the two in sync) and the
assets attach it to their materializations as Dagster column schemas, which the UI's catalog
shows. A test fails when a table gains a column that has no description here.
"""

from __future__ import annotations

from dataclasses import dataclass

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.settings import HORIZONS_S
from eqs_pipeline.venues.settings import KEY_METRICS as _KEY_METRICS
from eqs_pipeline.venues.settings import WITHIN_STYLE_METRICS as _WITHIN_STYLE


@dataclass(frozen=True)
class TableDoc:
    description: str
    columns: dict[str, str]


CONTRACT_COLUMNS: dict[str, str] = {
    "symbol": "Instrument symbol.",
    "currency": "ISO currency of prices.",
    "tick_size": "Minimum price increment.",
    "adv_shares": "Average daily volume in shares.",
    "market": "Market, e.g. US or EU.",
    "sector": "Sector.",
    "daily_volatility": "Daily volatility of returns, as a fraction (0.02 = 2%).",
    "lot_size": "Round lot size in shares.",
    "order_id": "Parent order id.",
    "side": "BUY, SELL or SELL_SHORT (a sell).",
    "order_qty": "Parent order quantity in shares (S).",
    "order_type": "Order type (parent: MARKET/LIMIT; child: LIMIT/MARKET/MIDPEG).",
    "limit_price": "Limit price, for LIMIT orders.",
    "arrival_ts": "When the order reached the desk or broker (UTC).",
    "end_ts": "When the order ended, if known (UTC).",
    "algo": "Execution algorithm, e.g. VWAP, TWAP, POV, IS, DARK.",
    "urgency": "LOW, MEDIUM or HIGH.",
    "target_participation": "Target share of market volume.",
    "broker": "Executing broker.",
    "trader": "Trader.",
    "account": "Account.",
    "decision_ts": "Portfolio manager's decision time (UTC).",
    "child_id": "Child order id (routed to one venue).",
    "venue": "Venue MIC, e.g. XNAS.",
    "sent_ts": "When the child order was sent (UTC).",
    "qty": "Quantity in shares.",
    "tif": "Time in force: IOC or DAY.",
    "exec_id": "Fill (execution) id.",
    "exec_ts": "Execution time (UTC).",
    "price": "Price.",
    "liquidity_flag": "ADD (passive), REMOVE (aggressive), MID (midpoint) or AUCTION.",
    "fee": "Fee in currency; negative is a rebate.",
    "ts": "Event time (UTC).",
    "bid_px": "National best bid.",
    "bid_sz": "Size at the best bid.",
    "ask_px": "National best offer.",
    "ask_sz": "Size at the best offer.",
    "size": "Trade size in shares.",
}

PROVENANCE_COLUMNS: dict[str, str] = {
    "trade_date": "Trade date: the landing folder's date.",
    "source_file": "Landed file the row came from, relative to the landing directory.",
}


def _staging(names: list[str], description: str, dated: bool = True) -> TableDoc:
    columns = {n: CONTRACT_COLUMNS[n] for n in names}
    if dated:
        columns["trade_date"] = PROVENANCE_COLUMNS["trade_date"]
    columns["source_file"] = PROVENANCE_COLUMNS["source_file"]
    return TableDoc(description, columns)


def _horizon_columns() -> dict[str, str]:
    cols: dict[str, str] = {}
    for h in HORIZONS_S:
        cols[f"mid_{h}s"] = f"Mid prevailing at exec_ts + {h} s (last quote at or before)."
    for h in HORIZONS_S:
        cols[f"realized_spread_{h}s_bps"] = (
            f"2 D (P - M_t+{h}s) / M, bps: what the liquidity provider kept."
        )
        cols[f"price_impact_{h}s_bps"] = (
            f"2 D (M_t+{h}s - M) / M, bps; effective = realized + impact."
        )
        cols[f"markout_{h}s_bps"] = f"D (M_t+{h}s - P) / P, bps; positive is favourable to us."
    return cols


FILL_QUALITY = TableDoc(
    "One row per fill (exec_id): the NBBO prevailing strictly before the fill and every fill-level "
    "metric of docs/METRICS.md.",
    {
        "exec_id": "Fill id.",
        "trade_date": "Trade date.",
        "order_id": "Parent order id.",
        "child_id": "Child order id, if landed.",
        "symbol": "Symbol.",
        "venue": "Venue MIC of the fill.",
        "side": "Parent order side.",
        "side_sign": "D: +1 buy, -1 sell.",
        "algo": "Parent order algorithm.",
        "broker": "Parent order broker.",
        "trader": "Parent order trader.",
        "urgency": "Parent order urgency.",
        "liquidity_flag": "ADD / REMOVE / MID / AUCTION.",
        "exec_ts": "Execution time (UTC).",
        "qty": "Shares filled.",
        "price": "Fill price P.",
        "notional": "qty x price.",
        "fee": "Fee in currency (negative = rebate).",
        "fee_bps": "fee / notional, bps (positive = cost).",
        "quote_ts": "Time of the prevailing quote (last strictly before exec_ts).",
        "nbb": "Prevailing national best bid B.",
        "nbo": "Prevailing national best offer A.",
        "nbb_size": "Size at the prevailing bid.",
        "nbo_size": "Size at the prevailing offer.",
        "mid": "Prevailing mid M = (A + B) / 2.",
        "quoted_spread_bps": "(A - B) / M, bps.",
        "effective_spread_bps": "2 D (P - M) / M, bps (the SEC Rule 605 formula, M the mid of the quote before the "
        "fill, not at order receipt); positive is a cost.",
        "price_improvement_bps": "(A - P) / M for buys, (P - B) / M for sells, bps; positive is better than the quote.",
        "quote_position": "improved (> 0), at_quote (= 0) or outside (< 0) by price improvement.",
        "spread_capture": "D (M - P) / ((A - B) / 2): +1 at the near touch, -1 at the far touch; null when locked.",
        **_horizon_columns(),
        "null_reason": "Why quote-based metrics are null (no_prior_quote), else null.",
    },
)

ORDER_QUALITY = TableDoc(
    "One row per parent order (order_id), unfilled orders included: every order-level metric of "
    "docs/METRICS.md, the Almgren expected cost and the quality score and grade.",
    {
        "order_id": "Parent order id.",
        "trade_date": "Trade date.",
        "symbol": "Symbol.",
        "side": "BUY, SELL or SELL_SHORT.",
        "side_sign": "D: +1 buy, -1 sell.",
        "order_type": "MARKET or LIMIT.",
        "limit_price": "Limit price of LIMIT orders.",
        "algo": "Algorithm.",
        "urgency": "Urgency.",
        "target_participation": "Target participation.",
        "broker": "Broker.",
        "trader": "Trader.",
        "account": "Account.",
        "decision_ts": "Decision time (UTC).",
        "arrival_ts": "Arrival time (UTC).",
        "end_ts": "Landed end time (UTC), if any.",
        "order_end_ts": "End of the order's interval: end_ts, else the last fill (UTC).",
        "first_fill_ts": "First fill time (UTC).",
        "last_fill_ts": "Last fill time (UTC).",
        "status": "filled, partial or unfilled.",
        "order_qty": "Order quantity S.",
        "filled_qty": "Sum of fill quantities.",
        "fill_count": "Number of fills.",
        "venue_count": "Number of distinct venues that filled.",
        "fill_rate": "filled_qty / order_qty.",
        "avg_px": "Share-weighted average fill price.",
        "notional": "Sum of qty x price over fills.",
        "fees": "Sum of fees in currency (negative = net rebate).",
        "arrival_bid": "Best bid at arrival (last quote at or before arrival_ts).",
        "arrival_ask": "Best offer at arrival.",
        "arrival_mid": "Arrival mid M0.",
        "arrival_spread_bps": "Quoted spread at arrival, bps.",
        "end_mid": "Mid at order_end_ts, M_end.",
        "interval_vwap": "VWAP of the tape over [arrival_ts, order_end_ts], both ends included.",
        "interval_twap": "Time-weighted mid over [arrival_ts, order_end_ts].",
        "market_volume": "Tape volume over [arrival_ts, order_end_ts].",
        "arrival_slippage_bps": "D (avg_px - M0) / M0, bps; positive is a cost.",
        "interval_vwap_slippage_bps": "D (avg_px - VWAP) / VWAP, bps.",
        "interval_twap_slippage_bps": "D (avg_px - TWAP) / TWAP, bps.",
        "participation_rate": "filled_qty / market_volume.",
        "implementation_shortfall_bps": "Perold implementation shortfall incl. fees and opportunity cost, bps of S x M0.",
        "opportunity_cost_bps": "D (S - filled)(M_end - M0) / (S M0), bps: the unfilled part of the shortfall.",
        "fee_bps": "fees / notional, bps.",
        "effective_spread_bps": "Share-weighted effective spread of the fills, bps.",
        "price_improvement_bps": "Share-weighted price improvement of the fills, bps.",
        "pct_passive": "Share of filled quantity with liquidity_flag ADD.",
        "time_to_first_fill_s": "Seconds from arrival to the first fill.",
        "duration_s": "Seconds from arrival to order_end_ts.",
        "reversion_300s_bps": "D (M_end - M_end+300s) / M_end, bps: positive when the price came back after the order.",
        "adv_shares": "Instrument ADV.",
        "size_pct_adv": "order_qty / adv_shares.",
        "daily_volatility": "Instrument daily volatility (default from settings when not landed).",
        "expected_cost_bps": "Almgren et al. (2005) expected cost for this size, volatility, spread and participation, bps.",
        "cost_vs_expected_bps": "implementation_shortfall_bps - expected_cost_bps.",
        "quality_score": "0-100 composite of cost vs expected, fill rate and speed; null when the order is not graded (its cost cannot be computed: cost_vs_expected_bps is null).",
        "quality_grade": "excellent, good, average or poor by quality_score thresholds; null when quality_score is (not graded).",
        "null_reason": "';'-joined reasons some metrics are null (no_arrival_quote, no_fills, no_end_time, no_tape_in_interval, unknown_instrument), then not_graded when quality_score and quality_grade are null.",
    },
)

EVENTS = TableDoc(
    "ExecutionQualityEvent records, one per order, with a versioned JSON payload; also exported as "
    "JSON Lines per trade date.",
    {
        "event_id": "Stable id: eqe:<trade_date>:<order_id>:<schema_version> (ISO date; order ids "
        "are unique per trade date only).",
        "event_type": "ExecutionQualityEvent.",
        "schema_version": "Payload schema version (semver).",
        "trade_date": "Trade date.",
        "order_id": "Parent order id.",
        "symbol": "Symbol.",
        "event_ts": "Business time of the event: the order's end (else arrival).",
        "emitted_at": "When the event was materialized (UTC).",
        "payload": "JSON object: event_type, schema_version, trade_date, event_ts and the "
        "order_quality columns listed in eqs_pipeline/quality/events.py PAYLOAD_FIELDS, by "
        "the same names (the reversion figure under its configured horizon's name).",
    },
)

QUARANTINE = TableDoc(
    "Every landed row that broke a row rule, with every reason; nothing is lost.",
    {
        "source_table": "Contract table the row was landed in.",
        "trade_date": "Trade date of the landing folder (null for instruments).",
        "source_file": "Landed file, relative to the landing directory.",
        "source_row": "1-based data row within the file.",
        "row_json": "The original row as JSON, all landed columns included.",
        "reasons": "Every rule the row broke (docs/INGESTION.md).",
    },
)

INGEST_LOG = TableDoc(
    "Per landed file and trade date: rows landed, staged, quarantined and collapsed as identical "
    "duplicates (the conservation check reads it).",
    {
        "source_table": "Contract table.",
        "trade_date": "Trade date.",
        "source_file": "Landed file.",
        "landed_rows": "Rows in the file.",
        "staged_rows": "Rows staged.",
        "quarantined_rows": "Rows quarantined.",
        "collapsed_duplicates": "Identical duplicate rows collapsed into one staged row.",
        "run_id": "Dagster run that ingested the file.",
    },
)

TABLES: dict[str, TableDoc] = {
    "staging.instruments": _staging(
        CONTRACT["instruments"].names,
        "Validated instrument reference data (not dated).",
        dated=False,
    ),
    "staging.orders": _staging(CONTRACT["orders"].names, "Validated parent orders."),
    "staging.child_orders": _staging(
        CONTRACT["child_orders"].names, "Validated child orders routed to venues."
    ),
    "staging.executions": _staging(
        CONTRACT["executions"].names, "Validated fills (TradeExecutedEvents)."
    ),
    "staging.quotes": _staging(CONTRACT["quotes"].names, "Validated NBBO quotes."),
    "staging.market_trades": _staging(
        CONTRACT["market_trades"].names, "Validated consolidated tape prints."
    ),
    "staging.quarantine": QUARANTINE,
    "staging.ingest_log": INGEST_LOG,
    "quality.fill_quality": FILL_QUALITY,
    "quality.order_quality": ORDER_QUALITY,
    "quality.execution_quality_events": EVENTS,
}


# --- venue layer (docs/VENUES.md) ---------------------------------------------------------------


def _venue_figure_columns() -> dict[str, str]:
    cols = {
        "fills": "Number of fills.",
        "shares": "Executed shares.",
        "notional": "Executed notional (qty x price), in the instruments' currency.",
        "flow_share": "The venue's share of our executed shares (same trade date and bucket).",
        "child_orders": "Child orders routed to the venue.",
        "routed_qty": "Quantity routed (sum of child qty).",
        "executed_qty": "Quantity the child orders executed (fills joined by child_id).",
        "fill_rate": "Child-order fill rate: executed_qty / routed_qty.",
        "latency_median_ms": "Median over fills of exec_ts - sent_ts of the fill's child, ms.",
        "latency_p95_ms": "95th percentile of exec_ts - sent_ts over fills, ms.",
        "eq_ratio": "E/Q: sum(effective spread x shares) / sum(quoted spread x shares).",
        "pct_improved": "Share of shares (fills with a quote) filled inside the quote.",
        "pct_at_quote": "Share of shares filled at the quote.",
        "pct_outside": "Share of shares filled outside the quote.",
        "fees_paid": "Fees paid, currency (sum of positive fees).",
        "rebates_received": "Rebates received, currency (minus the sum of negative fees).",
        "quoted_spread_bps": "Share-weighted quoted spread, bps.",
        "effective_spread_bps": "Share-weighted effective spread, bps (positive = cost).",
        "price_improvement_bps": "Share-weighted price improvement, bps (positive = better).",
    }
    for h in HORIZONS_S:
        cols[f"realized_spread_{h}s_bps"] = f"Share-weighted realized spread at {h} s, bps."
        cols[f"price_impact_{h}s_bps"] = f"Share-weighted price impact at {h} s, bps."
        cols[f"markout_{h}s_bps"] = (
            f"Share-weighted markout at {h} s, bps (negative = adverse selection)."
        )
    cols["fee_bps"] = "Share-weighted net fee, bps of notional (negative = net rebate)."
    cols["all_in_cost_bps"] = (
        "Share-weighted all-in cost, bps: fee_bps - markout_60s_bps per fill (docs/METRICS.md)."
    )
    return cols


_BUCKET_COLUMNS = {
    "liquidity_flag": "ADD / REMOVE / MID (AUCTION) of the fills; a child's flag is implied by "
    "its style (MIDPEG -> MID, IOC or MARKET -> REMOVE, else ADD); ALL when not broken down.",
    "size_bucket": "Parent order size: small (< 0.2% ADV), medium (< 1%), large, unknown; ALL "
    "when not broken down.",
    "liquidity_bucket": "Symbol dollar ADV: low (< $20M), mid (< $200M), high, unknown; ALL "
    "when not broken down.",
}

VENUE_DAILY = TableDoc(
    "One row per venue and trade date: fill rate and latency, flow, spreads, E/Q, quote "
    "position, price improvement, realized spread / impact / markouts, fees and the all-in cost "
    "(docs/VENUES.md).",
    {"trade_date": "Trade date.", "venue": "Venue MIC.", **_venue_figure_columns()},
)

VENUE_DAILY_BUCKETS = TableDoc(
    "The venue_daily figures per venue and trade date broken down by liquidity flag, order-size "
    "bucket, symbol-liquidity bucket, and by their full cell, so venues compare like for like.",
    {
        "breakdown": "liquidity_flag, size_bucket or liquidity_bucket (the other two read ALL), "
        "or cell (all three set).",
        "trade_date": "Trade date.",
        "venue": "Venue MIC.",
        **_BUCKET_COLUMNS,
        **_venue_figure_columns(),
    },
)


def _scorecard_columns() -> dict[str, str]:
    meaning = {
        "all_in_cost_bps": "all-in cost, bps (lower is better)",
        "effective_spread_bps": "effective spread, bps",
        "price_improvement_bps": "price improvement, bps",
        "markout_5s_bps": "markout at 5 s, bps",
        "markout_60s_bps": "markout at 60 s, bps",
        "markout_300s_bps": "markout at 300 s, bps",
        "fee_bps": "net fee, bps",
        "fill_rate": "child fill rate (clipped to [0, 1])",
    }
    cols: dict[str, str] = {}
    for m in _KEY_METRICS:
        cols[m] = (
            f"Mix-adjusted {meaning[m]} across styles: the venue's value for the reference mix "
            "of conditions; null when the venue is not comparable (see note)."
        )
        cols[f"{m}_ci_low"] = (
            f"Lower bound of the confidence interval of {m}; null when the venue's rows come "
            "from one cluster."
        )
        cols[f"{m}_ci_high"] = f"Upper bound of the confidence interval of {m}."
        cols[f"{m}_unadjusted"] = (
            "Executed / routed quantity of the window's child orders"
            if m == "fill_rate"
            else f"Plain share-weighted {m} over the window's fills"
        ) + " (view venue.scorecard_from_fills)."
    return cols


def _within_style_columns() -> dict[str, str]:
    cols: dict[str, str] = {}
    for m in _WITHIN_STYLE:
        cols[f"{m}_within_style"] = (
            f"{m} compared within style (cells split by liquidity flag), at the pooled mix of the "
            "venues it is compared with; null when no other venue trades in its style."
        )
        cols[f"{m}_within_style_ci_low"] = f"Lower bound of the interval of {m}_within_style."
        cols[f"{m}_within_style_ci_high"] = f"Upper bound of the interval of {m}_within_style."
    return cols


VENUE_SCORECARD = TableDoc(
    "One row per venue over the trailing window of trade dates: key metrics compared across "
    "execution styles under the same conditions, with cluster-robust confidence intervals, the "
    "composite score and the rank tier; within-style comparisons as extra columns "
    "(docs/VENUES.md).",
    {
        "venue": "Venue MIC.",
        "window_start": "First trade date of the window.",
        "window_end": "Last trade date of the window.",
        "trade_days": "Trade dates in the window.",
        "score": "Composite score: sum of weight x adjusted metric (default -all_in_cost_bps + "
        "5 x fill_rate); higher is better.",
        "score_ci_low": "Lower bound of the score's confidence interval.",
        "score_ci_high": "Upper bound of the score's confidence interval.",
        "rank": "Rank tier (1 = best); venues not significantly different from their tier's "
        "leader share it; null when not ranked (fewer than min_fills fills, or fills from one "
        "cluster: no interval).",
        "rank_tier_members": "The venues sharing this rank.",
        "fills": "Fills in the window.",
        "shares": "Executed shares in the window.",
        "notional": "Executed notional in the window.",
        "flow_share": "Share of our executed shares in the window.",
        "style_mix": "How the venue's shares were obtained: its executed shares by liquidity "
        "flag, largest first (e.g. 'MID 100%').",
        **_scorecard_columns(),
        **_within_style_columns(),
        "within_style_peers": "The venues it is compared with within style (empty: none).",
        "adjusted_for": "What the comparison controls for: the liquidity x order-size cell and "
        "the additive controls.",
        "clusters": "Independent clusters (parent orders by default) behind the intervals.",
        "ci_method": "How the intervals were computed.",
        "note": "Why a figure is missing or the venue is not ranked; null when everything is "
        "reported.",
    },
)

ROUTING_RECOMMENDATIONS = TableDoc(
    "Per liquidity bucket, order-size bucket and venue (every style, dark and lit): the current "
    "and the recommended share of routed quantity from the cost-minimizing linear program, "
    "what a share routed there costs, and the expected saving (docs/VENUES.md).",
    {
        "liquidity_bucket": "Symbol-liquidity bucket of the segment.",
        "size_bucket": "Order-size bucket of the segment.",
        "venue": "Venue MIC.",
        "window_start": "First trade date of the window.",
        "window_end": "Last trade date of the window.",
        "fills": "The venue's fills in the segment.",
        "shares": "The venue's executed shares in the segment.",
        "routed_qty": "Quantity of the child orders routed to the venue in the segment.",
        "current_share": "Current share of the segment's routed quantity.",
        "recommended_share": "Recommended share of routed quantity (the optimizer's solution); "
        "sums to 1 per segment.",
        "share_change": "recommended_share - current_share.",
        "capacity_share": "Upper bound: capacity_multiple x max(current_share, tape_share), at most 1.",
        "movable": "Whether the optimizer may move this venue's share (enough fills, a fill rate, "
        "fills from two clusters or more).",
        "all_in_cost_bps": "The venue's all-in cost per executed share in the segment, adjusted "
        "for the controls.",
        "all_in_cost_se_bps": "Its cluster-robust standard error; null when the venue's fills in "
        "the segment come from one cluster.",
        "fill_rate": "The venue's child fill rate in the segment (executed / routed).",
        "wait_s": "Mean wait of the venue's unfilled quantity before it could be re-routed "
        "(child end_ts - sent_ts, weighted by unfilled quantity).",
        "delay_cost_bps": "Opportunity cost of that wait: drift_bps_per_s x wait_s.",
        "fallback_cost_bps": "Cost of re-routing a miss: the segment's all-in cost of taking "
        "liquidity (its REMOVE fills).",
        "routed_cost_bps": "Expected cost of a share routed here first: fill_rate x cost + "
        "(1 - fill_rate) x (fallback + delay), bps.",
        "drift_bps_per_s": "The segment's adverse drift of the mid while our orders work, bps per "
        "second (at least 0).",
        "tape_share": "The venue's share of the consolidated tape in the segment's liquidity "
        "bucket's symbol-days.",
        "expected_saving_bps": "Segment saving: sum (current - recommended) x routed cost, bps of "
        "the segment's quantity (positive = cheaper).",
        "expected_saving_per_month": "Segment saving in currency per month at the window's "
        "average daily notional.",
        "segment_notional_per_day": "The segment's average executed notional per trade date.",
        "solver_status": "optimal, or why the current allocation was kept.",
    },
)

VENUE_PERFORMANCE_EVENTS = TableDoc(
    "VenuePerformanceEvent records, one per venue each time the scorecard is refreshed, with a "
    "versioned JSON payload; also exported as JSON Lines per window end.",
    {
        "event_id": "Stable id: vpe:<venue>:<window_end>:<schema_version>.",
        "event_type": "VenuePerformanceEvent.",
        "schema_version": "Payload schema version (semver).",
        "window_start": "First trade date of the scorecard window.",
        "window_end": "Last trade date of the scorecard window.",
        "venue": "Venue MIC.",
        "emitted_at": "When the event was materialized (UTC).",
        "payload": "JSON object: score, rank, tier members and every key metric with its interval.",
    },
)

SCORECARD_FROM_FILLS = TableDoc(
    "View: the scorecard's unadjusted figures recomputed from quality.fill_quality and "
    "staging.child_orders over the scorecard's window (traceability; docs/VENUES.md).",
    {
        "venue": "Venue MIC.",
        "fills": "Fills in the window.",
        "shares": "Executed shares in the window.",
        "notional": "Executed notional in the window.",
        **{
            f"{m}_unadjusted": (
                "Executed / routed quantity of the window's child orders."
                if m == "fill_rate"
                else f"Share-weighted {m} over the window's fills."
            )
            for m in _KEY_METRICS
        },
    },
)

TABLES.update(
    {
        "venue.venue_daily": VENUE_DAILY,
        "venue.venue_daily_buckets": VENUE_DAILY_BUCKETS,
        "venue.venue_scorecard": VENUE_SCORECARD,
        "venue.routing_recommendations": ROUTING_RECOMMENDATIONS,
        "venue.venue_performance_events": VENUE_PERFORMANCE_EVENTS,
        "venue.scorecard_from_fills": SCORECARD_FROM_FILLS,
    }
)


def render_markdown() -> str:
    """docs/TABLES.md."""
    lines = [
        "# Warehouse tables",
        "",
        "Generated from `eqs_pipeline/tables/catalog.py` (`python -m eqs_pipeline.tables.catalog > docs/TABLES.md`);",
        "the Dagster UI shows the same descriptions as each asset's column schema. Formulas, signs",
        "and worked examples of the metrics: [METRICS.md](METRICS.md); ingestion rules: [INGESTION.md](INGESTION.md).",
        "",
    ]
    for name, doc in TABLES.items():
        lines += [f"## `{name}`", "", doc.description, "", "| column | meaning |", "|---|---|"]
        lines += [f"| `{c}` | {d} |" for c, d in doc.columns.items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")

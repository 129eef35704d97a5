"""The staging tables: the landed contract tables as validated, the quarantine and the ingest log.

A staging table's columns are the landing contract's (`eqs_pipeline.core.contract`: type, required
columns, allowed values, positivity, key), so they cannot drift from the readers; this module adds
what the contract does not say (description, unit), the provenance columns (`trade_date` when
dated, `source_file`) and the single-row rules of ingestion as row checks named after the
quarantine reason codes (`crossed_quote`, `limit_without_price`, ...). Every float column of the
contract checks that it holds no NaN or infinity (`finite`: bad values, quarantined). Rules that
need other rows or tables (unknown orders, bad prints, overfills) are enforced by
`eqs_pipeline.ingest` only.
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.contract import Column as ContractColumn
from eqs_pipeline.tables.spec import Column, RowCheck, Table, Unit

# What the contract's columns mean, and their units: (description, unit).
CONTRACT_COLUMNS: dict[str, tuple[str, Unit | None]] = {
    "symbol": ("Instrument symbol.", None),
    "currency": ("ISO currency of prices.", None),
    "tick_size": ("Minimum price increment.", "price"),
    "adv_shares": ("Average daily volume in shares.", "shares"),
    "market": ("Market, e.g. US or EU.", None),
    "sector": ("Sector.", None),
    "daily_volatility": ("Daily volatility of returns, as a fraction (0.02 = 2%).", "ratio"),
    "lot_size": ("Round lot size in shares.", "shares"),
    "order_id": ("Parent order id.", None),
    "side": ("BUY, SELL or SELL_SHORT (a sell).", None),
    "order_qty": ("Parent order quantity in shares (S).", "shares"),
    "order_type": ("Order type (parent: MARKET/LIMIT; child: LIMIT/MARKET/MIDPEG).", None),
    "limit_price": ("Limit price, for LIMIT orders.", "price"),
    "arrival_ts": ("When the order reached the desk or broker (UTC).", None),
    "end_ts": ("When the order ended, if known (UTC).", None),
    "algo": ("Execution algorithm, e.g. VWAP, TWAP, POV, IS, DARK.", None),
    "urgency": ("LOW, MEDIUM or HIGH.", None),
    "target_participation": ("Target share of market volume.", "ratio"),
    "allocation": (
        "How the algo was chosen: wheel (drawn at random by an algo wheel) or discretionary "
        "(picked by the trader); null when not said.",
        None,
    ),
    "allocation_prob": (
        "Probability with which the wheel drew this order's algo, in (0, 1]; null when not "
        "recorded (a wheel order's arms are then taken as equally likely) and ignored on a "
        "discretionary order.",
        "ratio",
    ),
    "broker": ("Executing broker.", None),
    "trader": ("Trader.", None),
    "account": ("Account.", None),
    "decision_ts": ("Portfolio manager's decision time (UTC).", None),
    "child_id": ("Child order id (routed to one venue).", None),
    "venue": ("Venue MIC, e.g. XNAS.", None),
    "sent_ts": ("When the child order was sent (UTC).", None),
    "qty": ("Quantity in shares.", "shares"),
    "tif": ("Time in force: IOC or DAY.", None),
    "exec_id": ("Fill (execution) id.", None),
    "exec_ts": ("Execution time (UTC).", None),
    "price": ("Price.", "price"),
    "liquidity_flag": ("ADD (passive), REMOVE (aggressive), MID (midpoint) or AUCTION.", None),
    "fee": ("Fee in currency; negative is a rebate.", "currency"),
    "ts": ("Event time (UTC).", None),
    "bid_px": ("National best bid.", "price"),
    "bid_sz": ("Size at the best bid.", "shares"),
    "ask_px": ("National best offer.", "price"),
    "ask_sz": ("Size at the best offer.", "shares"),
    "size": ("Trade size in shares.", "shares"),
}


def contract_column(col: ContractColumn) -> Column:
    """A landed column as staged: the contract's type and rules, NaN and infinities refused."""
    description, unit = CONTRACT_COLUMNS[col.name]
    return Column(
        col.name,
        col.dtype,
        description,
        unit,
        nullable=not col.required,
        allowed=col.allowed,
        gt=0 if col.positive else None,
        finite=col.dtype == pl.Float64,
    )


def carried(table: str, name: str, description: str, unit: Unit | None = None) -> Column:
    """A contract column another table carries: the contract's type, allowed values and
    nullability (staging holds no row without a required column), a description of its own."""
    col = CONTRACT[table].column(name)
    return Column(
        name, col.dtype, description, unit, nullable=not col.required, allowed=col.allowed
    )


# The single-row rules of ingestion (docs/INGESTION.md), named after their reason codes.
ROW_CHECKS: dict[str, tuple[RowCheck, ...]] = {
    "orders": (
        RowCheck(
            "limit_without_price",
            "a LIMIT order needs a limit_price",
            (pl.col("order_type") != "LIMIT") | pl.col("limit_price").is_not_null(),
        ),
        RowCheck(
            "end_before_arrival",
            "end_ts must not be before arrival_ts",
            pl.col("end_ts") >= pl.col("arrival_ts"),
        ),
        RowCheck(
            "allocation_prob_out_of_range",
            "allocation_prob, a probability, must be in (0, 1]",
            (pl.col("allocation_prob") > 0) & (pl.col("allocation_prob") <= 1),
        ),
    ),
    "child_orders": (
        RowCheck(
            "end_before_sent",
            "end_ts must not be before sent_ts",
            pl.col("end_ts") >= pl.col("sent_ts"),
        ),
    ),
    "quotes": (
        RowCheck(
            "crossed_quote",
            "bid_px must not exceed ask_px (a locked quote, bid == ask, is allowed)",
            pl.col("bid_px") <= pl.col("ask_px"),
        ),
    ),
}

TRADE_DATE = Column("trade_date", pl.Date, "Trade date: the landing folder's date.", nullable=False)
SOURCE_FILE = Column(
    "source_file",
    pl.String,
    "Landed file the row came from, relative to the landing directory.",
    nullable=False,
)


# The staged tables kept only in the lake (a warehouse view over their partitions): the large
# ones, which analysts rarely query (`spec.Table.lake`).
LAKE_STAGED = frozenset({"child_orders", "executions", "quotes", "market_trades"})


def staging_table(table: str, description: str) -> Table:
    """`staging.<table>`: the contract's columns, `trade_date` when dated, `source_file`."""
    contract = CONTRACT[table]
    columns = [contract_column(c) for c in contract.columns]
    if contract.dated:
        columns.append(TRADE_DATE)
    columns.append(SOURCE_FILE)
    return Table(
        f"staging.{table}",
        description,
        tuple(columns),
        unique=contract.key,
        row_checks=ROW_CHECKS.get(table, ()),
        lake=table in LAKE_STAGED,
    )


QUARANTINE = Table(
    "staging.quarantine",
    "Every landed row that broke a row rule, with every reason; nothing is lost.",
    (
        Column(
            "source_table",
            pl.String,
            "Contract table the row was landed in.",
            nullable=False,
            allowed=tuple(CONTRACT),
        ),
        Column("trade_date", pl.Date, "Trade date of the landing folder (null for instruments)."),
        Column(
            "source_file",
            pl.String,
            "Landed file, relative to the landing directory.",
            nullable=False,
        ),
        Column("source_row", pl.Int64, "1-based data row within the file.", nullable=False, ge=1),
        Column(
            "row_json",
            pl.String,
            "The original row as JSON, all landed columns included.",
            nullable=False,
        ),
        Column(
            "reasons",
            pl.List(pl.String),
            "Every rule the row broke (docs/INGESTION.md).",
            nullable=False,
            non_empty=True,
        ),
    ),
    unique=("source_table", "trade_date", "source_file", "source_row"),
    row_checks=(
        RowCheck(
            "trade_date_iff_dated",
            "trade_date is null exactly for the undated instruments",
            (pl.col("source_table") == "instruments") == pl.col("trade_date").is_null(),
        ),
    ),
)

INGEST_LOG = Table(
    "staging.ingest_log",
    "Per landed file and trade date: rows landed, staged, quarantined and collapsed as identical "
    "duplicates (the conservation check reads it).",
    (
        Column("source_table", pl.String, "Contract table.", allowed=tuple(CONTRACT)),
        Column("trade_date", pl.Date, "Trade date."),
        Column("source_file", pl.String, "Landed file."),
        Column("landed_rows", pl.Int64, "Rows in the file.", "count", ge=0),
        Column("staged_rows", pl.Int64, "Rows staged.", "count", ge=0),
        Column("quarantined_rows", pl.Int64, "Rows quarantined.", "count", ge=0),
        Column(
            "collapsed_duplicates",
            pl.Int64,
            "Identical duplicate rows collapsed into one staged row.",
            "count",
            ge=0,
        ),
        Column("run_id", pl.String, "Dagster run that ingested the file."),
        Column(
            "inputs_fingerprint",
            pl.String,
            "SHA-256 of what the trade date (or the instruments) was staged from: its landed "
            "files' names, sizes and modification times, the instruments files', the settings "
            "and the code. `eqs run` skips a date whose fingerprint is unchanged (`--force` "
            "stages it again).",
            pattern="[0-9a-f]{64}$",
        ),
    ),
)

_DESCRIPTIONS = {
    "instruments": "Validated instrument reference data (not dated).",
    "orders": "Validated parent orders.",
    "child_orders": "Validated child orders routed to venues.",
    "executions": "Validated fills (TradeExecutedEvents).",
    "quotes": "Validated NBBO quotes.",
    "market_trades": "Validated consolidated tape prints.",
}

STAGING: dict[str, Table] = {
    table: staging_table(table, _DESCRIPTIONS[table]) for table in CONTRACT
}

TABLES: tuple[Table, ...] = (*STAGING.values(), QUARANTINE, INGEST_LOG)

"""The landing data contract, as data (docs/INGESTION.md describes it).

One place says which tables a desk lands, their columns, the Polars type each column is coerced
to, which columns are required, the allowed values of coded columns and each table's key. The
readers, the pandera schemas, the simulator and the LOBSTER importer all take their column lists
from here, so they cannot drift apart.

Timestamps are microsecond UTC instants (`pl.Datetime("us", "UTC")`): DuckDB's `TIMESTAMPTZ`
holds microseconds, and finer stamps (LOBSTER's nanoseconds) are truncated on ingestion.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

TS = pl.Datetime("us", "UTC")

SIDES = ("BUY", "SELL", "SELL_SHORT")
ORDER_TYPES = ("MARKET", "LIMIT")
CHILD_ORDER_TYPES = ("LIMIT", "MARKET", "MIDPEG")
TIFS = ("IOC", "DAY")
URGENCIES = ("LOW", "MEDIUM", "HIGH")
LIQUIDITY_FLAGS = ("ADD", "REMOVE", "MID", "AUCTION")
# How an order's algo was chosen: drawn at random by an algo wheel (with `allocation_prob`, the
# probability of the algo drawn) or picked by the trader. The wheel's orders are the ones an algo
# comparison can trust without a model of the choice (docs/INGESTION.md, "The algo allocation").
ALLOCATIONS = ("wheel", "discretionary")


@dataclass(frozen=True)
class Column:
    """One contract column: its name, the type it is coerced to, and its rules."""

    name: str
    dtype: pl.DataType
    required: bool = True
    allowed: tuple[str, ...] | None = None
    positive: bool = False
    # A key or dimension (an id, a symbol, a venue, a broker): no control characters, at most
    # `IngestSettings.max_identifier_chars` characters (rule `bad_text`).
    identifier: bool = False


@dataclass(frozen=True)
class TableContract:
    """One landed table: its columns, its key (empty when rows have none) and whether it is dated."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    dated: bool = True

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def timestamp_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.dtype == TS]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no contract column {name!r}")


INSTRUMENTS = TableContract(
    "instruments",
    (
        Column("symbol", pl.String, identifier=True),
        Column("currency", pl.String, identifier=True),
        Column("tick_size", pl.Float64, positive=True),
        Column("adv_shares", pl.Float64, positive=True),
        Column("market", pl.String, required=False, identifier=True),
        Column("sector", pl.String, required=False),
        Column("daily_volatility", pl.Float64, required=False, positive=True),
        Column("lot_size", pl.Int64, required=False, positive=True),
    ),
    key=("symbol",),
    dated=False,
)

ORDERS = TableContract(
    "orders",
    (
        Column("order_id", pl.String, identifier=True),
        Column("symbol", pl.String, identifier=True),
        Column("side", pl.String, allowed=SIDES),
        Column("order_qty", pl.Float64, positive=True),
        Column("order_type", pl.String, allowed=ORDER_TYPES),
        Column("limit_price", pl.Float64, required=False, positive=True),
        Column("arrival_ts", TS),
        Column("end_ts", TS, required=False),
        Column("algo", pl.String, identifier=True),
        Column("urgency", pl.String, required=False, allowed=URGENCIES),
        Column("target_participation", pl.Float64, required=False, positive=True),
        Column("allocation", pl.String, required=False, allowed=ALLOCATIONS),
        # A probability in (0, 1]: the rule `allocation_prob_out_of_range`, not `positive`, so
        # that a value outside it gets one reason.
        Column("allocation_prob", pl.Float64, required=False),
        Column("broker", pl.String, identifier=True),
        Column("trader", pl.String, required=False, identifier=True),
        Column("account", pl.String, required=False, identifier=True),
        Column("decision_ts", TS, required=False),
    ),
    key=("order_id",),
)

CHILD_ORDERS = TableContract(
    "child_orders",
    (
        Column("child_id", pl.String, identifier=True),
        Column("order_id", pl.String, identifier=True),
        Column("venue", pl.String, identifier=True),
        Column("sent_ts", TS),
        Column("qty", pl.Float64, positive=True),
        Column("order_type", pl.String, allowed=CHILD_ORDER_TYPES),
        Column("limit_price", pl.Float64, required=False, positive=True),
        Column("tif", pl.String, allowed=TIFS),
        Column("end_ts", TS, required=False),
    ),
    key=("child_id",),
)

EXECUTIONS = TableContract(
    "executions",
    (
        Column("exec_id", pl.String, identifier=True),
        Column("order_id", pl.String, identifier=True),
        Column("child_id", pl.String, required=False, identifier=True),
        Column("symbol", pl.String, identifier=True),
        Column("venue", pl.String, identifier=True),
        Column("exec_ts", TS),
        Column("qty", pl.Float64, positive=True),
        Column("price", pl.Float64, positive=True),
        Column("liquidity_flag", pl.String, allowed=LIQUIDITY_FLAGS),
        Column("fee", pl.Float64, required=False),
    ),
    key=("exec_id",),
)

QUOTES = TableContract(
    "quotes",
    (
        Column("symbol", pl.String, identifier=True),
        Column("ts", TS),
        Column("bid_px", pl.Float64, positive=True),
        Column("bid_sz", pl.Float64, positive=True),
        Column("ask_px", pl.Float64, positive=True),
        Column("ask_sz", pl.Float64, positive=True),
    ),
)

MARKET_TRADES = TableContract(
    "market_trades",
    (
        Column("symbol", pl.String, identifier=True),
        Column("ts", TS),
        Column("price", pl.Float64, positive=True),
        Column("size", pl.Float64, positive=True),
        Column("venue", pl.String, required=False, identifier=True),
    ),
)

CONTRACT: dict[str, TableContract] = {
    t.name: t for t in (INSTRUMENTS, ORDERS, CHILD_ORDERS, EXECUTIONS, QUOTES, MARKET_TRADES)
}
DATED_TABLES: tuple[str, ...] = tuple(name for name, t in CONTRACT.items() if t.dated)
# Ids are keys within a trade date (ingestion checks them per date; FIX ClOrdIDs often restart
# daily), so an order and a child order are these pairs wherever several dates meet.
ORDER_KEY: tuple[str, str] = ("trade_date", "order_id")
CHILD_KEY: tuple[str, str] = ("trade_date", "child_id")


def one_trade_date(*frames: pl.DataFrame) -> bool:
    """Whether every row of `frames` has the same trade date (a daily partition): the ids alone
    are then keys, and a join on them is faster than on (trade_date, id)."""
    dates = set()
    for frame in frames:
        column = frame.get_column("trade_date")
        if column.null_count():
            return False
        if frame.height:
            dates.update((column.min(), column.max()))
    return len(dates) <= 1


FILE_SUFFIXES: tuple[str, ...] = (".parquet", ".csv", ".jsonl")


def side_sign(side: pl.Expr) -> pl.Expr:
    """D of docs/METRICS.md: +1 for BUY, -1 for SELL and SELL_SHORT."""
    return pl.when(side == "BUY").then(pl.lit(1, pl.Int8)).otherwise(pl.lit(-1, pl.Int8))

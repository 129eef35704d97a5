"""A trade date's rows in contiguous ranges of its sorted symbols, and how they are read.

Every per-date computation that can run in parts (staging's prevailing-mid look-up, the
quality step, the venue frames) splits a large date into `SymbolRange`s of at most
`chunk_fills` fills and reads only a range's rows at a time through a `Reader`; an order, its
child orders and its fills share the order's symbol, so each range's results are exactly that
range's rows of the whole day's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class SymbolRange:
    """The rows of one trade date in a contiguous range of its sorted symbols, `first` to
    `last` (both included). A child order has no symbol: it is in its parent order's range.
    The date's first range (`first_range`) also holds what no range's symbols would select:
    rows without a symbol (ingestion rejects them) and child orders whose parent order is not
    scored (ingestion quarantines them: `unknown_order`), so the ranges hold every row once."""

    first: str
    last: str
    first_range: bool = False

    def rows(self) -> pl.Expr:
        """The range's rows of a table with a `symbol` column."""
        rows = pl.col("symbol").is_between(pl.lit(self.first), pl.lit(self.last))
        return rows | pl.col("symbol").is_null() if self.first_range else rows

    def children(self, orders: pl.DataFrame) -> pl.Expr:
        """The range's child orders, given the date's scored orders (order_id, symbol)."""
        rows = pl.col("order_id").is_in(orders.filter(self.rows()).get_column("order_id").implode())
        if self.first_range:
            scored = orders.get_column("order_id").implode()
            rows = rows | pl.col("order_id").is_in(scored).not_().fill_null(True)
        return rows


# read(table, rows, columns): one trade date's rows of `table` ("orders", "child_orders",
# "executions", "quotes", "market_trades": staged, typed as the contract says; "fill_quality",
# "order_quality": the scored fills and orders), only those of the symbol range `rows` (all
# when None) and only `columns` (all when None).
Reader = Callable[[str, SymbolRange | None, Sequence[str] | None], pl.DataFrame]
# scan(table, where, columns): the same with the rows a Polars expression selects.
Scan = Callable[[str, pl.Expr | None, Sequence[str] | None], pl.DataFrame]


def polars_reader(scan: Scan) -> Reader:
    """A `Reader` over a source Polars filters (frames in memory, the Parquet lake): a range's
    rows by their symbol, its child orders by their order's (`SymbolRange.children`)."""

    def read(table: str, rows: SymbolRange | None, columns: Sequence[str] | None):
        if rows is None:
            return scan(table, None, columns)
        if table == "child_orders":
            orders = scan("order_quality", None, ["order_id", "symbol"])
            return scan(table, rows.children(orders), columns)
        return scan(table, rows.rows(), columns)

    return read


def symbol_ranges(fills_per_symbol: pl.DataFrame, max_fills: int) -> list[tuple[str, str]]:
    """Contiguous ranges (first, last symbol, both included) of the sorted symbols of
    `fills_per_symbol` (symbol, fills), each with at most `max_fills` fills; a symbol with more
    is a range of its own."""
    if max_fills < 1:
        raise ValueError(f"chunk_fills must be at least 1, not {max_fills}")
    ranges: list[tuple[str, str]] = []
    first = last = None
    held = 0
    for symbol, fills in fills_per_symbol.drop_nulls("symbol").sort("symbol").iter_rows():
        if first is not None and held + fills > max_fills:
            ranges.append((first, last))
            first, held = None, 0
        first = symbol if first is None else first
        last, held = symbol, held + fills
    if first is not None:
        ranges.append((first, last))
    return ranges


def day_ranges(fills: pl.DataFrame, orders: pl.DataFrame, max_fills: int) -> list[SymbolRange]:
    """`symbol_ranges` of a trade date from its fills' and its orders' `symbol` columns: every
    order's symbol is in a range, with or without fills."""
    counts = pl.concat(
        [
            fills.group_by("symbol").agg(n=pl.len().cast(pl.Int64)),
            orders.select("symbol").unique().with_columns(n=pl.lit(0, pl.Int64)),
        ]
    )
    ranges = symbol_ranges(counts.group_by("symbol").agg(pl.col("n").sum()), max_fills)
    return [SymbolRange(first, last, i == 0) for i, (first, last) in enumerate(ranges)]


def in_memory(frames: dict[str, pl.DataFrame]) -> Reader:
    """A reader over frames already in memory (one trade date's, keyed as `Reader` says)."""

    def scan(table: str, where: pl.Expr | None, columns: Sequence[str] | None) -> pl.DataFrame:
        rows = frames[table] if where is None else frames[table].filter(where)
        return rows if columns is None else rows.select(columns)

    return polars_reader(scan)

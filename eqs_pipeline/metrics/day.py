"""One trade date's fill and order quality, as the `quality` step computes it, in symbol ranges.

Every look-up and aggregate of the fill and order stages is per (trade_date, symbol), and an
order and its fills share its symbol (ingestion quarantines a fill whose symbol is not its
order's: `symbol_mismatch`), so scoring a subset of the symbols gives exactly that
subset's rows. A trade date with more than `QualitySettings.chunk_fills` fills is scored in
contiguous ranges of its sorted symbols (those of its orders), each with at most that many
fills (a symbol with more is a range of its own), and only a range's rows are read at a time: the step's memory follows
the range, not the day (a date of 5.0M fills: 10.0 GiB scored whole, 4.6 GiB in ranges of 1M
fills, in the same time; docs/SCALING.md). The results are the day's: fills in the order of
`fill_quality` (trade_date, symbol, exec_ts, exec_id; the ranges follow the symbols' order),
orders in their landed order. Order metrics that sum over an order's fills or quotes may differ
from a whole-day run in the last bits, as Polars' parallel sums do from one run to the next.

Within a range, what does not depend on the quotes runs on a second thread while the quotes
are prepared (Polars and NumPy release the GIL): the fills (`prepare_fills`: order attributes
and fill order), then the tape, which only the order metrics need. About 15-20% of the step on
two cores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from eqs_pipeline.contract import ORDER_KEY
from eqs_pipeline.metrics.asof import prepare_quotes, prepare_trades
from eqs_pipeline.metrics.fills import fill_quality, prepare_fills
from eqs_pipeline.metrics.orders import order_quality
from eqs_pipeline.settings import QualitySettings


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


@dataclass(frozen=True)
class DayQuality:
    """`quality.fill_quality` and `quality.order_quality` of the date (None: not asked for)."""

    fills: pl.DataFrame | None
    orders: pl.DataFrame | None
    ranges: int  # symbol ranges scored (1: the whole day at once)
    # Seconds to the fills scored (reads and quote preparation included) and then to the
    # orders scored, summed over the ranges.
    seconds: dict[str, float]


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


def score_day(
    read: Reader,
    instruments: pl.DataFrame,
    settings: QualitySettings | None = None,
    *,
    fills: bool = True,
    orders: bool = True,
) -> DayQuality:
    """Fill quality (when `fills`) and order quality (when `orders`; from the stored fills,
    `read("fill_quality", ...)`, when the fills are not scored here) of one trade date."""
    settings = settings or QualitySettings()
    ranges = day_ranges(
        read("executions", None, ["symbol"]), read("orders", None, ["symbol"]), settings.chunk_fills
    )
    if len(ranges) <= 1:
        return _score(read, None, instruments, settings, fills, orders)
    parts = [_score(read, r, instruments, settings, fills, orders) for r in ranges]
    seconds = {k: sum(p.seconds[k] for p in parts) for k in parts[0].seconds}
    fill_frame = pl.concat([p.fills for p in parts]) if fills else None
    order_frame = None
    if orders:  # in their landed order, as scored whole
        landed = read("orders", None, list(ORDER_KEY)).with_row_index("_landed")
        order_frame = (
            pl.concat([p.orders for p in parts])
            .join(landed, on=list(ORDER_KEY), how="left")
            .sort("_landed")
            .drop("_landed")
        )
    return DayQuality(fill_frame, order_frame, len(ranges), seconds)


def _score(
    read: Reader,
    rows: SymbolRange | None,
    instruments: pl.DataFrame,
    settings: QualitySettings,
    with_fills: bool,
    with_orders: bool,
) -> DayQuality:
    """Fill and order quality of the symbol range `rows` (the whole date when None)."""
    start = time.perf_counter()
    scored = frame = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eqs-quality") as background:
        order_rows = read("orders", rows, None)  # both stages use the orders
        if with_fills:
            executions = read("executions", rows, None)
            fills_ready = background.submit(prepare_fills, executions, order_rows)
        if with_orders:
            trades = read("market_trades", rows, None)
            tape = background.submit(prepare_trades, trades)
        quotes = read("quotes", rows, None)
        book = prepare_quotes(quotes)
        if with_fills:
            scored = fill_quality(
                executions,
                quotes,
                order_rows,
                settings,
                prepared_quotes=book,
                prepared_fills=fills_ready.result(),
            ).collect()
        filled = time.perf_counter()
        if with_orders:
            frame = order_quality(
                order_rows,
                scored if scored is not None else read("fill_quality", rows, None),
                quotes,
                trades,
                instruments,
                settings,
                prepared_quotes=book,
                prepared_trades=tape.result(),
            ).collect()
    done = time.perf_counter()
    return DayQuality(scored, frame, 1, {"fill": filled - start, "order": done - filled})

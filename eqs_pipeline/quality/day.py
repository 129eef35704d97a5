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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from eqs_pipeline.core.contract import ORDER_KEY
from eqs_pipeline.core.ranges import Reader, SymbolRange, day_ranges
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.quality.asof import prepare_quotes, prepare_trades
from eqs_pipeline.quality.fills import fill_quality, prepare_fills
from eqs_pipeline.quality.orders import order_quality


@dataclass(frozen=True)
class DayQuality:
    """`quality.fill_quality` and `quality.order_quality` of the date (None: not asked for)."""

    fills: pl.DataFrame | None
    orders: pl.DataFrame | None
    ranges: int  # symbol ranges scored (1: the whole day at once)
    # Seconds to the fills scored (reads and quote preparation included) and then to the
    # orders scored, summed over the ranges.
    seconds: dict[str, float]


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

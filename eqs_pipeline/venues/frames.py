"""Fill- and child-level frames of the venue analysis, each row tagged with its buckets.

A fill's buckets are its liquidity_flag (how it executed), the size of its parent order
relative to ADV (size_bucket) and the dollar ADV of its symbol (liquidity_bucket). A child
order's flag is the one its style implies (MIDPEG -> MID, IOC or MARKET -> REMOVE, else ADD),
since an unfilled child has no executed flag. Where asked for, `conditions` joins the levels of
the scorecard's controls (`settings.CONTROLS`: the order's arrival spread and urgency, the time
of day its child order was sent and the child's notional) with "|". Buckets come from
`quality.order_quality` (size_pct_adv, adv_shares, arrival_mid, arrival_spread_bps, urgency)
and the child order (sent_ts, qty); where they are missing the bucket is `unknown`.
"""

from __future__ import annotations

import itertools
import zoneinfo
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time

import numpy as np
import polars as pl

from eqs_pipeline.core.buckets import bucket
from eqs_pipeline.core.contract import CHILD_KEY, ORDER_KEY, one_trade_date
from eqs_pipeline.core.ranges import Reader, SymbolRange, day_ranges
from eqs_pipeline.core.settings import HORIZONS_S
from eqs_pipeline.venues.settings import (
    CONTROL_LEVELS,
    UNKNOWN,
    VenueSettings,
    time_edges_minutes,
)

FILL_METRICS: tuple[str, ...] = (
    "quoted_spread_bps",
    "effective_spread_bps",
    "price_improvement_bps",
    *[f"{m}_{h}s_bps" for h in HORIZONS_S for m in ("realized_spread", "price_impact", "markout")],
    "fee_bps",
    "all_in_cost_bps",
)

# Columns of the venue analysis' fill and child-order rows (`venue_frames`).
# What a fill row and a child row share: who and where, the comparison cell, the quantity.
SHARED_COLUMNS: tuple[str, ...] = (
    "symbol",
    "venue",
    "liquidity_flag",
    "size_bucket",
    "liquidity_bucket",
    "conditions",
    "cluster",
    "qty",
)
FILL_COLUMNS: tuple[str, ...] = (
    "trade_date",
    "exec_id",
    "order_id",
    "child_id",
    *SHARED_COLUMNS,
    "notional",
    "fee",
    "quote_position",
    "latency_ms",
    *FILL_METRICS,
)
CHILD_COLUMNS: tuple[str, ...] = (
    "trade_date",
    "child_id",
    "order_id",
    *SHARED_COLUMNS,
    "filled_qty",
    "fill_rate",
    "wait_s",
)

# What `venue_frames` reads of each input (the window reads these child orders and orders, and
# of the fills only what `fill_inputs` names for the rows it keeps): the fill columns it passes
# through, and what its derived columns come from.
_DERIVED = (
    "size_bucket",
    "liquidity_bucket",
    "conditions",
    "cluster",
    "latency_ms",
    "all_in_cost_bps",
)
FILL_INPUTS: tuple[str, ...] = (*(c for c in FILL_COLUMNS if c not in _DERIVED), "exec_ts")
CHILD_INPUTS: tuple[str, ...] = (
    *CHILD_KEY,
    "order_id",
    "venue",
    "qty",
    "order_type",
    "tif",
    "sent_ts",
    "end_ts",
)
# Working columns of `venue_frames`: an order's codes of its spread bucket and urgency
# (`order_buckets`), a row's position in `conditions_dtype`.
SPREAD_CODE = "spread_code"
URGENCY_CODE = "urgency_code"
CONDITION_CODE = "condition_code"

ORDER_INPUTS: tuple[str, ...] = (
    *ORDER_KEY,
    "symbol",
    "size_pct_adv",
    "adv_shares",
    "arrival_mid",
    "arrival_spread_bps",
    "urgency",
)


def fill_inputs(
    columns: Sequence[str] = FILL_COLUMNS, settings: VenueSettings | None = None
) -> tuple[str, ...]:
    """What `venue_frames(..., fill_columns=columns)` reads of the fills: the keys it joins on
    (the child order, the parent order and its date), the quantity its children's executed
    quantity sums, the symbol of a symbol-day cluster, the columns asked for that it passes
    through, and what the derived ones asked for come from. All of them: `FILL_INPUTS`."""
    settings = settings or VenueSettings()
    needed = ["trade_date", "order_id", "child_id", "qty"]
    if settings.cluster == "symbol_day":
        needed.append("symbol")
    needed += [c for c in columns if c in FILL_INPUTS]
    if "latency_ms" in columns:
        needed.append("exec_ts")
    if "all_in_cost_bps" in columns:
        needed += ["fee_bps", f"markout_{settings.all_in_horizon_s}s_bps"]
    return tuple(dict.fromkeys(needed))


def order_buckets(
    order_quality: pl.LazyFrame, settings: VenueSettings, *, conditions: bool = False
) -> pl.LazyFrame:
    """(trade_date, order_id) -> symbol, size_bucket, liquidity_bucket, dollar_adv and, with
    `conditions`, the order's part of them: the codes of its spread bucket and urgency
    (`spread_code`, `urgency_code`: positions in `CONTROL_LEVELS`) and its reference price.

    An order is (trade_date, order_id): ids are unique per trade date only (docs/INGESTION.md).
    The symbol's dollar ADV is adv_shares times the median arrival mid of its orders that day
    (the reference price), so every order of a symbol-day lands in the same liquidity bucket.
    """
    ref_price = pl.col("arrival_mid").median().over("trade_date", "symbol")
    dollar_adv = pl.col("adv_shares") * ref_price
    extra = []
    if conditions:  # as the codes of `CONTROL_LEVELS`
        urgency = {u: i for i, u in enumerate(CONTROL_LEVELS["urgency"][:-1])}
        extra = [
            _bucket_code(pl.col("arrival_spread_bps"), settings.spread_edges_bps).alias(
                SPREAD_CODE
            ),
            pl.col("urgency")
            .cast(pl.String)
            .replace_strict(urgency, default=len(urgency), return_dtype=pl.UInt32)
            .fill_null(len(urgency))
            .alias(URGENCY_CODE),
            ref_price.alias("ref_price"),
        ]
    return order_quality.select(
        *ORDER_KEY,
        "symbol",
        bucket(pl.col("size_pct_adv") * 100, settings.size_edges_pct_adv, ("small", "medium", "large"))
        .alias("size_bucket"),
        bucket(dollar_adv, settings.liquidity_edges_usd, ("low", "mid", "high")).alias(
            "liquidity_bucket"
        ),
        dollar_adv.alias("dollar_adv"),
        *extra,
    )  # fmt: skip


def _session_edges_us(settings: VenueSettings, dates: Sequence[date]) -> tuple[dict, dict]:
    """Per trade date, the instants (microseconds since the epoch, UTC) of the two
    `time_edges` on the session clock: comparing a send time with them is a time-of-day bucket
    without converting every row's time zone (0.5 s a date of 1M rows)."""
    zone = zoneinfo.ZoneInfo(settings.session_timezone)
    edges = []
    for minutes in time_edges_minutes(settings):
        clock = time(minutes // 60, minutes % 60)
        edges.append(
            {d: int(datetime.combine(d, clock, zone).timestamp() * 1_000_000) for d in dates}
        )
    return edges[0], edges[1]


def _bucket_code(value: pl.Expr, edges: tuple[float, float]) -> pl.Expr:
    """0, 1, 2 below the first edge, below the second, above; 3 (unknown) where missing."""
    low, high = edges
    return (
        pl.when(value.is_null() | value.is_nan())
        .then(3)
        .when(value < low)
        .then(0)
        .when(value < high)
        .then(1)
        .otherwise(2)
        .cast(pl.UInt32)
    )


def conditions_dtype(settings: VenueSettings) -> pl.Enum:
    """Every combination of the levels of `settings.controls`, joined with "|" (one empty level
    without controls): the categories of the `conditions` column."""
    levels = [CONTROL_LEVELS[c] for c in settings.controls]
    return pl.Enum(["|".join(p) for p in itertools.product(*levels)])


def _condition_code(
    settings: VenueSettings, sent_ts: pl.Expr, child_qty: pl.Expr, dates: Sequence[date]
) -> pl.Expr:
    """The position in `conditions_dtype` of a row's conditions: from the order's spread and
    urgency codes and ref_price, the child order's send time and quantity,
    and the row's trade_date (one of `dates`). Integer codes: no text is built per row."""
    # A row whose order is not in order_quality has no codes: unknown.
    codes = {
        "spread_bucket": pl.col(SPREAD_CODE).fill_null(3),
        "urgency": pl.col(URGENCY_CODE).fill_null(3),
        "child_size_bucket": _bucket_code(
            child_qty * pl.col("ref_price"), settings.child_size_edges
        ),
    }
    if "time_bucket" in settings.controls:
        open_us, close_us = _session_edges_us(settings, dates)
        sent_us = sent_ts.dt.epoch("us")
        day = pl.col("trade_date")
        codes["time_bucket"] = (
            pl.when(sent_us.is_null())
            .then(3)
            .when(sent_us < day.replace_strict(open_us, return_dtype=pl.Int64))
            .then(0)
            .when(sent_us < day.replace_strict(close_us, return_dtype=pl.Int64))
            .then(1)
            .otherwise(2)
            .cast(pl.UInt32)
        )
    code = pl.lit(0, pl.UInt32)
    for control in settings.controls:
        code = code * len(CONTROL_LEVELS[control]) + codes[control]
    return code


def _conditions(frame: pl.DataFrame, settings: VenueSettings) -> pl.DataFrame:
    """`frame` with its `condition_code` column replaced by `conditions` (`conditions_dtype`)."""
    dtype = conditions_dtype(settings)
    labels = pl.Series("conditions", dtype.categories).cast(dtype)
    return frame.with_columns(labels.gather(frame[CONDITION_CODE])).drop(CONDITION_CODE)


def order_cluster() -> pl.Expr:
    """The cluster of an order (`cluster = "order"`) over several dates: its order_id within
    its trade date (within one date, the order_id alone)."""
    return pl.concat_str(pl.col("trade_date").cast(pl.String), pl.col("order_id"), separator="|")


def _symbol_day_cluster() -> pl.Expr:
    """The cluster of `cluster = "symbol_day"`: symbol|trade_date. A child order whose parent
    order is not in order_quality has no symbol (ingestion quarantines such children; hand-made
    inputs can hold them): it is a cluster of its own, its order within its date."""
    symbol_day = pl.concat_str(
        pl.col("symbol"), pl.col("trade_date").cast(pl.String), separator="|"
    )
    return symbol_day.fill_null(order_cluster())


def _bucket_columns(
    frame: pl.DataFrame, buckets: pl.DataFrame, key: tuple[str, ...]
) -> list[pl.Series]:
    """The `buckets` columns of each row's parent order, from a join of the `key` columns
    alone (joining the wide frame would copy all of its columns); UNKNOWN bucket where none.
    An order's cluster, where `buckets` has one, is computed once per order and comes with the
    join; a row whose order has none gets its own (trade_date|order_id)."""
    looked_up = frame.select(key).join(
        buckets.drop(c for c in ORDER_KEY if c not in key),
        on=key,
        how="left",
        maintain_order="left",
    )
    columns = []
    for c in buckets.columns:
        if c in ORDER_KEY:
            continue
        column = looked_up.get_column(c)
        if c.endswith("_bucket"):
            column = column.fill_null(UNKNOWN)
        elif c == "cluster" and column.null_count():
            column = frame.select(pl.lit(column).fill_null(order_cluster())).to_series()
        columns.append(column)
    return columns


def _child_of_fills(fills: pl.DataFrame, children: pl.DataFrame, child_key) -> pl.Series:
    """Each fill's row in `children` (null where its child order is not there)."""
    row = (
        fills.select(child_key)
        .join(
            children.select(child_key).with_row_index("child_row"),
            on=child_key,
            how="left",
            maintain_order="left",
        )
        .get_column("child_row")
    )
    if row.len() != fills.height:
        raise ValueError(
            "child_orders holds a child_id more than once on one trade date; the staging layer "
            "keeps (trade_date, child_id) unique"
        )
    return row


def _child_rows(
    children: pl.DataFrame,
    buckets: pl.DataFrame,
    order_key: tuple[str, ...],
    executed: np.ndarray,
    cluster: dict[str, pl.Expr],
    conditions: pl.Expr | None,
) -> pl.DataFrame:
    """The child-order rows (`CHILD_COLUMNS` but `conditions`, and with `conditions` given the
    rows' `CONDITION_CODE`); executed: each child's executed quantity."""
    return (
        children.with_columns(
            *_bucket_columns(children, buckets, order_key),
            liquidity_flag=child_flag(),
            # Not clipped to the routed quantity: ingestion quarantines fills past it
            # (`child_overfill`), and one that got through shows as a fill rate above 1, which
            # the venue tables' `fill_rate_in_unit_interval` check reports.
            filled_qty=pl.Series(executed, dtype=pl.Float64),
        )
        .with_columns(
            fill_rate=pl.col("filled_qty") / pl.col("qty"),
            wait_s=child_wait_s(),
            **cluster,
            **({CONDITION_CODE: conditions} if conditions is not None else {}),
        )
        .select(
            *(c for c in CHILD_COLUMNS if c != "conditions"),
            *([CONDITION_CODE] if conditions is not None else []),
        )
    )


def _fill_rows(
    fills: pl.DataFrame,
    sent_ts: pl.Series,
    child_conditions: pl.Series | None,
    buckets: pl.DataFrame,
    order_key: tuple[str, ...],
    derived: dict[str, pl.Expr],
    cluster: dict[str, pl.Expr],
    fill_columns: Sequence[str],
) -> pl.DataFrame:
    """The fill rows (`fill_columns` but `conditions`, and with `child_conditions` given the
    rows' `CONDITION_CODE`); sent_ts and child_conditions: each fill's child order's."""
    with_conditions = child_conditions is not None
    return (
        fills.with_columns(
            sent_ts,
            *([child_conditions.alias("child_condition_code")] if with_conditions else []),
            *_bucket_columns(fills, buckets.drop("symbol"), order_key),
        )
        .with_columns(
            **{
                name: value
                for name, value in derived.items()
                if name in fill_columns or name == CONDITION_CODE
            },
            **cluster,
        )
        .select(
            *(c for c in fill_columns if c != "conditions"),
            *([CONDITION_CODE] if with_conditions else []),
        )
    )


def venue_frames(
    fill_quality: pl.LazyFrame | pl.DataFrame,
    child_orders: pl.LazyFrame | pl.DataFrame,
    order_quality: pl.LazyFrame | pl.DataFrame,
    settings: VenueSettings | None = None,
    *,
    fill_columns: Sequence[str] = FILL_COLUMNS,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The venue analysis' fill rows and child-order rows.

    Fills: one row per fill with its venue, cell, cluster, latency (exec_ts - the child's
    sent_ts) and all-in cost: all_in_cost_bps = fee_bps - markout_{h}_bps (h =
    settings.all_in_horizon_s), what was paid against the mid plus fees, plus the adverse move
    of the mid after the fill; a missing fee counts as zero (fees are optional in the contract).

    Children: one row per child order with its venue, cell, routed and executed quantity,
    fill rate and wait (`child_wait_s`).

    The inputs may span several trade dates, and ids are unique per trade date only
    (docs/INGESTION.md): a child order is (trade_date, child_id), an order (trade_date,
    order_id), and every join and cluster uses both (within one date the ids alone, which is
    the same and cheaper: the daily path). One hash join of the fills' (trade_date,
    child_id) to the child orders serves both frames: it gives each fill its child's row (hence
    sent_ts) and each child the sum of its fills' quantities.

    `fill_columns` (of `FILL_COLUMNS`) are the fill rows' columns; the fills need only
    `fill_inputs(fill_columns, settings)` (the window reads what its statistics keep).
    """
    settings = settings or VenueSettings()
    fills = fill_quality.lazy().collect()
    children = child_orders.lazy().collect()
    with_conditions = "conditions" in fill_columns
    buckets = order_buckets(order_quality.lazy(), settings, conditions=with_conditions).collect()
    # Within one trade date the ids alone are keys (the daily path: one column to join on).
    one_date = one_trade_date(fills, children, buckets)
    child_key = CHILD_KEY[1:] if one_date else CHILD_KEY
    order_key = ORDER_KEY[1:] if one_date else ORDER_KEY
    if settings.cluster == "symbol_day":
        cluster = {"cluster": _symbol_day_cluster()}
    elif one_date:  # the order_id is the order: no label to build and carry through the join
        cluster = {"cluster": pl.col("order_id")}
    else:  # an order is its id within its date, labelled once per order, joined with buckets
        buckets = buckets.with_columns(cluster=order_cluster())
        cluster = {}
    row = _child_of_fills(fills, children, child_key)
    known = row.is_not_null()
    executed = np.bincount(
        row.filter(known).to_numpy(),
        weights=fills["qty"].filter(known).fill_null(0.0).to_numpy(),
        minlength=children.height,
    )
    markout = f"markout_{settings.all_in_horizon_s}s_bps"
    derived = {
        "latency_ms": (pl.col("exec_ts") - pl.col("sent_ts")).dt.total_microseconds() / 1e3,
        "all_in_cost_bps": pl.col("fee_bps").fill_null(0.0) - pl.col(markout),
    }
    if not with_conditions:
        child_rows = _child_rows(children, buckets, order_key, executed, cluster, None)
        fill_rows = _fill_rows(
            fills, children["sent_ts"].gather(row), None, buckets, order_key, derived, cluster,
            fill_columns,
        )  # fmt: skip
        return fill_rows, child_rows
    dates = pl.concat([fills["trade_date"], children["trade_date"]]).drop_nulls().unique()
    dates = dates.to_list()
    conditions = _condition_code(settings, pl.col("sent_ts"), pl.col("qty"), dates)
    child_rows = _child_rows(children, buckets, order_key, executed, cluster, conditions)
    # A fill's conditions are its child order's; a fill without one has its order's, with
    # the child's time and size unknown.
    no_child = _condition_code(
        settings, pl.lit(None, pl.Datetime("us", "UTC")), pl.lit(None, pl.Float64), dates
    )
    derived[CONDITION_CODE] = pl.coalesce(pl.col("child_condition_code"), no_child)
    fill_rows = _fill_rows(
        fills, children["sent_ts"].gather(row), child_rows[CONDITION_CODE].gather(row), buckets,
        order_key, derived, cluster, fill_columns,
    )  # fmt: skip
    fill_rows = _conditions(fill_rows, settings).select(fill_columns)
    child_rows = _conditions(child_rows, settings).select(CHILD_COLUMNS)
    return fill_rows, child_rows


def venue_frames_by_range(
    read: Reader,
    fill_count: int,
    settings: VenueSettings,
    chunk_fills: int,
    *,
    fill_columns: Sequence[str] = FILL_COLUMNS,
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """`venue_frames` of one trade date, read through `read` (as `core.ranges.Reader` says:
    "fill_quality", "order_quality", "child_orders"): the whole date at once when it has at
    most `chunk_fills` fills (`fill_count`, which callers read from the Parquet footer or a
    count: reading the symbols of a date of 500k fills costs more than its count), else one
    contiguous symbol range of at most `chunk_fills` fills at a time
    (`core.ranges.symbol_ranges`), each read alone, so memory follows the range.

    Every look-up of `venue_frames` is within an order, and an order and its fills share its
    symbol (ingestion quarantines a `symbol_mismatch`), so the ranges give the date's rows,
    each once (`core.ranges.SymbolRange`: a child order with its parent order's range)."""
    columns = fill_inputs(fill_columns, settings)

    def frames(rows: SymbolRange | None) -> tuple[pl.DataFrame, pl.DataFrame]:
        return venue_frames(
            read("fill_quality", rows, columns),
            read("child_orders", rows, CHILD_INPUTS),
            read("order_quality", rows, ORDER_INPUTS),
            settings,
            fill_columns=fill_columns,
        )

    if fill_count <= chunk_fills:
        yield frames(None)
        return
    orders = read("order_quality", None, ["symbol"])
    for rows in day_ranges(read("fill_quality", None, ["symbol"]), orders, chunk_fills):
        yield frames(rows)


def child_wait_s() -> pl.Expr:
    """How long a child order worked before what it did not fill could be routed elsewhere:
    end_ts - sent_ts in seconds (at least 0); 0 without an end_ts (an IOC order, or a resting
    order whose end was not landed: no measured wait)."""
    waited = (pl.col("end_ts") - pl.col("sent_ts")).dt.total_microseconds() / 1e6
    return waited.fill_null(0.0).clip(lower_bound=0.0)


def child_flag() -> pl.Expr:
    """The liquidity flag a child order's style implies."""
    return (
        pl.when(pl.col("order_type") == "MIDPEG")
        .then(pl.lit("MID"))
        .when((pl.col("tif") == "IOC") | (pl.col("order_type") == "MARKET"))
        .then(pl.lit("REMOVE"))
        .otherwise(pl.lit("ADD"))
    )

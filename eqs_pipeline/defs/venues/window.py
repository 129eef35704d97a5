"""Read the trailing window of trade dates into the venue frames.

Two sources serve the same rows: the Parquet lake (`LakeWindow`: Polars reads the daily
partitions, what the window assets use where the lake is a local folder) and the DuckDB
warehouse (`WarehouseWindow`: `eqs venues`, and the window assets where the lake is on object
storage; SQL comes from `sql/`, one statement per file, with the dates bound as parameters).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import duckdb
import polars as pl

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.ranges import Reader, SymbolRange, polars_reader
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.ingest.fingerprint import code_version, window_fingerprint
from eqs_pipeline.storage import lake, warehouse
from eqs_pipeline.venues.frames import (
    ORDER_INPUTS,
    SHARED_COLUMNS,
    order_buckets,
    order_cluster,
    venue_frames_by_range,
)
from eqs_pipeline.venues.routing import (
    DRIFT_INPUTS,
    DelayInputs,
    child_waits,
    day_symbol_days,
    order_drift,
)
from eqs_pipeline.venues.settings import KEY_METRICS, VenueSettings

# What the window's statistics read (`scorecard.venue_scorecard`, `routing`): each fill's and
# child order's venue, buckets, conditions (the scorecard's controls), cluster and weight, the fills' key metrics and quoted
# spread, and the children's executed quantity.
_WINDOW_CELL = tuple(c for c in SHARED_COLUMNS if c != "symbol")
WINDOW_FILL_COLUMNS: tuple[str, ...] = (
    *_WINDOW_CELL,
    "notional",
    "quoted_spread_bps",
    *(m for m in KEY_METRICS if m != "fill_rate"),
)
CHILD_SCHEMA = CONTRACT["child_orders"].polars_schema
# (A child's fill rate is filled_qty / qty, computed where it is estimated; its symbol-day is
# kept once per symbol-day, `VenueWindow.symbol_days`.)
WINDOW_CHILD_COLUMNS: tuple[str, ...] = (*_WINDOW_CELL, "filled_qty")
# What the window reads of a date's venue rows: the columns above, what the clusters' labels are
# made of, and (children) the wait that the routing's cost of a miss sums.
KEPT_FILLS: tuple[str, ...] = (*WINDOW_FILL_COLUMNS, "trade_date", "order_id")
KEPT_CHILDREN: tuple[str, ...] = (*WINDOW_CHILD_COLUMNS, "wait_s", "trade_date", "order_id")

# A date's venue rows as the window reads them (`KEPT_FILLS`, `KEPT_CHILDREN`), stored in the
# lake by venue_daily, which builds the date's venue frames anyway: the window reads them instead
# of building the frames again (a date of 2M fills: 1.2 s read, against 3.4 s built). Not
# tables: no view in the warehouse, no entry in the registry. Each file's footer holds the
# stamp of what its rows were built from (`rows_stamp`); rows with another stamp (other
# settings, other code, an input partition written since) are built again from the tables.
# (In the lake's `_window/` folder: a folder whose name starts with `_` holds no table.)
FILL_ROWS = "_window.fills"
CHILD_ROWS = "_window.children"
ROWS_INPUTS = ("quality.fill_quality", "quality.order_quality", "staging.child_orders")
_STAMP_KEY = "eqs_window_rows"


# DuckDB keeps the table blocks a connection has read cached until its database closes: about
# 2 GiB for a 20-day window of 10M fills, on top of the window's frames. Under a memory limit it
# evicts them as it reads instead. Results handed to Polars are not counted against the limit
# (a 10M-row, 19-column result reads the same under 512 MB), so the limit bounds the cache, not
# how large a trade date may be.
READ_MEMORY_LIMIT = "1GB"
TAPE_MEMORY_LIMIT = "256MB"


# The window's text columns, held as categoricals: a string costs 16 bytes a row in Polars (and
# a cluster label, `trade_date|order_id`, its text besides), a categorical 4. Venues, flags,
# buckets and symbols are few and share Polars' global categories; the clusters (one per
# parent order) get categories of their own, dropped with the window (the global ones never
# shrink, which a long-lived process reading window after window would feel). The conditions
# are an enum already (`frames.conditions_dtype`).
_FEW_VALUES = ("venue", "liquidity_flag", "size_bucket", "liquidity_bucket", "symbol")


def rows_stamp(root: str, day: date, settings: VenueSettings) -> str:
    """What a date's stored venue rows are built from: the venue settings, the code and the
    size and modification time of each of the date's input partitions (`ROWS_INPUTS`). Taken
    before the inputs are read, so rows built from a partition rewritten meanwhile never carry
    its new stamp. FileNotFoundError when an input partition is missing."""
    inputs = []
    for table in ROWS_INPUTS:
        stat = os.stat(lake.partition_path(root, table, day))
        inputs.append((table, stat.st_size, stat.st_mtime_ns))
    text = json.dumps(
        [dataclasses.asdict(settings), inputs, code_version()], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def write_rows(
    root: str,
    day: date,
    fills: pl.DataFrame,
    children: pl.DataFrame,
    settings: VenueSettings,
    stamp: str,
) -> None:
    """Store a date's venue rows (`KEPT_FILLS`, `KEPT_CHILDREN`) with their stamp: the text
    the window holds as categoricals stored as such (read back without decoding each value),
    and no `cluster` where it is the order (`cluster = "order"`: the window labels it from the
    order_id)."""
    for table, frame, columns in (
        (FILL_ROWS, fills, KEPT_FILLS),
        (CHILD_ROWS, children, KEPT_CHILDREN),
    ):
        frame = frame.select(columns).with_columns(
            pl.col(c).cast(pl.Categorical) for c in _FEW_VALUES if c in columns and c != "symbol"
        )
        if settings.cluster == "order":
            frame = frame.drop("cluster")
        lake.write(root, table, frame, day, {_STAMP_KEY: stamp})


def stored_rows(
    root: str, day: date, settings: VenueSettings
) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """A date's stored venue rows (fills, children) when both files carry the stamp of the
    date's inputs, settings and code as they are now; None otherwise (the window then builds
    them from the tables): rows missing, stale, or unreadable, since they only save work."""
    paths = [lake.partition_path(root, table, day) for table in (FILL_ROWS, CHILD_ROWS)]
    try:
        stamp = rows_stamp(root, day, settings)
        if any(pl.read_parquet_metadata(p).get(_STAMP_KEY) != stamp for p in paths):
            return None
        fills, children = (pl.read_parquet(p) for p in paths)
    except (OSError, pl.exceptions.PolarsError):  # FileNotFoundError included
        return None
    if "cluster" not in fills.columns:  # the order (`write_rows`)
        fills, children = (f.with_columns(cluster=pl.col("order_id")) for f in (fills, children))
    return fills, children


def inputs_fingerprint(
    con: duckdb.DuckDBPyConnection, start: date, end: date, settings: object
) -> str:
    """The fingerprint of the window from `start` to `end` (`ingest.fingerprint.window_fingerprint`):
    its trade dates' inputs fingerprints as `staging.ingest_log` records them, the settings (a
    settings dataclass: the venue or the algo analysis') and the code."""
    dates = {}
    if warehouse.table_exists(con, "staging.ingest_log"):
        rows = con.execute(
            warehouse.sql("select_inputs_fingerprints"), {"start": start, "end": end}
        ).fetchall()
        dates = dict(rows)
    text = json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)  # type: ignore[call-overload]
    return window_fingerprint(dates, text)


class NoVenueData(RuntimeError):
    """The warehouse has no fill quality to analyse yet."""


@dataclass(frozen=True)
class VenueWindow:
    start: date
    end: date
    days: int
    fills: pl.DataFrame
    children: pl.DataFrame
    tape_volume: pl.DataFrame
    delays: DelayInputs
    symbol_days: pl.DataFrame  # trade_date, symbol, liquidity_bucket of the window's orders

    @property
    def bounds(self) -> tuple[date, date, int]:
        return self.start, self.end, self.days


class WindowSource(Protocol):
    """Where the window's daily rows are read from."""

    # Whether a date's kept rows are copied into memory Polars owns (`warehouse.detached`):
    # rows read from DuckDB hold the memory of their whole result batch.
    detach: bool

    def trade_dates(self, days: int) -> list[date]:
        """The last `days` trade dates with scored fills, oldest first (NoVenueData if none)."""

    def fills(self, day: date) -> int:
        """The date's scored fills."""

    def stored(
        self, day: date, settings: VenueSettings
    ) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        """The date's venue rows as venue_daily stored them (`stored_rows`), if they hold."""

    def reader(self, day: date, orders: pl.DataFrame | None = None) -> Reader:
        """The date's rows of the tables the venue frames are made of (`core.ranges.Reader`);
        `orders`, the date's order_quality rows already read, serves the reads it can."""

    def tape_volume(self, start: date, end: date) -> pl.DataFrame:
        """Printed volume per trade_date, symbol and venue (`volume`) between the dates."""


def trailing_dates(con: duckdb.DuckDBPyConnection, days: int) -> list[date]:
    """The last `days` trade dates of quality.fill_quality, oldest first."""
    if not warehouse.table_exists(con, "quality.fill_quality"):
        raise NoVenueData(
            "quality.fill_quality does not exist: materialize the daily partitions first "
            "(`eqs run` or the eqs_daily job)"
        )
    rows = con.execute(
        warehouse.sql("select_recent_trade_dates", table="quality.fill_quality"), {"days": days}
    ).fetchall()
    if not rows:
        raise NoVenueData(
            "quality.fill_quality has no rows: materialize the daily partitions first"
        )
    return sorted(r[0] for r in rows)


@dataclass(frozen=True)
class WarehouseWindow:
    """The window's rows from the DuckDB warehouse, read under `READ_MEMORY_LIMIT` (its block
    cache; `TAPE_MEMORY_LIMIT` for the tape's volumes, few rows: under a small limit DuckDB
    evicts the blocks it cached reading the window instead of holding them next to the
    window's rows while it aggregates the prints)."""

    con: duckdb.DuckDBPyConnection
    detach = True

    def trade_dates(self, days: int) -> list[date]:
        return trailing_dates(self.con, days)

    def fills(self, day: date) -> int:
        return warehouse.count_partition(self.con, "quality.fill_quality", day)

    def stored(self, day: date, settings: VenueSettings) -> None:
        return None  # the venue rows are stored in a local lake only

    def reader(self, day: date, orders: pl.DataFrame | None = None) -> Reader:
        return _reader(self.con, day, orders)

    def tape_volume(self, start: date, end: date) -> pl.DataFrame:
        self.con.execute(f"set memory_limit = '{TAPE_MEMORY_LIMIT}'")
        return self.con.execute(
            warehouse.sql("select_tape_volume"), {"start": start, "end": end}
        ).pl()


@dataclass(frozen=True)
class LakeWindow:
    """The window's rows from a local Parquet lake, read by Polars (a date's file is read
    directly, its symbol range's row groups by their statistics): what the warehouse's views
    of the large tables would hand over, without DuckDB's conversion of every row."""

    root: str
    # Polars' own reads: a kept column holds its own memory, no copy needed (0.28 s of a
    # date of 2M fills).
    detach = False

    def trade_dates(self, days: int) -> list[date]:
        dates = lake.partition_dates(self.root, "quality.fill_quality")
        if not dates:
            raise NoVenueData(
                f"the lake {self.root} has no quality.fill_quality partition: materialize the "
                "daily partitions first (`eqs run` or the eqs_daily job)"
            )
        return dates[-days:]

    def fills(self, day: date) -> int:
        return lake.count(self.root, "quality.fill_quality", day)

    def stored(
        self, day: date, settings: VenueSettings
    ) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        return stored_rows(self.root, day, settings)

    def reader(self, day: date, orders: pl.DataFrame | None = None) -> Reader:
        def scan(table: str, where: pl.Expr | None, columns: Sequence[str] | None):
            cached = where is None and table == "order_quality" and orders is not None
            if cached and columns is not None and set(columns) <= set(orders.columns):
                return orders.select(columns)
            name, schema = _TABLES[table]
            return lake.read(self.root, name, day, schema, where=where, columns=columns)

        return polars_reader(scan)

    def tape_volume(self, start: date, end: date) -> pl.DataFrame:
        days = [
            d for d in lake.partition_dates(self.root, "staging.market_trades") if start <= d <= end
        ]
        if not days:
            return pl.DataFrame(
                schema={"trade_date": pl.Date, "symbol": pl.String, "venue": pl.String,
                        "volume": pl.Float64}
            )  # fmt: skip
        prints = pl.scan_parquet(
            [lake.partition_path(self.root, "staging.market_trades", d) for d in sorted(days)]
        )
        return (
            prints.group_by("trade_date", "symbol", "venue")
            .agg(volume=pl.col("size").sum())
            .collect()
        )


def load_window(
    source: WindowSource | duckdb.DuckDBPyConnection,
    settings: VenueSettings,
    *,
    with_tape: bool = True,
    chunk_fills: int = QualitySettings.chunk_fills,
) -> VenueWindow:
    """Fills and child orders of the trailing `settings.window_days` trade dates, enriched, with
    the columns the scorecard and the optimizer read (`WINDOW_FILL_COLUMNS`,
    `WINDOW_CHILD_COLUMNS`), from `source` (a DuckDB connection: the warehouse).

    One trade date at a time: its rows are read, matched by `venue_frames` and narrowed before
    the next date is read, so the peak holds one date's rows next to the narrow window, its
    text as categoricals (a 20-day window of 10M fills: 3.4 GiB, where reading the window's
    rows whole took 19 GiB; docs/PERFORMANCE.md, "Reading the window"). Ids are unique per
    trade date only (docs/INGESTION.md), so an order's cluster is labelled with its date
    (`frames.order_cluster`), as `venue_frames` labels it over several dates at once.
    A date of more than `chunk_fills` fills is read in symbol ranges of at most that many
    (`frames.venue_frames_by_range`), so the peak holds one range's rows, not the date's.
    From the warehouse, DuckDB reads under `READ_MEMORY_LIMIT` (its block cache), reset
    afterwards."""
    if not isinstance(source, duckdb.DuckDBPyConnection):
        return _load_window(source, settings, with_tape=with_tape, chunk_fills=chunk_fills)
    source.execute(f"set memory_limit = '{READ_MEMORY_LIMIT}'")
    try:
        return _load_window(
            WarehouseWindow(source), settings, with_tape=with_tape, chunk_fills=chunk_fills
        )
    finally:
        source.execute("reset memory_limit")


def _load_window(
    source: WindowSource, settings: VenueSettings, *, with_tape: bool, chunk_fills: int
) -> VenueWindow:
    dates = source.trade_dates(settings.window_days)
    start, end = dates[0], dates[-1]
    # The fill rows the window keeps, with what the clusters' labels are made of: only the
    # fill table's columns these need are read (`frames.fill_inputs`: 14 of the 31
    # venue_frames can use).
    clusters = pl.Categorical(pl.Categories.random())
    fills, children, waits, drifts, symbol_days = [], [], [], [], []
    for day in dates:
        count = source.fills(day)
        # What a miss costs in time (routing): the orders' drift while they worked, the child
        # orders' waits; summed per segment here, so the window's rows do not carry them. The
        # date's orders are read once, for the drift and the venue frames.
        orders = source.reader(day)(
            "order_quality", None, list(dict.fromkeys((*ORDER_INPUTS, *DRIFT_INPUTS)))
        )
        drifts.append(order_drift(orders, settings))
        symbol_days.append(day_symbol_days(order_buckets(orders.lazy(), settings).collect()))
        stored = source.stored(day, settings)
        if stored is not None:
            parts: Iterable[tuple[pl.DataFrame, pl.DataFrame]] = [stored]
        else:
            parts = venue_frames_by_range(
                source.reader(day, orders), count, settings, chunk_fills, fill_columns=KEPT_FILLS
            )
        del orders, stored
        for day_fills, day_children in parts:
            waits.append(child_waits(day_children))
            # Only what the window keeps (and the clusters' labels are made of) goes on.
            day_children = day_children.select(*WINDOW_CHILD_COLUMNS, "trade_date", "order_id")
            if settings.cluster == "order":  # one date's cluster is its order_id: add the date
                day_fills, day_children = _order_clusters(day_fills, day_children, clusters)
            fills.append(_compact(day_fills.select(WINDOW_FILL_COLUMNS), clusters, source.detach))
            children.append(
                _compact(day_children.select(WINDOW_CHILD_COLUMNS), clusters, source.detach)
            )
            del day_fills, day_children
    tape = source.tape_volume(start, end) if with_tape else pl.DataFrame()
    return VenueWindow(
        start=start,
        end=end,
        days=len(dates),
        fills=pl.concat(fills),
        children=pl.concat(children),
        tape_volume=tape,
        delays=DelayInputs.summed(waits, drifts),
        symbol_days=pl.concat(symbol_days).unique(),
    )


# The tables `venue_frames_by_range` reads, in the warehouse, with the contract types to cast to.
_TABLES = {
    "fill_quality": ("quality.fill_quality", None),
    "order_quality": ("quality.order_quality", None),
    "child_orders": ("staging.child_orders", CHILD_SCHEMA),
}


def _reader(
    con: duckdb.DuckDBPyConnection, day: date, orders: pl.DataFrame | None = None
) -> Reader:
    """One trade date's rows of the warehouse tables the venue frames are made of; a symbol
    range's rows are selected by DuckDB (the fills are stored in symbol order, so its zone
    maps skip most of the date), a child order by its parent order's symbol. `orders`, the
    date's order_quality rows already read, serves the reads of whole-date orders it has the
    columns of."""

    def read(table: str, rows: SymbolRange | None, columns) -> pl.DataFrame:
        name, schema = _TABLES[table]
        cached = rows is None and table == "order_quality" and orders is not None
        if cached and set(columns) <= set(orders.columns):
            return orders.select(columns)
        if rows is None:
            return warehouse.read_partition(con, name, day, schema, columns)
        query = "select_partition_symbol_range"
        if table == "child_orders":
            query = "select_partition_children_of_symbol_range"
        bounds = {"first": rows.first, "last": rows.last, "first_range": rows.first_range}
        return warehouse.read_partition(con, name, day, schema, columns, query=query, params=bounds)

    return read


def _order_clusters(
    fills: pl.DataFrame, children: pl.DataFrame, clusters: pl.Categorical
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One date's rows with the cluster of `cluster = "order"` over the window: each order
    labelled `trade_date|order_id` (`frames.order_cluster`) once, in the window's categories,
    and joined to the rows by its id (the key within a date): 40 ms for a date of 500k fills
    and 578k child orders, against 105 ms for labelling every row."""
    ids = pl.concat([frame.select("trade_date", "order_id") for frame in (fills, children)])
    labels = ids.unique().select("order_id", cluster=order_cluster().cast(clusters))
    fills, children = (
        frame.drop("cluster").join(labels, on="order_id", how="left", maintain_order="left")
        for frame in (fills, children)
    )
    return fills, children


def _compact(frame: pl.DataFrame, clusters: pl.Categorical, detach: bool) -> pl.DataFrame:
    """A date's window rows as they are kept: text as categoricals (`_FEW_VALUES`, and the
    clusters in the window's own categories), with `detach` every column copied into memory
    Polars owns (`warehouse.detached`). A 20-day window of 10M fills: 2.03 GiB, against 3.97
    as strings."""
    frame = frame.with_columns(
        pl.col(c).cast(pl.Categorical) for c in _FEW_VALUES if c in frame.columns
    )
    if frame.schema["cluster"] != clusters:  # labelled per row (`cluster = "symbol_day"`)
        frame = frame.with_columns(pl.col("cluster").cast(pl.String).cast(clusters))
    return warehouse.detached(frame) if detach else frame

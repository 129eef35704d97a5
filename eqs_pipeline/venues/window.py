"""Read the trailing window of trade dates from the warehouse into the venue frames.

Used by the Dagster window assets and by `eqs venues`; SQL comes from `sql/` (one statement per
file), with the dates bound as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from eqs_pipeline import warehouse
from eqs_pipeline.contract import CONTRACT
from eqs_pipeline.venues.frames import venue_frames
from eqs_pipeline.venues.settings import VenueSettings


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

    @property
    def bounds(self) -> tuple[date, date, int]:
        return self.start, self.end, self.days


def _range(con: duckdb.DuckDBPyConnection, table: str, start: date, end: date) -> pl.DataFrame:
    return con.execute(
        warehouse.sql("select_date_range", table=table), {"start": start, "end": end}
    ).pl()


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


def load_window(
    con: duckdb.DuckDBPyConnection, settings: VenueSettings, *, with_tape: bool = True
) -> VenueWindow:
    """Fills and child orders of the trailing `settings.window_days` trade dates, enriched.

    Ids are unique per trade date only (docs/INGESTION.md) and may repeat across the window's
    dates: the rows are read whole per date and `venue_frames` matches them on (trade_date,
    child_id) and (trade_date, order_id)."""
    dates = trailing_dates(con, settings.window_days)
    start, end = dates[0], dates[-1]
    fills = _range(con, "quality.fill_quality", start, end).lazy()
    orders = _range(con, "quality.order_quality", start, end).lazy()
    schema = dict(CONTRACT["child_orders"].polars_schema)
    children = (
        _range(con, "staging.child_orders", start, end)
        .with_columns(pl.col(c).cast(t) for c, t in schema.items())
        .lazy()
    )
    tape = (
        con.execute(warehouse.sql("select_tape_volume"), {"start": start, "end": end}).pl()
        if with_tape
        else pl.DataFrame()
    )
    venue_fills, venue_children = venue_frames(fills, children, orders, settings)
    return VenueWindow(
        start=start,
        end=end,
        days=len(dates),
        fills=venue_fills,
        children=venue_children,
        tape_volume=tape,
    )

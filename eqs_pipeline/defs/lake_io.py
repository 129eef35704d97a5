"""Reading a trade date from the Parquet lake inside a step: the readers every domain's
daily assets share, failing the step clearly when a partition is not there yet."""

from collections.abc import Sequence

import dagster as dg
import polars as pl

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.ranges import Reader, polars_reader
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.storage import lake


def read_lake(
    paths: EqsPathsResource,
    table: str,
    trade_date,
    schema: dict | None = None,
    columns: Sequence[str] | None = None,
    where: pl.Expr | None = None,
) -> pl.LazyFrame:
    """One trade date of a lake table (only the rows `where` selects and only `columns` when
    given), failing the step clearly if it is not there yet."""
    try:
        return lake.read(
            paths.lake_root, table, trade_date, schema, where=where, columns=columns
        ).lazy()
    except lake.MissingPartition as exc:
        raise dg.Failure(description=str(exc)) from exc


def read_staged(
    paths: EqsPathsResource,
    table: str,
    trade_date,
    columns: Sequence[str] | None = None,
    where: pl.Expr | None = None,
) -> pl.LazyFrame:
    """One trade date of a staged contract table from the lake, typed as the contract says."""
    schema = CONTRACT[table].polars_schema
    return read_lake(paths, f"staging.{table}", trade_date, schema, columns, where)


def lake_reader(paths: EqsPathsResource, trade_date) -> Reader:
    """The reader of `score_day` and `venues.daily.venue_day`: the date's staged tables from
    the lake, typed as the contract says, and its scored fills and orders ("fill_quality",
    "order_quality"); a missing partition fails the step clearly."""

    def scan(table: str, where: pl.Expr | None, columns) -> pl.DataFrame:
        if table in ("fill_quality", "order_quality"):
            rows = read_lake(paths, f"quality.{table}", trade_date, None, columns, where)
        else:
            rows = read_staged(paths, table, trade_date, columns, where)
        return rows.collect()

    return polars_reader(scan)

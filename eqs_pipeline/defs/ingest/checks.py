"""Conservation: every landed row of a partition is staged, quarantined or a collapsed duplicate.

The landed side is recounted from the landing files themselves (independently of the ingestion
code path). The other side is counted where the asset keeps its rows: a trade date's staged,
quarantined and collapsed rows in its lake partitions (no DuckDB, so the check runs beside other
trade dates without the pool); the undated instruments in the warehouse, under the pool. That
the warehouse holds exactly the lake's rows is the `loaded` check of `warehouse/day`.
"""

from datetime import date

import dagster as dg
import polars as pl

from eqs_pipeline.core.contract import DATED_TABLES
from eqs_pipeline.defs.batch import partition_dates
from eqs_pipeline.defs.ingest.assets import (
    INGEST_LOG_TABLE,
    INSTRUMENTS_KEY,
    QUARANTINE_KEY,
    STAGING_KEYS,
)
from eqs_pipeline.defs.metadata import markdown_table
from eqs_pipeline.defs.partitions import trade_date_partitions
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource
from eqs_pipeline.ingest import count_landed_rows
from eqs_pipeline.storage import lake, warehouse


def _lake_accounting(paths: EqsPathsResource, trade_date: date) -> dict[str, tuple[int, int]]:
    """source_table -> (quarantined rows, collapsed duplicates) of one trade date, from the lake."""
    root = paths.lake_root
    quarantined = lake.read(root, "staging.quarantine", trade_date).group_by("source_table").len()
    collapsed = (
        lake.read(root, INGEST_LOG_TABLE, trade_date)
        .group_by("source_table")
        .agg(pl.col("collapsed_duplicates").sum())
    )
    q = dict(quarantined.iter_rows())
    c = dict(collapsed.iter_rows())
    return {t: (int(q.get(t) or 0), int(c.get(t) or 0)) for t in set(q) | set(c)}


def _warehouse_accounting(con, trade_date: date | None) -> dict[str, tuple[int, int]]:
    return {
        row[0]: (row[1], row[2])
        for row in con.execute(
            warehouse.sql("select_partition_accounting"), {"trade_date": trade_date}
        ).fetchall()
    }


def _frame(paths: EqsPathsResource, trade_date: date | None, staged, accounting) -> pl.DataFrame:
    rows = []
    for table, count in staged.items():
        quarantined, collapsed = accounting.get(table, (0, 0))
        rows.append(
            {
                "table": table,
                "landed": count_landed_rows(paths.landing_root, table, trade_date),
                "staged": count,
                "quarantined": quarantined,
                "collapsed_duplicates": collapsed,
            }
        )
    return pl.DataFrame(rows).with_columns(
        balance=pl.col("landed")
        - pl.col("staged")
        - pl.col("quarantined")
        - pl.col("collapsed_duplicates")
    )


def conservation_frame(
    paths: EqsPathsResource, tables: tuple[str, ...], trade_date: date | None
) -> pl.DataFrame:
    """landed, staged, quarantined and collapsed rows per table of one trade date, counted in
    the lake; None: the undated instruments, counted in the warehouse (hold the pool)."""
    if trade_date is not None:
        staged = {t: lake.count(paths.lake_root, f"staging.{t}", trade_date) for t in tables}
        return _frame(paths, trade_date, staged, _lake_accounting(paths, trade_date))
    with paths.connect(read_only=True) as con:
        staged = {
            t: con.execute(warehouse.sql("count_rows", table=f"staging.{t}")).fetchall()[0][0]
            for t in tables
        }
        accounting = _warehouse_accounting(con, None)
    return _frame(paths, None, staged, accounting)


def _result(frame: pl.DataFrame) -> dg.AssetCheckResult:
    lost = frame.filter(pl.col("balance") != 0)
    return dg.AssetCheckResult(
        passed=lost.height == 0,
        metadata={
            "accounting": dg.MetadataValue.md(markdown_table(frame)),
            "landed_rows": dg.MetadataValue.int(int(frame["landed"].sum())),
            "unaccounted_rows": dg.MetadataValue.int(int(lost["balance"].abs().sum())),
        },
    )


@dg.asset_check(
    asset=QUARANTINE_KEY,
    name="conservation",
    blocking=True,
    partitions_def=trade_date_partitions,
    additional_deps=list(STAGING_KEYS.values()),
    description="For every table of each trade date of the run: landed rows = staged + "
    "quarantined + collapsed identical duplicates (counted in the trade date's lake "
    "partitions).",
)
def conservation(
    context: dg.AssetCheckExecutionContext, paths: EqsPathsResource
) -> dg.AssetCheckResult:
    days = partition_dates(context)
    frames = [
        conservation_frame(paths, DATED_TABLES, day).insert_column(
            0, pl.lit(day).alias("trade_date")
        )
        for day in days
    ]
    frame = pl.concat(frames)
    return _result(frame if len(days) > 1 else frame.drop("trade_date"))


@dg.asset_check(
    asset=INSTRUMENTS_KEY,
    name="conservation",
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="Landed instrument rows = staged + quarantined + collapsed identical duplicates.",
)
def instruments_conservation(paths: EqsPathsResource) -> dg.AssetCheckResult:
    return _result(conservation_frame(paths, ("instruments",), None))

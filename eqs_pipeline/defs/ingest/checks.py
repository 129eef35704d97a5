"""Conservation: every landed row of a partition is staged, quarantined or a collapsed duplicate.

The landed side is recounted from the landing files themselves (independently of the ingestion
code path); the other side is counted in the warehouse.
"""

from datetime import date

import dagster as dg
import polars as pl

from eqs_pipeline import warehouse
from eqs_pipeline.contract import DATED_TABLES
from eqs_pipeline.defs.ingest.assets import INSTRUMENTS_KEY, QUARANTINE_KEY, STAGING_KEYS
from eqs_pipeline.defs.metadata import markdown_table
from eqs_pipeline.defs.partitions import partition_date, trade_date_partitions
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.ingest import count_landed_rows


def conservation_frame(
    paths: EqsPathsResource, tables: tuple[str, ...], trade_date: date | None
) -> pl.DataFrame:
    """landed, staged, quarantined and collapsed rows per table of one trade date (None: the
    undated instruments)."""
    with paths.connect(read_only=True) as con:
        accounting = {
            row[0]: (row[1], row[2])
            for row in con.execute(
                warehouse.sql("select_partition_accounting"), {"trade_date": trade_date}
            ).fetchall()
        }
        rows = []
        for table in tables:
            if trade_date is None:
                count = con.execute(warehouse.sql("count_rows", table=f"staging.{table}"))
            else:
                count = con.execute(
                    warehouse.sql("count_partition_rows", table=f"staging.{table}"),
                    {"trade_date": trade_date},
                )
            staged = count.fetchall()[0][0]
            quarantined, collapsed = accounting.get(table, (0, 0))
            rows.append(
                {
                    "table": table,
                    "landed": count_landed_rows(paths.landing_dir, table, trade_date),
                    "staged": staged,
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
    description="For every table of the trade date: landed rows = staged + quarantined + "
    "collapsed identical duplicates.",
)
def conservation(
    context: dg.AssetCheckExecutionContext, paths: EqsPathsResource
) -> dg.AssetCheckResult:
    return _result(conservation_frame(paths, DATED_TABLES, partition_date(context)))


@dg.asset_check(
    asset=INSTRUMENTS_KEY,
    name="conservation",
    blocking=True,
    description="Landed instrument rows = staged + quarantined + collapsed identical duplicates.",
)
def instruments_conservation(paths: EqsPathsResource) -> dg.AssetCheckResult:
    return _result(conservation_frame(paths, ("instruments",), None))

"""`warehouse/day`: load one trade date from the Parquet lake into the DuckDB warehouse.

The daily compute assets (staging, quality, venue_daily) write lake partitions and never open
the DuckDB file; this step is the only daily one that does. It takes the pool
`duckdb_warehouse` (one slot, dagster.yaml) and replaces the trade date's rows of every daily
warehouse table in one transaction (delete-then-insert), so re-materializing a date never
doubles or loses a row and a failure leaves the previous contents in place. The lake files are
read before the warehouse is opened, so the slot is held only for the inserts.
"""

import dagster as dg
import polars as pl

from eqs_pipeline import lake, warehouse
from eqs_pipeline.defs.ingest.assets import QUARANTINE_KEY, STAGING_KEYS, STAGING_LAKE_TABLES
from eqs_pipeline.defs.metadata import markdown_table
from eqs_pipeline.defs.partitions import partition_date, trade_date_partitions
from eqs_pipeline.defs.quality.assets import EVENTS_KEY, FILL_QUALITY_KEY, ORDER_QUALITY_KEY
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource
from eqs_pipeline.defs.venues.assets import VENUE_BUCKETS_KEY, VENUE_DAILY_KEY
from eqs_pipeline.defs.warehouse import WAREHOUSE_DAY_KEY

_COMPUTED = [FILL_QUALITY_KEY, ORDER_QUALITY_KEY, EVENTS_KEY, VENUE_DAILY_KEY, VENUE_BUCKETS_KEY]
# Every warehouse table with one partition per trade date, in load order.
DAILY_TABLES = (*STAGING_LAKE_TABLES, *(".".join(key.path) for key in _COMPUTED))
LOADED_CHECK = "loaded"


@dg.asset(
    key=WAREHOUSE_DAY_KEY,
    deps=[*STAGING_KEYS.values(), QUARANTINE_KEY, *_COMPUTED],
    partitions_def=trade_date_partitions,
    group_name="warehouse",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            LOADED_CHECK,
            asset=WAREHOUSE_DAY_KEY,
            blocking=True,
            description="Every daily warehouse table holds exactly the rows of the trade "
            "date's lake partition.",
        )
    ],
)
def day(context: dg.AssetExecutionContext, paths: EqsPathsResource) -> dg.MaterializeResult:
    """The trade date's rows of every daily warehouse table (staging, quarantine, ingest log,
    fill / order quality, events, venue daily and buckets), replaced from the lake in one
    transaction."""
    trade_date = partition_date(context)
    try:
        frames = {table: lake.read(paths.lake_root, table, trade_date) for table in DAILY_TABLES}
    except lake.MissingPartition as exc:
        raise dg.Failure(description=str(exc)) from exc
    with paths.connect() as con:
        warehouse.replace_partitions(con, frames, trade_date)
        loaded = {table: warehouse.count_partition(con, table, trade_date) for table in frames}
    counts = pl.DataFrame(
        {
            "table": list(frames),
            "lake_rows": [frames[t].height for t in frames],
            "warehouse_rows": [loaded[t] for t in frames],
        }
    )
    mismatched = counts.filter(pl.col("lake_rows") != pl.col("warehouse_rows"))
    return dg.MaterializeResult(
        metadata={
            "tables": dg.MetadataValue.md(markdown_table(counts, max_rows=len(frames))),
            "dagster/row_count": dg.MetadataValue.int(int(counts["warehouse_rows"].sum())),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=LOADED_CHECK,
                passed=mismatched.height == 0,
                metadata={"mismatched_tables": dg.MetadataValue.int(mismatched.height)},
            )
        ],
    )

"""`warehouse/day`: load one trade date from the Parquet lake into the DuckDB warehouse.

The daily compute assets (staging, quality, venue_daily) write lake partitions and never open
the DuckDB file; this step is the only daily one that does. It takes the pool
`duckdb_warehouse` (one slot, dagster.yaml) and replaces the trade date's rows of every daily
warehouse table in one transaction (delete-then-insert), so re-materializing a date never
doubles or loses a row and a failure leaves the previous contents in place. DuckDB reads the
lake files itself (`read_parquet`), so the slot is held only for a native bulk load.
"""

import dagster as dg
import polars as pl

from eqs_pipeline.defs.ingest.assets import QUARANTINE_KEY, STAGING_KEYS, STAGING_LAKE_TABLES
from eqs_pipeline.defs.metadata import markdown_table
from eqs_pipeline.defs.partitions import partition_date, trade_date_partitions
from eqs_pipeline.defs.quality.assets import EVENTS_KEY, FILL_QUALITY_KEY, ORDER_QUALITY_KEY
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource
from eqs_pipeline.defs.venues.assets import VENUE_BUCKETS_KEY, VENUE_DAILY_KEY
from eqs_pipeline.defs.warehouse import WAREHOUSE_DAY_KEY
from eqs_pipeline.storage import lake, warehouse

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
    missing = [t for t in DAILY_TABLES if not lake.exists(paths.lake_root, t, trade_date)]
    if missing:
        raise dg.Failure(
            description=f"the lake has no {trade_date} partition of {', '.join(missing)} under "
            f"{paths.lake_root}: materialize the trade date's daily assets first"
        )
    files = {t: lake.partition_path(paths.lake_root, t, trade_date) for t in DAILY_TABLES}
    with paths.connect() as con:
        warehouse.load_partitions(con, files, trade_date)
        counts = pl.DataFrame(
            {
                "table": list(files),
                "lake_rows": [warehouse.count_parquet_rows(con, p) for p in files.values()],
                "warehouse_rows": [warehouse.count_partition(con, t, trade_date) for t in files],
            }
        )
    mismatched = counts.filter(pl.col("lake_rows") != pl.col("warehouse_rows"))
    return dg.MaterializeResult(
        metadata={
            "tables": dg.MetadataValue.md(markdown_table(counts, max_rows=len(files))),
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

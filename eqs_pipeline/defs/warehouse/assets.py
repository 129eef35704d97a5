"""`warehouse/day`: publish the run's trade dates of the Parquet lake in the DuckDB warehouse.

The daily compute assets (staging, quality, venue_daily, metric_series) write lake partitions and never open
the DuckDB file; this step is the only daily one that does. It takes the pool
`duckdb_warehouse` (one slot, dagster.yaml) and, in one transaction, replaces the trade date's
rows of every daily table the warehouse holds (delete-then-insert), so re-materializing a date
never doubles or loses a row and a failure leaves the previous contents in place. DuckDB reads
the lake files itself (`read_parquet`), so the slot is held only for a native bulk load.

The large tables (`spec.Table.lake`: staged child orders, fills, quotes and tape, and the
scored fills) are not copied: the warehouse holds a view over their lake partitions, which
this step creates (or re-points at the lake) in the same transaction. Where the lake is on
object storage they are loaded like the others (docs/ARCHITECTURE.md, "Where each table
lives").
"""

from pathlib import Path

import dagster as dg
import polars as pl

from eqs_pipeline.defs.batch import partition_dates
from eqs_pipeline.defs.ingest.assets import QUARANTINE_KEY, STAGING_KEYS, STAGING_LAKE_TABLES
from eqs_pipeline.defs.metadata import markdown_table
from eqs_pipeline.defs.monitor.assets import SERIES_KEY
from eqs_pipeline.defs.partitions import trade_date_partitions
from eqs_pipeline.defs.quality.assets import (
    COST_PREDICTIONS_KEY,
    EVENTS_KEY,
    FILL_QUALITY_KEY,
    ORDER_QUALITY_KEY,
)
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource
from eqs_pipeline.defs.venues.assets import VENUE_BUCKETS_KEY, VENUE_DAILY_KEY
from eqs_pipeline.defs.warehouse import WAREHOUSE_DAY_KEY
from eqs_pipeline.storage import lake, warehouse
from eqs_pipeline.tables.ddl import LAKE_TABLES, lake_view_statement
from eqs_pipeline.tables.registry import table

_COMPUTED = [
    FILL_QUALITY_KEY,
    ORDER_QUALITY_KEY,
    COST_PREDICTIONS_KEY,
    EVENTS_KEY,
    VENUE_DAILY_KEY,
    VENUE_BUCKETS_KEY,
    SERIES_KEY,
]
# Every warehouse table with one partition per trade date, in load order.
DAILY_TABLES = (*STAGING_LAKE_TABLES, *(".".join(key.path) for key in _COMPUTED))


def viewed_tables(lake_root: str) -> tuple[str, ...]:
    """The daily tables the warehouse holds as views over the lake: the registry's lake tables
    where the lake is a local folder, none where it is on object storage."""
    return () if lake.is_remote(lake_root) else tuple(t for t in DAILY_TABLES if t in LAKE_TABLES)


def lake_views(lake_root: str) -> dict[str, str]:
    """Each viewed table's `create or replace view` statement over its lake partitions (by
    absolute path: the view reads them wherever its query runs from)."""
    if not lake.is_remote(lake_root):
        lake_root = str(Path(lake_root).resolve())
    return {
        table: lake_view_statement(
            table,
            lake.partition_glob(lake_root, table)
            if lake.partition_dates(lake_root, table)
            else None,
        )
        for table in viewed_tables(lake_root)
    }


LOADED_CHECK = "loaded"
# The tables of the cost model's job (`eqs_train`): empty until it first runs, so that
# analysts' queries of them (and of `model.cost_predictions`, which names the registry's
# models) work from the start.
MODEL_TABLES = ("model.model_versions", "model.quality_forecast")


def _ensure_model_tables(con) -> None:
    for name in MODEL_TABLES:
        if not warehouse.table_exists(con, name):
            with warehouse.transaction(con):
                empty = pl.DataFrame(schema=table(name).polars_schema)
                warehouse.replace_table(con, name, empty)


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
    """The rows of the run's trade dates in every daily warehouse table (staging, quarantine,
    ingest log, order quality, events, venue daily and buckets, metric series), replaced from the lake in one
    transaction; the large tables are views over the lake."""
    days = partition_dates(context)
    missing = [
        f"{t} ({d})" for d in days for t in DAILY_TABLES if not lake.exists(paths.lake_root, t, d)
    ]
    if missing:
        raise dg.Failure(
            description=f"the lake has no partition of {', '.join(missing)} under "
            f"{paths.lake_root}: materialize the trade date's daily assets first"
        )
    files = {d: {t: lake.partition_path(paths.lake_root, t, d) for t in DAILY_TABLES} for d in days}
    views = lake_views(paths.lake_root)
    loaded = {d: {t: p for t, p in fs.items() if t not in views} for d, fs in files.items()}
    lake_rows = [
        {"trade_date": d, "table": t, "lake_rows": lake.count(paths.lake_root, t, d)}
        for d in days
        for t in DAILY_TABLES
    ]  # from each file's footer
    with paths.connect() as con:
        warehouse.load_days(con, loaded, views)
        _ensure_model_tables(con)
        stored = pl.concat(
            warehouse.count_partitions(con, t, days).with_columns(table=pl.lit(t))
            for t in DAILY_TABLES
        )
    counts = (
        pl.DataFrame(lake_rows)
        .join(stored, on=["trade_date", "table"], how="left")
        .with_columns(pl.col("warehouse_rows").fill_null(0))
    )
    if len(days) == 1:
        counts = counts.drop("trade_date")
    mismatched = counts.filter(pl.col("lake_rows") != pl.col("warehouse_rows"))
    return dg.MaterializeResult(
        metadata={
            "tables": dg.MetadataValue.md(markdown_table(counts, max_rows=counts.height)),
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

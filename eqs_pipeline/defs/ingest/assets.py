"""Staging assets: landed files -> validated `staging.*` tables and `staging.quarantine`.

The daily multi-asset reads every contract table of one trade date, applies the row rules of
`eqs_pipeline.ingest` and writes the staged tables, the quarantined rows and the ingest log as
partitions of the Parquet lake (no DuckDB, no pool: trade dates stage in parallel); the load
step `warehouse/day` copies them into the warehouse in one transaction. A file-level problem
fails the partition before anything is written, so nothing partial ever lands.

`staging/instruments` (undated, small) writes the warehouse under the pool and keeps a copy in
the lake, which the daily steps read.
"""

from datetime import date

import dagster as dg
import polars as pl

from eqs_pipeline.core.contract import DATED_TABLES
from eqs_pipeline.costmodel.registry import in_service_tag
from eqs_pipeline.defs.batch import Outputs, each_date, partition_dates
from eqs_pipeline.defs.checks import schema_check_result, schema_check_spec
from eqs_pipeline.defs.metadata import columns_metadata, frame_metadata, markdown_table
from eqs_pipeline.defs.model.resources import read_registry
from eqs_pipeline.defs.partitions import trade_date_partitions
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource, MetricSettingsResource
from eqs_pipeline.ingest import (
    IngestResult,
    LandingError,
    read_table,
    validate_instruments,
    validate_partition,
)
from eqs_pipeline.ingest.fingerprint import INSTRUMENTS, date_files, files_bytes
from eqs_pipeline.ingest.fingerprint import inputs_fingerprint as fingerprint_of
from eqs_pipeline.storage import lake, warehouse

INSTRUMENTS_KEY = dg.AssetKey(["staging", "instruments"])
QUARANTINE_KEY = dg.AssetKey(["staging", "quarantine"])
# The instruments asset's check of its quarantined rows (QUARANTINE_KEY's `schema` check is
# staging_day's: a check key can be declared by one op only).
INSTRUMENTS_QUARANTINE_CHECK = "quarantine_schema"
INGEST_LOG_TABLE = "staging.ingest_log"
STAGING_KEYS = {table: dg.AssetKey(["staging", table]) for table in DATED_TABLES}
# Every lake table that staging_day writes for a trade date (the load step copies them all).
STAGING_LAKE_TABLES = (
    *(f"staging.{table}" for table in DATED_TABLES),
    "staging.quarantine",
    INGEST_LOG_TABLE,
)


def _table_name(key: dg.AssetKey) -> str:
    return ".".join(key.path)


def _read_or_fail(paths: EqsPathsResource, table: str, trade_date=None) -> pl.DataFrame:
    try:
        return read_table(paths.landing_root, table, trade_date)
    except LandingError as exc:
        raise dg.Failure(
            description=f"{table}: {exc}",
            metadata={"landing": paths.landing_root, "table": table},
        ) from exc


def _ingest_log(result: IngestResult, run_id: str, fingerprint: str) -> pl.DataFrame:
    return result.counts.with_columns(
        run_id=pl.lit(run_id), inputs_fingerprint=pl.lit(fingerprint, pl.String)
    )


def inputs_fingerprint(
    paths: EqsPathsResource, settings: MetricSettingsResource, trade_date: date | None
) -> str:
    """The fingerprint of what a trade date (None: the instruments) is staged from, taken
    before its files are read (`eqs_pipeline.ingest.fingerprint`); a trade date's includes the
    cost model that prices it (`costmodel.registry.in_service_tag`)."""
    files = date_files(paths.landing_root, trade_date)
    dated = files[trade_date.isoformat()] if trade_date else []
    config = settings.fingerprint()
    if trade_date is not None:
        config += "\n" + in_service_tag(read_registry(paths), trade_date)
    return fingerprint_of(dated, files[INSTRUMENTS], config)


def _instruments_quarantine_check(quarantine: pl.DataFrame) -> dg.AssetCheckResult:
    """`staging.quarantine`'s schema check of the instruments' quarantined rows, reported as
    the instruments asset's `quarantine_schema` check."""
    checked = schema_check_result(QUARANTINE_KEY, quarantine)
    return dg.AssetCheckResult(
        check_name=INSTRUMENTS_QUARANTINE_CHECK,
        asset_key=INSTRUMENTS_KEY,
        passed=checked.passed,
        metadata=checked.metadata,
    )


@dg.asset(
    key=INSTRUMENTS_KEY,
    metadata=columns_metadata(INSTRUMENTS_KEY),
    group_name="staging",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "parquet", "polars"},
    check_specs=[
        schema_check_spec(INSTRUMENTS_KEY),
        dg.AssetCheckSpec(
            INSTRUMENTS_QUARANTINE_CHECK,
            asset=INSTRUMENTS_KEY,
            blocking=True,
            description="The instrument rows this run quarantined (`staging.quarantine` with "
            "source_table = 'instruments') conform to the pandera schema `staging.quarantine` "
            "(eqs_pipeline.tables.schemas). The check sits on staging/instruments because "
            "staging/quarantine's own `schema` check belongs to staging_day, which checks the "
            "dated tables' quarantined rows.",
        ),
    ],
)
def instruments(
    context: dg.AssetExecutionContext, paths: EqsPathsResource, settings: MetricSettingsResource
) -> dg.MaterializeResult:
    """Instrument reference data (symbol, currency, tick size, ADV, volatility, ...), replaced
    whole on every run. Bad rows go to `staging.quarantine` with `source_table = 'instruments'`."""
    raw = _read_or_fail(paths, "instruments")
    if raw.height == 0:
        folder = lake.join(paths.landing_root, "instruments")
        raise dg.Failure(
            description=f"no instrument reference data under {folder}: land a Parquet, CSV or "
            "JSON Lines file with symbol, currency, tick_size and adv_shares for every symbol "
            "traded (docs/INGESTION.md)"
        )
    fingerprint = inputs_fingerprint(paths, settings, None)
    result = validate_instruments(raw, settings.ingest(), landing=paths.landing_root)
    staged = result.staged["instruments"]
    with paths.connect() as con, warehouse.transaction(con):
        warehouse.replace_table(con, "staging.instruments", staged)
        for table, frame in (
            ("staging.quarantine", result.quarantine),
            (INGEST_LOG_TABLE, _ingest_log(result, context.run.run_id, fingerprint)),
        ):
            warehouse.replace_rows(
                con, table, frame, "delete_source_table_rows", {"source_table": "instruments"}
            )
    lake.write(paths.lake_root, "staging.instruments", staged, None)
    return dg.MaterializeResult(
        metadata={
            **frame_metadata(staged),
            "quarantined_rows": dg.MetadataValue.int(result.quarantine.height),
        },
        check_results=[
            schema_check_result(INSTRUMENTS_KEY, staged),
            _instruments_quarantine_check(result.quarantine),
        ],
    )


@dg.multi_asset(
    specs=[
        *[
            dg.AssetSpec(
                key,
                metadata=columns_metadata(key),
                group_name="staging",
                deps=[INSTRUMENTS_KEY],
                kinds={"parquet", "polars"},
                description=f"Validated `{table}` rows of the trade date, plus trade_date and "
                "source_file (a lake partition; in the warehouse after `warehouse/day`).",
            )
            for table, key in STAGING_KEYS.items()
        ],
        dg.AssetSpec(
            QUARANTINE_KEY,
            metadata=columns_metadata(QUARANTINE_KEY),
            group_name="staging",
            deps=[INSTRUMENTS_KEY],
            kinds={"parquet", "polars"},
            description="Every landed row that broke a rule: source table, trade date, source "
            "file and row, the original row as JSON, and every reason.",
        ),
    ],
    check_specs=[schema_check_spec(key) for key in [*STAGING_KEYS.values(), QUARANTINE_KEY]],
    partitions_def=trade_date_partitions,
    name="staging_day",
)
def staging_day(
    context: dg.AssetExecutionContext,
    paths: EqsPathsResource,
    settings: MetricSettingsResource,
):
    """Ingest the run's trade dates (one, or a range: `defs/batch.py`) of landed files, one
    date at a time: coerce to the contract, apply every row rule, quarantine bad rows and stage
    the rest as lake partitions."""
    if not lake.exists(paths.lake_root, "staging.instruments", None):
        raise dg.Failure(
            description=f"no staged instruments in the lake {paths.lake_root}: materialize "
            "staging/instruments (job eqs_reference) before the trade dates"
        )
    instruments_frame = lake.read(paths.lake_root, "staging.instruments", None)
    outputs = {key: Outputs(key) for key in (*STAGING_KEYS.values(), QUARANTINE_KEY)}
    landed: dict[str, int] = {}
    days = partition_dates(context)
    landed_bytes = {
        day: files_bytes(date_files(paths.landing_root, day)[day.isoformat()]) for day in days
    }
    staged = each_date(
        days, lambda day: _stage(context, paths, settings, day, instruments_frame), landed_bytes
    )
    for trade_date, result in zip(days, staged, strict=True):
        for table, rows in (
            result.counts.group_by("source_table").agg(pl.col("landed_rows").sum()).iter_rows()
        ):
            landed[table] = landed.get(table, 0) + rows
        for table, key in STAGING_KEYS.items():
            outputs[key].add(trade_date, result.staged[table])
        outputs[QUARANTINE_KEY].add(trade_date, result.quarantine)
    del staged
    quarantine = outputs[QUARANTINE_KEY].whole()
    for table, key in STAGING_KEYS.items():
        quarantined = quarantine.filter(pl.col("source_table") == table).height
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=outputs[key].metadata(
                landed_rows=dg.MetadataValue.int(landed.get(table, 0)),
                quarantined_rows=dg.MetadataValue.int(quarantined),
            ),
        )
        yield outputs[key].schema_check()
    yield dg.MaterializeResult(
        asset_key=QUARANTINE_KEY,
        metadata=outputs[QUARANTINE_KEY].metadata(
            by_table=dg.MetadataValue.md(
                markdown_table(quarantine.group_by("source_table").len().sort("source_table"))
            ),
        ),
    )
    yield outputs[QUARANTINE_KEY].schema_check()


def _stage(
    context: dg.AssetExecutionContext,
    paths: EqsPathsResource,
    settings: MetricSettingsResource,
    trade_date: date,
    instruments_frame: pl.DataFrame,
) -> IngestResult:
    """Stage one trade date: its rows validated and written to its lake partitions (staged
    tables, quarantine, ingest log with the inputs fingerprint taken before reading)."""
    fingerprint = inputs_fingerprint(paths, settings, trade_date)
    # Each table is read when its rules need it and let go once staged (`validate_partition`).
    result = validate_partition(
        lambda table: _read_or_fail(paths, table, trade_date),
        trade_date,
        instruments_frame,
        settings.ingest(),
        landing=paths.landing_root,
    )
    if not result.counts["landed_rows"].sum():
        raise dg.Failure(
            description=f"no landed data for trade date {trade_date} under {paths.landing_root}: "
            f"expected files in <landing>/<table>/date={trade_date}/ for the tables "
            f"{', '.join(DATED_TABLES)}",
        )
    for table, key in STAGING_KEYS.items():
        lake.write(paths.lake_root, _table_name(key), result.staged[table], trade_date)
    lake.write(paths.lake_root, "staging.quarantine", result.quarantine, trade_date)
    lake.write(
        paths.lake_root,
        INGEST_LOG_TABLE,
        _ingest_log(result, context.run.run_id, fingerprint),
        trade_date,
    )
    return result

"""Quality monitoring assets: the metric series per trade date, then the alerts and their
delivery over the whole series (docs/MONITORING.md).

- `monitor/metric_series` (daily, partitioned): reads the date's scored fills and orders, its
  staged child orders and its ingestion log from the Parquet lake and writes the date's
  series to the lake (no pool; `warehouse/day` loads it), like the other daily steps.
- `monitor_alerts` (one window step, tag `eqs/cadence: window`, under the pool): reads the
  series, runs the detectors over every date and rebuilds `monitor.alerts`
  (`monitor.history.rebuild_alerts`: wall-clock times and acknowledgements carried over by
  alert id), then delivers the open alerts to the channels the environment names and keeps
  one `monitor.deliveries` row per alert and channel, written after every attempt.
  Its non-blocking `open_alerts` check warns in the Dagster UI while an alert is open.

Thin wrappers around `eqs_pipeline.monitor`: read, compute, validate, write, attach metadata.
"""

import os
from datetime import date

import dagster as dg
import polars as pl

from eqs_pipeline.defs.batch import Outputs, each_date, lake_bytes, partition_dates
from eqs_pipeline.defs.checks import schema_check_result, schema_check_spec
from eqs_pipeline.defs.ingest.assets import INGEST_LOG_TABLE, QUARANTINE_KEY, STAGING_KEYS
from eqs_pipeline.defs.jobs import WINDOW_TAGS
from eqs_pipeline.defs.lake_io import read_lake, read_staged
from eqs_pipeline.defs.metadata import columns_metadata, frame_metadata, markdown_table
from eqs_pipeline.defs.monitor import checks
from eqs_pipeline.defs.monitor.resources import MonitorConfig
from eqs_pipeline.defs.partitions import trade_date_partitions
from eqs_pipeline.defs.quality.assets import FILL_QUALITY_KEY, ORDER_QUALITY_KEY
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource
from eqs_pipeline.defs.warehouse import WAREHOUSE_DAY_KEY
from eqs_pipeline.monitor.alerts import alerts_to_deliver
from eqs_pipeline.monitor.delivery import (
    CHANNELS,
    DeliveryRecord,
    DeliverySettings,
    deliver,
    records_from_frame,
    records_to_frame,
)
from eqs_pipeline.monitor.history import rebuild_alerts
from eqs_pipeline.monitor.series import metric_series
from eqs_pipeline.storage import lake, warehouse
from eqs_pipeline.tables.registry import table

SERIES_KEY = dg.AssetKey(["monitor", "metric_series"])
ALERTS_KEY = dg.AssetKey(["monitor", "alerts"])
DELIVERIES_KEY = dg.AssetKey(["monitor", "deliveries"])
SERIES_TABLE = "monitor.metric_series"
ALERTS_TABLE = "monitor.alerts"
DELIVERIES_TABLE = "monitor.deliveries"

# What the series reads of each source (only these columns: fill_quality has about 60).
_DIMENSIONS = ["venue", "algo", "broker", "symbol"]
FILL_COLUMNS = [
    "trade_date", "order_id", "child_id", *_DIMENSIONS, "exec_ts", "qty", "price",
    "effective_spread_bps", "price_improvement_bps", "markout_5s_bps", "markout_60s_bps",
]  # fmt: skip
ORDER_COLUMNS = [
    "trade_date", "order_id", "algo", "broker", "symbol", "order_qty", "arrival_mid",
    "fill_rate", "cost_z", "cost_vs_expected_bps", "expected_cost_source",
]  # fmt: skip
CHILD_COLUMNS = ["trade_date", "child_id", "order_id", "venue", "sent_ts", "qty", "tif"]
_SOURCES = [".".join(FILL_QUALITY_KEY.path), "staging.child_orders"]


@dg.asset(
    key=SERIES_KEY,
    deps=[FILL_QUALITY_KEY, ORDER_QUALITY_KEY, STAGING_KEYS["child_orders"], QUARANTINE_KEY],
    partitions_def=trade_date_partitions,
    metadata=columns_metadata(SERIES_KEY),
    description="Per trade date, dimension (desk, venue, algo, broker, symbol), subject and "
    "monitored metric (cost against the model, effective spread, price improvement, markouts, "
    "fill rate, latency, reject, cancel and quarantine shares): the day's weighted mean, its "
    "standard error, weight and the subject's notional (docs/MONITORING.md).",
    group_name="monitor",
    kinds={"parquet", "polars"},
    check_specs=[schema_check_spec(SERIES_KEY)],
)
def series(context: dg.AssetExecutionContext, paths: EqsPathsResource) -> dg.MaterializeResult:
    """The run's trade dates of the metric series, one date at a time."""
    days = partition_dates(context)
    outputs = Outputs(SERIES_KEY)

    def one(day: date) -> pl.DataFrame:
        fills = read_lake(paths, _SOURCES[0], day, columns=FILL_COLUMNS).collect()
        # cost_z and cost_vs_expected_bps exist once a cost model or the formula priced the
        # orders; a partition written before them lacks them (read whole: a date's orders
        # are few).
        orders = read_lake(paths, ".".join(ORDER_QUALITY_KEY.path), day).collect()
        orders = orders.with_columns(
            pl.lit(None, pl.String if c == "expected_cost_source" else pl.Float64).alias(c)
            for c in ORDER_COLUMNS
            if c not in orders.columns
        ).select(ORDER_COLUMNS)
        children = read_staged(paths, "child_orders", day, columns=CHILD_COLUMNS).collect()
        log = read_lake(paths, INGEST_LOG_TABLE, day).collect()
        frame = metric_series(
            fills,
            orders,
            children,
            int(log["quarantined_rows"].sum()),
            int(log["landed_rows"].sum()),
            day,
        )
        lake.write(paths.lake_root, SERIES_TABLE, frame, day)
        return frame

    sizes = lake_bytes(paths.lake_root, _SOURCES, days)
    for day, frame in zip(days, each_date(days, one, sizes), strict=True):
        outputs.add(day, frame)
    frame = outputs.whole()
    figures = {
        "subjects": float(frame.select("dimension", "subject").n_unique()) if frame.height else 0.0
    }
    return dg.MaterializeResult(
        metadata=outputs.metadata(figures), check_results=[outputs.schema_check()]
    )


def read_series(paths: EqsPathsResource) -> pl.DataFrame:
    """Every trade date of the series: from the lake where it is a local folder, else from
    the warehouse (which `warehouse/day` loads)."""
    empty = pl.DataFrame(schema=table(SERIES_TABLE).polars_schema)
    if not lake.is_remote(paths.lake_root):
        dates = lake.partition_dates(paths.lake_root, SERIES_TABLE)
        frames = [lake.read(paths.lake_root, SERIES_TABLE, day) for day in dates]
        return pl.concat([empty, *frames], how="diagonal_relaxed").select(empty.columns)
    with paths.connect(read_only=True) as con:
        if not warehouse.table_exists(con, SERIES_TABLE):
            return empty
        return warehouse.read_table(con, SERIES_TABLE)


def _stored(con, name: str) -> pl.DataFrame:
    schema = table(name).polars_schema
    if not warehouse.table_exists(con, name):
        return pl.DataFrame(schema=schema)
    return warehouse.read_table(con, name, schema)


def _spec(key: dg.AssetKey, description: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        metadata=columns_metadata(key),
        deps=deps,
        description=description,
        group_name="monitor",
        kinds={"duckdb", "polars"},
        tags=WINDOW_TAGS,
    )


@dg.multi_asset(
    specs=[
        _spec(
            ALERTS_KEY,
            "One alert per degradation episode of a subject's metric: opened when a detector "
            "(static threshold, EWMA, CUSUM against the subject's own baseline) alarms, "
            "updated while it lasts, acknowledged with `eqs alerts ack ID`, resolved after "
            "enough dates back in control; severity from the shift and its cost.",
            [SERIES_KEY, WAREHOUSE_DAY_KEY],
        ),
        _spec(
            DELIVERIES_KEY,
            "Per open alert and channel its severity is routed to (webhook, Slack, e-mail): "
            "delivered, failed, or pending with its attempts and next retry.",
            [ALERTS_KEY],
        ),
    ],
    check_specs=[
        schema_check_spec(ALERTS_KEY),
        schema_check_spec(DELIVERIES_KEY),
        checks.open_alerts_spec(ALERTS_KEY),
    ],
    pool=WAREHOUSE_POOL,
    name="monitor_alerts",
)
def monitor_alerts(
    context: dg.AssetExecutionContext, paths: EqsPathsResource, config: MonitorConfig
):
    """Rebuild the alerts over the whole series, then deliver the open ones."""
    try:
        channels = DeliverySettings.from_env(os.environ)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc
    frame = read_series(paths)
    with paths.connect() as con:
        stored = _stored(con, ALERTS_TABLE)
        alerts = rebuild_alerts(frame, stored, config.settings(), config.alert_settings())
        with warehouse.transaction(con):
            warehouse.replace_table(con, ALERTS_TABLE, alerts)
        records = {r.key: r for r in records_from_frame(_stored(con, DELIVERIES_TABLE))}

        def persist(record: DeliveryRecord) -> None:
            # After every attempt: a crash loses at most the attempt in flight, and the
            # receiver drops that repeat by its idempotency key (docs/MONITORING.md).
            records[record.key] = record
            with warehouse.transaction(con):
                warehouse.replace_table(
                    con, DELIVERIES_TABLE, records_to_frame(list(records.values()))
                )

        deliver(alerts_to_deliver(alerts), list(records.values()), channels, on_record=persist)
        deliveries = records_to_frame(list(records.values()))
        with warehouse.transaction(con):
            warehouse.replace_table(con, DELIVERIES_TABLE, deliveries)
    dates = frame["trade_date"].unique().sort() if frame.height else pl.Series([], dtype=pl.Date)
    scored = f"{dates[0]} .. {dates[-1]} ({len(dates)} dates)" if len(dates) else "none"
    status = alerts["status"].value_counts() if alerts.height else None
    counts = dict(status.iter_rows()) if status is not None else {}
    yield dg.MaterializeResult(
        asset_key=ALERTS_KEY,
        metadata={
            **frame_metadata(
                alerts,
                {
                    "open_alerts": float(counts.get("open", 0)),
                    "acknowledged_alerts": float(counts.get("acknowledged", 0)),
                    "resolved_alerts": float(counts.get("resolved", 0)),
                },
            ),
            "series_dates": dg.MetadataValue.text(scored),
        },
        check_results=[
            schema_check_result(ALERTS_KEY, alerts),
            checks.open_alerts_result(ALERTS_KEY, alerts),
        ],
    )
    delivered = deliveries.filter(pl.col("status") == "delivered").height
    pending = deliveries.filter(pl.col("status") == "pending").height
    yield dg.MaterializeResult(
        asset_key=DELIVERIES_KEY,
        metadata={
            **frame_metadata(
                deliveries, {"delivered": float(delivered), "pending": float(pending)}
            ),
            "channels": dg.MetadataValue.text(
                ", ".join(c for c in CHANNELS if channels.enabled(c))
                or "none set (EQS_ALERT_WEBHOOK_URL, EQS_ALERT_SLACK_URL, EQS_SMTP_HOST)"
            ),
            "pending_rows": dg.MetadataValue.md(
                markdown_table(deliveries.filter(pl.col("status") == "pending"), max_rows=20)
            ),
        },
        check_results=[schema_check_result(DELIVERIES_KEY, deliveries)],
    )

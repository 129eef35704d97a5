"""Fill- and order-level quality assets and the ExecutionQualityEvent stream, per trade date.

Thin wrappers: read the partition's staged rows from the Parquet lake, call the pure functions
of `eqs_pipeline.quality`, validate, replace the partition's lake file, attach metadata. They
take no pool and never open the DuckDB file, so trade dates compute in parallel; the load step
`warehouse/day` puts the results into the warehouse.
"""

import dataclasses
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from eqs_pipeline.defs.batch import (
    Outputs,
    combined,
    each_date,
    lake_bytes,
    partition_dates,
)
from eqs_pipeline.defs.checks import schema_check_spec
from eqs_pipeline.defs.ingest.assets import INSTRUMENTS_KEY, STAGING_KEYS
from eqs_pipeline.defs.lake_io import lake_reader, read_lake
from eqs_pipeline.defs.metadata import columns_metadata
from eqs_pipeline.defs.model.resources import ModelsInService
from eqs_pipeline.defs.partitions import trade_date_partitions
from eqs_pipeline.defs.quality.checks import market_data_result, market_data_spec
from eqs_pipeline.defs.resources import EqsPathsResource, MetricSettingsResource
from eqs_pipeline.quality.day import DayQuality, score_day
from eqs_pipeline.quality.events import execution_quality_events as build_events
from eqs_pipeline.storage import lake
from eqs_pipeline.storage.exports import write_events_jsonl
from eqs_pipeline.tables.model import COST_PREDICTIONS

FILL_QUALITY_KEY = dg.AssetKey(["quality", "fill_quality"])
COST_PREDICTIONS_KEY = dg.AssetKey(["model", "cost_predictions"])
MODEL_VERSIONS_KEY = dg.AssetKey(["model", "model_versions"])
ORDER_QUALITY_KEY = dg.AssetKey(["quality", "order_quality"])
EVENTS_KEY = dg.AssetKey(["quality", "execution_quality_events"])


# The lake partitions the quality step reads of a date (what decides whether a run's dates are
# scored together: `batch.each_date`).
STAGED_INPUTS = [f"staging.{t}" for t in ("orders", "executions", "quotes", "market_trades")]


def share_weighted(frame: pl.DataFrame, metric: str, weight: str = "qty") -> float | None:
    known = frame.filter(pl.col(metric).is_not_null())
    total = known[weight].sum()
    return float((known[metric] * known[weight]).sum() / total) if total else None


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            FILL_QUALITY_KEY,
            metadata=columns_metadata(FILL_QUALITY_KEY),
            deps=[STAGING_KEYS["executions"], STAGING_KEYS["quotes"], STAGING_KEYS["orders"]],
            description="One row per fill: the prevailing NBBO (nbb, nbo, mid), quoted and "
            "effective spread, price improvement and quote position, spread capture, fees, and "
            "realized spread, price impact and markout at 1s/5s/15s/60s/300s (docs/METRICS.md).",
            group_name="quality",
            kinds={"parquet", "polars"},
        ),
        dg.AssetSpec(
            ORDER_QUALITY_KEY,
            metadata=columns_metadata(ORDER_QUALITY_KEY),
            deps=[FILL_QUALITY_KEY, STAGING_KEYS["market_trades"], INSTRUMENTS_KEY],
            description="One row per parent order: fill rate, average price, arrival / "
            "interval VWAP / TWAP slippage, participation, implementation shortfall and its "
            "opportunity cost, fees, spreads, passive share, timing, reversion, the market "
            "before arrival, the expected cost of the cost model in service (or the formula) "
            "with its sd, z and percentile, and the difficulty-aware quality score and grade.",
            group_name="quality",
            kinds={"parquet", "polars"},
        ),
        dg.AssetSpec(
            COST_PREDICTIONS_KEY,
            metadata=columns_metadata(COST_PREDICTIONS_KEY),
            deps=[ORDER_QUALITY_KEY, MODEL_VERSIONS_KEY],
            description="One row per order priced by a trained cost model: the model that "
            "priced it (the newest promoted one whose window ended before the trade date), "
            "its expected cost and sd, and each fitted baseline's expected cost.",
            group_name="model",
            kinds={"parquet", "polars"},
        ),
    ],
    partitions_def=trade_date_partitions,
    check_specs=[
        schema_check_spec(FILL_QUALITY_KEY),
        schema_check_spec(ORDER_QUALITY_KEY),
        schema_check_spec(COST_PREDICTIONS_KEY),
        market_data_spec(FILL_QUALITY_KEY),
        market_data_spec(ORDER_QUALITY_KEY),
    ],
    can_subset=True,
)
def quality(
    context: dg.AssetExecutionContext,
    paths: EqsPathsResource,
    settings: MetricSettingsResource,
):
    """Fill and order quality of the run's trade dates, one date at a time, in one step: both
    look up the same NBBO, so the quotes are read and prepared once, and the order metrics take
    the fills from memory (`eqs_pipeline.quality.day.score_day`: a date with more than
    `chunk_fills` fills is scored in symbol ranges, with the same rows). Either asset can be
    materialized alone: order quality then reads the fills' lake file. Besides its blocking
    schema check, each table has a `market_data` check that warns when too many of a date's
    rows lack quotes."""
    selected = context.selected_asset_keys
    metric_settings = settings.quality()
    max_share = metric_settings.max_no_market_data_share
    instruments = read_lake(paths, "staging.instruments", None).collect()
    fills, orders = Outputs(FILL_QUALITY_KEY), Outputs(ORDER_QUALITY_KEY)
    coverage: dict[dg.AssetKey, dict] = {FILL_QUALITY_KEY: {}, ORDER_QUALITY_KEY: {}}
    days = partition_dates(context)

    models = ModelsInService.of(paths, context.log.warning)
    ingest_settings = settings.ingest()
    predictions = Outputs(COST_PREDICTIONS_KEY)
    predicted: dict[date, pl.DataFrame] = {}

    def scored(trade_date: date) -> DayQuality:
        day = score_day(
            lake_reader(paths, trade_date),
            instruments,
            metric_settings,
            fills=FILL_QUALITY_KEY in selected,
            orders=ORDER_QUALITY_KEY in selected or COST_PREDICTIONS_KEY in selected,
        )
        model = models.for_date(trade_date) if day.orders is not None else None
        priced = pl.DataFrame(schema=COST_PREDICTIONS.polars_schema)
        if model is not None:
            # Imported here: pricing reads SciPy's distributions, which a date that no model
            # prices (and the definitions) do not need (0.6 s of imports per step).
            from eqs_pipeline.costmodel.scoring import score_orders

            scored_orders, priced = score_orders(
                day.orders, instruments, model, metric_settings.score, ingest_settings
            )
            day = dataclasses.replace(day, orders=scored_orders)
        if ORDER_QUALITY_KEY not in selected:
            day = dataclasses.replace(day, orders=None)
        for outputs, frame in ((fills, day.fills), (orders, day.orders)):
            if frame is not None:
                lake.write(paths.lake_root, outputs.table, frame, trade_date)
        if COST_PREDICTIONS_KEY in selected:
            lake.write(paths.lake_root, predictions.table, priced, trade_date)
            predicted[trade_date] = priced
        return day

    sizes = lake_bytes(paths.lake_root, STAGED_INPUTS, days)
    for trade_date, day in zip(days, each_date(days, scored, sizes), strict=True):
        if day.ranges > 1:
            context.log.info(
                f"{trade_date}: scored in {day.ranges} symbol ranges of at most "
                f"{metric_settings.chunk_fills:,} fills each"
            )
        for outputs, frame in ((fills, day.fills), (orders, day.orders)):
            if frame is not None:
                outputs.add(trade_date, frame)
                coverage[outputs.key][trade_date] = market_data_result(
                    outputs.key, frame, max_share
                )
    if fills.frames:
        frame = fills.whole()
        yield _described(
            fills,
            {
                "effective_spread_bps": share_weighted(frame, "effective_spread_bps"),
                "price_improvement_bps": share_weighted(frame, "price_improvement_bps"),
                "markout_60s_bps": share_weighted(frame, "markout_60s_bps"),
                "fills_without_quote": float(frame["null_reason"].is_not_null().sum()),
            },
            combined(coverage[FILL_QUALITY_KEY]),
        )
    if orders.frames:
        yield _order_result(orders, combined(coverage[ORDER_QUALITY_KEY]))
    for trade_date, frame in sorted(predicted.items()):
        predictions.add(trade_date, frame)
    if predictions.frames:
        frame = predictions.whole()
        yield _described(
            predictions,
            {
                "orders_priced_by_model": float(frame.height),
                "models_in_service": float(frame["model_version"].n_unique()),
            },
        )


def _order_result(orders: Outputs, *checks: dg.AssetCheckResult) -> dg.MaterializeResult:
    frame = orders.whole()
    # Orders that are not graded (null grade and score) count under orders_ungraded only.
    grades = frame["quality_grade"].drop_nulls().value_counts()
    return _described(
        orders,
        {
            "implementation_shortfall_bps": _notional_weighted(
                frame, "implementation_shortfall_bps"
            ),
            "arrival_slippage_bps": _notional_weighted(frame, "arrival_slippage_bps"),
            # Shares filled / shares ordered, as `eqs summary` reports it (not a mean of ratios).
            "fill_rate": _ratio(frame["filled_qty"].sum(), frame["order_qty"].sum()),
            "mean_quality_score": frame["quality_score"].mean(),
            "mean_cost_z": frame["cost_z"].mean(),
            "orders_priced_by_model": float(
                frame["expected_cost_source"].str.starts_with("cm-").sum()
            ),
            **{f"orders_{g}": float(n) for g, n in grades.iter_rows()},
            "orders_ungraded": float(frame["quality_grade"].null_count()),
        },
        *checks,
    )


def _described(
    outputs: Outputs, figures: dict, *checks: dg.AssetCheckResult
) -> dg.MaterializeResult:
    """The materialization of the run's written partitions, with their checks."""
    return dg.MaterializeResult(
        asset_key=outputs.key,
        metadata=outputs.metadata(figures),
        check_results=[outputs.schema_check(), *checks],
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def _notional_weighted(frame: pl.DataFrame, metric: str) -> float | None:
    weighted = frame.with_columns(_w=pl.col("order_qty") * pl.col("arrival_mid"))
    return share_weighted(weighted, metric, "_w")


@dg.asset(
    key=EVENTS_KEY,
    metadata=columns_metadata(EVENTS_KEY),
    deps=[ORDER_QUALITY_KEY],
    partitions_def=trade_date_partitions,
    group_name="quality",
    kinds={"parquet", "polars"},
    check_specs=[schema_check_spec(EVENTS_KEY)],
)
def execution_quality_events(
    context: dg.AssetExecutionContext, paths: EqsPathsResource
) -> dg.MaterializeResult:
    """One ExecutionQualityEvent per order (versioned JSON payload), also exported as JSON Lines
    to `<exports>/execution_quality_events/date=YYYY-MM-DD/events.jsonl` for consumers."""
    emitted_at = pl.lit(datetime.now(UTC), pl.Datetime("us", "UTC"))
    events, exports = Outputs(EVENTS_KEY), []
    days = partition_dates(context)

    def emitted(trade_date: date) -> tuple[pl.DataFrame, str]:
        orders = read_lake(paths, "quality.order_quality", trade_date)
        frame = build_events(orders, emitted_at).collect()
        lake.write(paths.lake_root, events.table, frame, trade_date)
        export = write_events_jsonl(
            frame, paths.exports_root, "execution_quality_events", f"date={trade_date}"
        )
        return frame, export

    sizes = lake_bytes(paths.lake_root, ["quality.order_quality"], days)
    for trade_date, (frame, export) in zip(days, each_date(days, emitted, sizes), strict=True):
        events.add(trade_date, frame)
        exports.append(export)
    # One date: its file; several: the folder of their `date=` folders.
    export = exports[0] if len(exports) == 1 else str(exports[0]).rsplit("/", 2)[0]
    return dg.MaterializeResult(
        metadata=events.metadata(export=dg.MetadataValue.path(export)),
        check_results=[events.schema_check()],
    )

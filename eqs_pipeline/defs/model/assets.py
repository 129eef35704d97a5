"""The cost model's assets (job `eqs_train`): the training asset `model/model_versions` and
the trend forecasts `model/quality_forecast`.

Thin: read the scored orders of the window from the lake, call the pure training
(`eqs_pipeline.costmodel.train`), store the artifact, apply the promotion rule, and add the
model's row to the registry (lake copy for the daily steps, warehouse table for analysts). The
quality step then prices each trade date with the newest promoted model whose window ended
before it (`resources.ModelsInService`). JAX is imported by the training only.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from eqs_pipeline.costmodel.features import ORDER_INPUTS
from eqs_pipeline.costmodel.trends import TrendSettings
from eqs_pipeline.defs.checks import schema_check_result, schema_check_spec
from eqs_pipeline.defs.ingest.assets import INSTRUMENTS_KEY
from eqs_pipeline.defs.jobs import TRAIN_TAGS
from eqs_pipeline.defs.lake_io import read_lake
from eqs_pipeline.defs.metadata import columns_metadata, markdown_table
from eqs_pipeline.defs.model.checks import promotable_result, promotable_spec
from eqs_pipeline.defs.model.resources import (
    REGISTRY_TABLE,
    CostTrainingConfig,
    ModelsInService,
    load_artifact,
    read_registry,
)
from eqs_pipeline.defs.quality.assets import (
    FILL_QUALITY_KEY,
    MODEL_VERSIONS_KEY,
    ORDER_QUALITY_KEY,
)
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource, MetricSettingsResource
from eqs_pipeline.storage import artifacts, lake, warehouse
from eqs_pipeline.tables.registry import table

ORDER_TABLE = "quality.order_quality"
QUALITY_FORECAST_TABLE = "model.quality_forecast"
QUALITY_FORECAST_KEY = dg.AssetKey(["model", "quality_forecast"])
_TREND = TrendSettings()


def training_window(dates: list[date], as_of: date, window_days: int) -> list[date]:
    """The last `window_days` scored trade dates before `as_of`."""
    return [d for d in sorted(dates) if d < as_of][-window_days:]


def _as_of(config: CostTrainingConfig, dates: list[date]) -> date:
    if config.as_of:
        return date.fromisoformat(config.as_of)
    if not dates:
        raise dg.Failure(
            description="no trade date has been scored yet (the lake has no partition of "
            f"{ORDER_TABLE}): run the daily pipeline before training the cost model"
        )
    return max(dates) + timedelta(days=1)


@dg.asset(
    key=MODEL_VERSIONS_KEY,
    metadata=columns_metadata(MODEL_VERSIONS_KEY),
    deps=[ORDER_QUALITY_KEY, INSTRUMENTS_KEY],
    group_name="model",
    pool=WAREHOUSE_POOL,
    tags=TRAIN_TAGS,
    kinds={"jax", "duckdb", "parquet"},
    check_specs=[schema_check_spec(MODEL_VERSIONS_KEY), promotable_spec(MODEL_VERSIONS_KEY)],
)
def model_versions(
    context: dg.AssetExecutionContext,
    config: CostTrainingConfig,
    paths: EqsPathsResource,
    settings: MetricSettingsResource,
) -> dg.MaterializeResult:
    """Registry of the trained expected-cost models. Each materialization trains one on the
    trailing window of scored trade dates before `as_of` (the window's last `holdout_days`
    held out), scores it and the fitted square-root, Almgren and I-Star baselines on the
    held-out orders, stores it, and adds its row: promoted when it passes the promotion rule
    (docs/MODEL.md), else recorded with the reason while the previous model stays in service."""
    from eqs_pipeline.costmodel import registry
    from eqs_pipeline.costmodel.artifact import ArtifactError
    from eqs_pipeline.costmodel.features import arrival_features
    from eqs_pipeline.costmodel.train import MODEL, promotion, train_cost_model

    training = config.settings()
    dates = lake.partition_dates(paths.lake_root, ORDER_TABLE)
    as_of = _as_of(config, dates)
    window = training_window(dates, as_of, training.window_days)
    context.log.info(
        f"training as of {as_of} on {len(window)} scored trade dates"
        + (f" ({window[0]} to {window[-1]})" if window else "")
    )
    instruments = read_lake(paths, "staging.instruments", None).collect()
    orders = [read_lake(paths, ORDER_TABLE, d, columns=ORDER_INPUTS).collect() for d in window]
    features = arrival_features(
        pl.concat(orders, how="vertical_relaxed") if orders else _no_orders(),
        instruments,
        settings.ingest(),
    )

    def progress(step: int, steps: int, loss: float) -> None:
        context.log.info(f"training step {step}/{steps}: mean NLL {loss:.4f} (standardized)")

    outcome = train_cost_model(features, training, progress)
    current = read_registry(paths)
    if outcome.artifact is None:
        context.log.warning(outcome.message)
        return dg.MaterializeResult(
            metadata={
                "outcome": dg.MetadataValue.text(outcome.message),
                "usable_orders": dg.MetadataValue.int(outcome.orders),
                "models_registered": dg.MetadataValue.int(current.height),
            },
            check_results=[
                schema_check_result(MODEL_VERSIONS_KEY, current),
                promotable_result(MODEL_VERSIONS_KEY, False, outcome.message, None),
            ],
        )
    artifact = outcome.artifact
    version = artifact.version
    # The model that prices `as_of` now (None: the formula), which a new one must beat.
    in_service = ModelsInService(current, context.log.warning).for_date(as_of)
    promoted, reason = promotion(outcome, in_service, training)
    where = artifacts.write(paths.models_root, version, artifact.to_bytes())
    try:
        load_artifact(where, version)
    except ArtifactError as exc:
        promoted, reason = False, f"the stored artifact does not read back: {exc}"
    row = registry.entry(
        outcome,
        trained_at=datetime.now(UTC),
        as_of=as_of,
        promoted=promoted,
        reason=reason,
        hyperparameters=config.model_dump(exclude={"as_of"}),
        artifact=where,
    )
    updated = registry.add(current, row)
    lake.write(paths.lake_root, REGISTRY_TABLE, updated, None)
    with paths.connect() as con:
        warehouse.replace_table(con, REGISTRY_TABLE, updated)
    (context.log.info if promoted else context.log.warning)(f"{version}: {reason}")
    scores = outcome.scores
    figures = {
        f"{who}_{name}": dg.MetadataValue.float(float(scores[who][name]))
        for who in scores
        for name in ("nll", "rmse", "r2", "coverage_50", "coverage_90")
    }
    return dg.MaterializeResult(
        metadata={
            "model_version": dg.MetadataValue.text(version),
            "promoted": dg.MetadataValue.bool(promoted),
            "reason": dg.MetadataValue.text(reason),
            "train_dates": dg.MetadataValue.text(
                f"{outcome.train_dates[0]} to {outcome.train_dates[-1]}"
            ),
            "holdout_dates": dg.MetadataValue.text(
                f"{outcome.holdout_dates[0]} to {outcome.holdout_dates[-1]}"
            ),
            "train_orders": dg.MetadataValue.int(int(artifact.record["train_orders"])),
            "holdout_orders": dg.MetadataValue.int(int(artifact.record["holdout_orders"])),
            "nu": dg.MetadataValue.float(float(artifact.record["nu"])),
            **figures,
            "out_of_sample": dg.MetadataValue.md(_scores_table(scores, MODEL)),
            "calibration": dg.MetadataValue.md(
                markdown_table(outcome.calibration, max_rows=outcome.calibration.height)
            ),
            "artifact": dg.MetadataValue.path(where),
            "dagster/row_count": dg.MetadataValue.int(updated.height),
        },
        check_results=[
            schema_check_result(MODEL_VERSIONS_KEY, updated),
            promotable_result(MODEL_VERSIONS_KEY, promoted, reason, version),
        ],
    )


def _no_orders() -> pl.DataFrame:
    schema = table(ORDER_TABLE).polars_schema
    return pl.DataFrame(schema={c: schema[c] for c in ORDER_INPUTS})


def _scores_table(scores: dict[str, dict[str, float]], model: str) -> str:
    """Held-out figures of the model and of each baseline, one row each."""
    rows = [
        {"predictor": who, **{k: round(v, 4) for k, v in s.items() if k != "n"}}
        for who, s in sorted(scores.items(), key=lambda kv: (kv[0] != model, kv[0]))
    ]
    return markdown_table(pl.DataFrame(rows), max_rows=len(rows))


class TrendConfig(dg.Config):
    """History, horizon and the orders a series needs (defaults: `costmodel.trends`)."""

    window_days: int = Field(_TREND.window_days, description="Trade dates of history.")
    horizon: int = Field(_TREND.horizon, description="Trade dates forecast.")
    min_orders: float = Field(_TREND.min_orders, description="Orders a subject needs.")
    min_daily_orders: float = Field(_TREND.min_daily_orders, description="Fewer: day missing.")
    min_history: int = Field(_TREND.min_history, description="Observed days a series needs.")


@dg.asset(
    key=QUALITY_FORECAST_KEY,
    metadata=columns_metadata(QUALITY_FORECAST_KEY),
    deps=[ORDER_QUALITY_KEY, FILL_QUALITY_KEY, MODEL_VERSIONS_KEY],
    group_name="model",
    pool=WAREHOUSE_POOL,
    tags=TRAIN_TAGS,
    kinds={"jax", "duckdb"},
    check_specs=[schema_check_spec(QUALITY_FORECAST_KEY)],
)
def quality_forecast(
    context: dg.AssetExecutionContext, config: TrendConfig, paths: EqsPathsResource
) -> dg.MaterializeResult:
    """Trend forecasts of the daily mean cost_z and cost_vs_expected_bps (desk, algos,
    brokers, venues with enough orders) for the next trade dates, with 80% and 95% intervals
    from a local-level model fitted by maximum likelihood; the rolling-origin backtest of the
    intervals' coverage is in the metadata."""
    from eqs_pipeline.costmodel.trends import daily_series, forecast_trends

    settings = TrendSettings(
        window_days=config.window_days,
        horizon=config.horizon,
        min_orders=config.min_orders,
        min_daily_orders=config.min_daily_orders,
        min_history=config.min_history,
    )
    dates = sorted(lake.partition_dates(paths.lake_root, ORDER_TABLE))[-settings.window_days :]
    orders = [
        read_lake(paths, ORDER_TABLE, d, columns=_TREND_ORDER_COLUMNS).collect() for d in dates
    ]
    fills = [
        read_lake(paths, "quality.fill_quality", d, columns=_TREND_FILL_COLUMNS).collect()
        for d in dates
    ]
    if orders:
        shares = _venue_shares(pl.concat(fills))
        series = daily_series(pl.concat(orders), shares, settings)
        forecasts, coverage = forecast_trends(series, settings)
    else:
        forecasts, coverage = pl.DataFrame(schema=table(QUALITY_FORECAST_TABLE).polars_schema), {}
    with paths.connect() as con, warehouse.transaction(con):
        warehouse.replace_table(con, QUALITY_FORECAST_TABLE, forecasts)
    context.log.info(
        f"{forecasts.height} forecast rows from {len(dates)} trade dates; backtest "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(coverage.items()))
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(forecasts.height),
            "history_days": dg.MetadataValue.int(len(dates)),
            "series": dg.MetadataValue.int(
                forecasts.select("dimension", "subject", "metric").n_unique()
                if forecasts.height
                else 0
            ),
            **{
                f"backtest_{k}": dg.MetadataValue.float(float(v))
                for k, v in sorted(coverage.items())
            },
            "preview": dg.MetadataValue.md(
                markdown_table(forecasts.filter(pl.col("dimension") == "desk"))
            ),
        },
        check_results=[schema_check_result(QUALITY_FORECAST_KEY, forecasts)],
    )


_TREND_ORDER_COLUMNS = [
    "trade_date",
    "order_id",
    "algo",
    "broker",
    "cost_z",
    "cost_vs_expected_bps",
]
_TREND_FILL_COLUMNS = ["trade_date", "order_id", "venue", "qty"]


def _venue_shares(fills: pl.DataFrame) -> pl.DataFrame:
    """Per order and venue: the share of the order's filled quantity the venue executed."""
    by_venue = fills.group_by("trade_date", "order_id", "venue").agg(pl.col("qty").sum())
    return by_venue.with_columns(
        share=pl.col("qty") / pl.col("qty").sum().over("trade_date", "order_id")
    ).drop("qty")

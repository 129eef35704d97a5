"""Algo and broker performance assets: one window step (`algo_window`) that reads the trailing
window's orders once and writes algo_daily (its dates' rows), the algo and broker x algo
scorecards, the parameter curves, the per-order selection and the recommendations, each
replaced in one transaction under the pool. It runs with the venue window assets (tag
`eqs/cadence: window`), after the daily partitions.

Thin wrappers around `eqs_pipeline.algos`: read, compute, validate, write, attach metadata.
Methodology: docs/ALGOS.md.
"""

from datetime import date

import dagster as dg
import polars as pl

from eqs_pipeline.algos.daily import algo_daily
from eqs_pipeline.algos.frames import algo_orders, with_difficulty
from eqs_pipeline.algos.parameters import algo_parameters
from eqs_pipeline.algos.recommendations import algo_recommendations
from eqs_pipeline.algos.scorecard import algo_scorecard, broker_algo_scorecard
from eqs_pipeline.algos.selection import algo_selection, candidate_support
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.defs.algos import checks
from eqs_pipeline.defs.algos.resources import AlgoConfig
from eqs_pipeline.defs.algos.window import AlgoInputs, algo_fingerprint, read_inputs
from eqs_pipeline.defs.checks import schema_check_result, schema_check_spec
from eqs_pipeline.defs.jobs import WINDOW_TAGS
from eqs_pipeline.defs.metadata import columns_metadata, frame_metadata, markdown_table
from eqs_pipeline.defs.quality.assets import MODEL_VERSIONS_KEY, ORDER_QUALITY_KEY
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource
from eqs_pipeline.defs.venues.window import NoVenueData
from eqs_pipeline.defs.warehouse import WAREHOUSE_DAY_KEY
from eqs_pipeline.storage import lake, warehouse

ALGO_DAILY_KEY = dg.AssetKey(["algo", "algo_daily"])
SCORECARD_KEY = dg.AssetKey(["algo", "algo_scorecard"])
BROKER_SCORECARD_KEY = dg.AssetKey(["algo", "broker_algo_scorecard"])
PARAMETERS_KEY = dg.AssetKey(["algo", "algo_parameters"])
SELECTION_KEY = dg.AssetKey(["algo", "algo_selection"])
RECOMMENDATIONS_KEY = dg.AssetKey(["algo", "algo_recommendations"])

_DESCRIPTIONS = {
    ALGO_DAILY_KEY: "Per trade date and algo, and by broker, urgency and difficulty bucket: "
    "orders, notional, fill rate, IS, arrival, VWAP and TWAP slippage, cost against the cost "
    "model, participation, duration, reversion, spread capture, passive share, venue count.",
    SCORECARD_KEY: "Per algo over the trailing window: shortfall and slippages adjusted for what "
    "the trader chose before the algo (order size, volatility, spread, time of day, urgency) "
    "on the desk's whole flow (standardized over order-size buckets), with cluster-robust "
    "95% intervals, the raw figures, the score "
    "and rank tiers; on algo-wheel orders a second, unbiased comparison (inverse-propensity "
    "weighted) and how many more wheel orders would separate each algo from the best.",
    BROKER_SCORECARD_KEY: "The algo scorecard for broker x algo pairs with enough orders.",
    PARAMETERS_KEY: "Per algo and difficulty bucket, cost against each instruction (urgency, "
    "target participation, duration, limit aggressiveness) as a curve with intervals, and "
    "the recommended setting where it is significantly better.",
    SELECTION_KEY: "Per order: the algo used and the algo the cost model expects to be "
    "cheapest for an order with these features (among those its training data holds for "
    "comparable orders), both expected costs and the expected saving.",
    RECOMMENDATIONS_KEY: "Per difficulty bucket: the current algo mix, the recommended mix, "
    "the expected saving in bps and in currency per month, and the evidence.",
}
KEYS = tuple(_DESCRIPTIONS)


def _table(key: dg.AssetKey) -> str:
    return ".".join(key.path)


def _spec(key: dg.AssetKey) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        metadata=columns_metadata(key),
        deps=[ORDER_QUALITY_KEY, WAREHOUSE_DAY_KEY, MODEL_VERSIONS_KEY],
        description=_DESCRIPTIONS[key],
        group_name="algos",
        kinds={"duckdb", "polars"},
        tags=WINDOW_TAGS,
    )


def _inputs(context: dg.AssetExecutionContext, paths: EqsPathsResource, days: int) -> AlgoInputs:
    """The window's inputs from the lake where it is a local folder, else from the warehouse."""
    try:
        if not lake.is_remote(paths.lake_root):
            return read_inputs(paths, days, context.log.warning)
        with paths.connect() as con:
            return read_inputs(paths, days, context.log.warning, con)
    except NoVenueData as exc:
        raise dg.Failure(str(exc)) from exc


def compute(
    inputs: AlgoInputs, settings: AlgoSettings, keys: tuple[dg.AssetKey, ...] = KEYS
) -> dict[dg.AssetKey, pl.DataFrame]:
    """The algo tables `keys` of the window's inputs (the selection is made for any of them:
    the orders' difficulty comes from it)."""
    window = (inputs.dates[0], inputs.dates[-1], len(inputs.dates))
    orders = algo_orders(inputs.orders, settings)
    support = candidate_support(inputs.training_orders, settings)
    selection = algo_selection(orders, inputs.instruments, inputs.model, support, settings)
    orders = with_difficulty(orders, selection.difficulty_bps, settings)
    tables = {
        ALGO_DAILY_KEY: lambda: algo_daily(orders),
        SCORECARD_KEY: lambda: algo_scorecard(orders, window, settings),
        BROKER_SCORECARD_KEY: lambda: broker_algo_scorecard(orders, window, settings),
        PARAMETERS_KEY: lambda: algo_parameters(
            orders, window, settings, selection.base_difficulty_bps
        ),
        SELECTION_KEY: lambda: selection.frame,
        RECOMMENDATIONS_KEY: lambda: algo_recommendations(
            orders, selection.frame, window, settings
        ),
    }
    return {key: tables[key]() for key in keys}


@dg.multi_asset(
    specs=[_spec(key) for key in KEYS],
    check_specs=[
        *(schema_check_spec(key) for key in KEYS),
        checks.spec(checks.CI_CHECK, SCORECARD_KEY),
        checks.spec(checks.CI_CHECK, BROKER_SCORECARD_KEY),
        checks.spec(checks.SHARES_CHECK, RECOMMENDATIONS_KEY),
    ],
    pool=WAREHOUSE_POOL,
    can_subset=True,
    name="algo_window",
)
def algo_window(context: dg.AssetExecutionContext, paths: EqsPathsResource, config: AlgoConfig):
    """The algo tables over the trailing window in one step that reads the window once (any
    of them can be materialized alone; the selection is computed whenever one is, since the
    orders' difficulty comes from it)."""
    settings = config.settings()
    inputs = _inputs(context, paths, settings.window_days)
    selected = tuple(key for key in KEYS if key in context.selected_asset_keys)
    frames = compute(inputs, settings, selected)
    start, end = inputs.dates[0], inputs.dates[-1]
    with paths.connect() as con, warehouse.transaction(con):
        fingerprint = algo_fingerprint(con, start, end, settings, inputs.model_version)
        for key in selected:
            frame = frames[key]
            if key == ALGO_DAILY_KEY:
                warehouse.replace_rows(
                    con, _table(key), frame, "delete_partitions", {"trade_dates": inputs.dates}
                )
            else:
                if key == SCORECARD_KEY:
                    frame = frame.with_columns(inputs_fingerprint=pl.lit(fingerprint, pl.String))
                    frames[key] = frame
                warehouse.replace_table(con, _table(key), frame)
    model = inputs.model_version or "none promoted (the orders' own expected costs)"
    for key in selected:
        yield _result(key, frames[key], (start, end, len(inputs.dates)), model)


def _window_text(window: tuple[date, date, int]) -> str:
    start, end, days = window
    return f"{start} .. {end} ({days} days)"


def _result(
    key: dg.AssetKey, frame: pl.DataFrame, window: tuple[date, date, int], model: str
) -> dg.MaterializeResult:
    figures: dict[str, float] = {}
    extra: dict[str, dg.MetadataValue] = {
        "window": dg.MetadataValue.text(_window_text(window)),
        "cost_model": dg.MetadataValue.text(model),
    }
    results = [schema_check_result(key, frame)]
    if key in (SCORECARD_KEY, BROKER_SCORECARD_KEY):
        results.append(checks.ci_result(key, frame))
    if key == SCORECARD_KEY:
        best = frame.filter(pl.col("rank") == 1)["algo"].to_list()
        figures = {"algos": float(frame.height), "tier_1_algos": float(len(best))}
        shown = frame.select(
            "rank", "algo", "score", "implementation_shortfall_bps",
            "implementation_shortfall_bps_ci_low", "implementation_shortfall_bps_ci_high",
            "implementation_shortfall_bps_unadjusted", "fill_rate", "orders",
        )  # fmt: skip
        extra["scorecard"] = dg.MetadataValue.md(markdown_table(shown, max_rows=50))
        extra["tier_1"] = dg.MetadataValue.text(", ".join(best))
    if key == SELECTION_KEY and frame.height:
        switched = frame.filter(pl.col("recommended_algo") != pl.col("algo"))
        figures = {
            "orders": float(frame.height),
            "orders_with_a_cheaper_algo": float(switched.height),
        }
    if key == RECOMMENDATIONS_KEY:
        results.append(checks.shares_result(key, frame))
    return dg.MaterializeResult(
        asset_key=key,
        metadata={**frame_metadata(frame, figures), **extra},
        check_results=results,
    )

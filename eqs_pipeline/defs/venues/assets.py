"""Venue performance assets: venue_daily (+ bucket breakdowns) per trade date, and the window
assets (scorecard, routing recommendations, VenuePerformanceEvents) over the trailing trade
dates, which `eqs run` materializes after the daily partitions (tag `eqs/cadence: window`).

Thin wrappers around `eqs_pipeline.venues`: read, compute, validate, write, attach metadata.
venue_daily reads and writes the Parquet lake (no pool, trade dates in parallel; `warehouse/day`
loads it). The scorecard and the routing recommendations are one step (`venue_window`) that
reads the window once, from the lake (or the warehouse where the lake is on object storage),
and replaces each table in one transaction, under the pool; the events follow from the stored
scorecard. Methodology: docs/VENUES.md.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from eqs_pipeline.defs.batch import Outputs, each_date, lake_bytes, partition_dates
from eqs_pipeline.defs.checks import schema_check_result, schema_check_spec
from eqs_pipeline.defs.ingest.assets import STAGING_KEYS
from eqs_pipeline.defs.jobs import WINDOW_TAGS
from eqs_pipeline.defs.lake_io import lake_reader
from eqs_pipeline.defs.metadata import columns_metadata, frame_metadata, markdown_table
from eqs_pipeline.defs.partitions import trade_date_partitions
from eqs_pipeline.defs.quality.assets import FILL_QUALITY_KEY, ORDER_QUALITY_KEY
from eqs_pipeline.defs.resources import WAREHOUSE_POOL, EqsPathsResource, MetricSettingsResource
from eqs_pipeline.defs.venues import checks
from eqs_pipeline.defs.venues.resources import VenueConfig
from eqs_pipeline.defs.venues.window import (
    KEPT_CHILDREN,
    KEPT_FILLS,
    LakeWindow,
    NoVenueData,
    VenueWindow,
    inputs_fingerprint,
    load_window,
    rows_stamp,
    write_rows,
)
from eqs_pipeline.defs.warehouse import WAREHOUSE_DAY_KEY
from eqs_pipeline.storage import lake, warehouse
from eqs_pipeline.storage.exports import write_events_jsonl
from eqs_pipeline.venues.chart import cost_chart_svg, markdown_image
from eqs_pipeline.venues.daily import venue_day
from eqs_pipeline.venues.events import venue_performance_events as build_events
from eqs_pipeline.venues.routing import routing_recommendations as compute_routing
from eqs_pipeline.venues.scorecard import venue_scorecard as compute_scorecard
from eqs_pipeline.venues.settings import VenueSettings

VENUE_DAILY_KEY = dg.AssetKey(["venue", "venue_daily"])
VENUE_BUCKETS_KEY = dg.AssetKey(["venue", "venue_daily_buckets"])
SCORECARD_KEY = dg.AssetKey(["venue", "venue_scorecard"])
ROUTING_KEY = dg.AssetKey(["venue", "routing_recommendations"])
EVENTS_KEY = dg.AssetKey(["venue", "venue_performance_events"])

_DAILY_DEPS = [FILL_QUALITY_KEY, ORDER_QUALITY_KEY, STAGING_KEYS["child_orders"]]


def _table(key: dg.AssetKey) -> str:
    return ".".join(key.path)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            VENUE_DAILY_KEY,
            metadata=columns_metadata(VENUE_DAILY_KEY),
            deps=_DAILY_DEPS,
            description="One row per venue and trade date: child fill rate, fill latency "
            "(median, p95), flow and flow share, effective spread, E/Q, quote position, price "
            "improvement, realized spread / price impact / markouts at 1-300 s, net fees and "
            "the all-in cost (docs/VENUES.md).",
            group_name="venue",
            kinds={"parquet", "polars"},
        ),
        dg.AssetSpec(
            VENUE_BUCKETS_KEY,
            metadata=columns_metadata(VENUE_BUCKETS_KEY),
            deps=_DAILY_DEPS,
            description="The venue_daily figures broken down by liquidity flag, order-size "
            "bucket, symbol-liquidity bucket and their full cell (like-for-like comparison).",
            group_name="venue",
            kinds={"parquet", "polars"},
        ),
    ],
    partitions_def=trade_date_partitions,
    check_specs=[
        schema_check_spec(VENUE_DAILY_KEY),
        schema_check_spec(VENUE_BUCKETS_KEY),
        checks.spec(checks.FILL_RATE_CHECK, VENUE_DAILY_KEY),
        checks.spec(checks.FILL_RATE_CHECK, VENUE_BUCKETS_KEY),
    ],
)
def venue_daily(
    context: dg.AssetExecutionContext,
    paths: EqsPathsResource,
    config: VenueConfig,
    settings: MetricSettingsResource,
):
    """Per venue and trade date figures and their bucket breakdowns of the run's trade dates
    (`venues.daily.venue_day`: a date with more than `chunk_fills` fills is read in symbol
    ranges, with the same figures)."""
    chunk_fills = settings.chunk_fills
    venue_settings = config.settings()
    outputs = {key: Outputs(key) for key in (VENUE_DAILY_KEY, VENUE_BUCKETS_KEY)}
    days = partition_dates(context)

    # In a local lake, each date's venue rows as the window reads them are stored beside the
    # daily tables (`window.write_rows`): the window then does not build them again.
    keep = not lake.is_remote(paths.lake_root)

    def summed(trade_date: date) -> tuple[int, dict[dg.AssetKey, pl.DataFrame]]:
        root = paths.lake_root
        stamp = rows_stamp(root, trade_date, venue_settings) if keep else None
        fills = lake.count(root, _table(FILL_QUALITY_KEY), trade_date)  # its footer
        day = venue_day(
            lake_reader(paths, trade_date),
            fills,
            venue_settings,
            chunk_fills,
            keep_fills=KEPT_FILLS if keep else (),
            keep_children=KEPT_CHILDREN if keep else (),
        )
        frames = {VENUE_DAILY_KEY: day.sums.daily(), VENUE_BUCKETS_KEY: day.sums.buckets()}
        for key, frame in frames.items():
            lake.write(root, _table(key), frame, trade_date)
        if stamp is not None and day.fills is not None and day.children is not None:
            write_rows(root, trade_date, day.fills, day.children, venue_settings, stamp)
        return day.ranges, frames

    sizes = lake_bytes(paths.lake_root, [_table(k) for k in _DAILY_DEPS], days)
    for trade_date, (ranges, frames) in zip(days, each_date(days, summed, sizes), strict=True):
        if ranges > 1:
            context.log.info(
                f"{trade_date}: read in {ranges} symbol ranges of at most {chunk_fills:,} "
                "fills each"
            )
        for key, frame in frames.items():
            outputs[key].add(trade_date, frame)
    for key, written in outputs.items():
        frame = written.whole()
        figures = {}
        if key == VENUE_DAILY_KEY and frame.height:
            worst = frame.sort("all_in_cost_bps", descending=True, nulls_last=True).row(
                0, named=True
            )
            figures = {
                "venues": float(frame["venue"].n_unique()),
                "worst_all_in_cost_bps": worst["all_in_cost_bps"],
            }
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=written.metadata(figures),
            check_results=[
                written.schema_check(),
                checks.fill_rate_result(key, frame, ["fill_rate", "flow_share"]),
            ],
        )


def _window_or_fail(
    paths: EqsPathsResource, settings: VenueSettings, metric_settings: MetricSettingsResource
) -> VenueWindow:
    """The trailing window, read once for the scorecard and the routing recommendations: from
    the Parquet lake by Polars where the lake is a local folder, else from the warehouse on a
    connection of its own (closing it before the statistics run hands back the table blocks
    DuckDB cached while reading; docs/PERFORMANCE.md, "Reading the window"). A date of more
    than `chunk_fills` fills is read in symbol ranges."""
    chunk_fills = metric_settings.chunk_fills
    try:
        if not lake.is_remote(paths.lake_root):
            return load_window(LakeWindow(paths.lake_root), settings, chunk_fills=chunk_fills)
        with paths.connect() as con:
            return load_window(con, settings, chunk_fills=chunk_fills)
    except NoVenueData as exc:
        raise dg.Failure(str(exc)) from exc


_SCORECARD_DESCRIPTION = (
    "Per venue over the trailing window (default 20 trade dates), dark and lit venues compared "
    "across execution styles: every key metric adjusted for what the router does not choose "
    "(liquidity x order-size cells; arrival spread, urgency, time of day and child size as "
    "controls) with a cluster-robust 95% interval, the composite score and the rank tier "
    "(venues not significantly different share a rank); effective spread and price improvement "
    "also within style; a note says why any figure is missing. The view "
    "`venue.scorecard_from_fills` reproduces the unadjusted figures from the fills."
)
_ROUTING_DESCRIPTION = (
    "For each liquidity bucket and order-size bucket, the allocation of routed quantity across "
    "venues of every style (dark and lit) that minimizes the expected cost of getting the "
    "shares done: each venue's all-in cost where it fills, the cost of re-routing what it does "
    "not fill and the measured cost of the delay (linear program, scipy HiGHS), within capacity "
    "bounds from each venue's share of volume; with the current allocation and the expected "
    "saving in bps and in currency per month."
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SCORECARD_KEY,
            metadata=columns_metadata(SCORECARD_KEY),
            deps=[VENUE_DAILY_KEY, WAREHOUSE_DAY_KEY],
            description=_SCORECARD_DESCRIPTION,
            group_name="venue",
            kinds={"duckdb", "polars"},
            tags=WINDOW_TAGS,
        ),
        dg.AssetSpec(
            ROUTING_KEY,
            metadata=columns_metadata(ROUTING_KEY),
            deps=[VENUE_DAILY_KEY, WAREHOUSE_DAY_KEY],
            description=_ROUTING_DESCRIPTION,
            group_name="venue",
            kinds={"duckdb", "polars", "scipy"},
            tags=WINDOW_TAGS,
        ),
    ],
    check_specs=[
        schema_check_spec(SCORECARD_KEY),
        checks.spec(checks.FILL_RATE_CHECK, SCORECARD_KEY),
        checks.spec(checks.CI_CHECK, SCORECARD_KEY),
        schema_check_spec(ROUTING_KEY),
        checks.spec(checks.ALLOCATION_CHECK, ROUTING_KEY),
    ],
    pool=WAREHOUSE_POOL,
    can_subset=True,
    name="venue_window",
)
def venue_window(
    context: dg.AssetExecutionContext,
    paths: EqsPathsResource,
    config: VenueConfig,
    settings: MetricSettingsResource,
):
    """The venue scorecard and the routing recommendations over the trailing window, in one
    step that reads the window once (either can be materialized alone). The routing
    recommendations are computed on a second thread beside the scorecard's statistics: both
    only read the window, and each leaves a core idle part of the time (Polars, NumPy and
    HiGHS release the GIL). The tables are written in turn."""
    venue_settings = config.settings()
    window = _window_or_fail(paths, venue_settings, settings)
    selected = context.selected_asset_keys
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eqs-routing") as beside:
        routing = None
        if ROUTING_KEY in selected:
            routing = beside.submit(_routing_frame, window, venue_settings)
        if SCORECARD_KEY in selected:
            yield _scorecard(paths, window, venue_settings)
        if routing is not None:
            yield _routing(paths, routing.result())


def _scorecard(
    paths: EqsPathsResource, window: VenueWindow, venue_settings: VenueSettings
) -> dg.MaterializeResult:
    frame = compute_scorecard(window.fills, window.children, window.bounds, venue_settings)
    with paths.connect() as con, warehouse.transaction(con):
        fingerprint = inputs_fingerprint(con, window.start, window.end, venue_settings)
        frame = frame.with_columns(inputs_fingerprint=pl.lit(fingerprint, pl.String))
        warehouse.replace_table(con, _table(SCORECARD_KEY), frame)
        con.execute(warehouse.sql("create_scorecard_from_fills_view"))
    shown = frame.select(
        "rank", "venue", "score", "score_ci_low", "score_ci_high", "all_in_cost_bps",
        "all_in_cost_bps_ci_low", "all_in_cost_bps_ci_high", "markout_60s_bps",
        "price_improvement_bps", "fill_rate", "fills",
    )  # fmt: skip
    chart = markdown_image(cost_chart_svg(frame), "all-in cost by venue")
    best = frame.filter(pl.col("rank") == 1)["venue"].to_list()
    return dg.MaterializeResult(
        asset_key=SCORECARD_KEY,
        metadata={
            **frame_metadata(
                frame,
                {"venues": float(frame.height), "tier_1_venues": float(len(best))},
            ),
            "window": dg.MetadataValue.text(f"{window.start} .. {window.end} ({window.days} days)"),
            "scorecard": dg.MetadataValue.md(markdown_table(shown, max_rows=50)),
            "all_in_cost_chart": dg.MetadataValue.md(chart),
            "tier_1": dg.MetadataValue.text(", ".join(best)),
        },
        check_results=[
            schema_check_result(SCORECARD_KEY, frame),
            checks.fill_rate_result(
                SCORECARD_KEY,
                frame,
                ["fill_rate", "fill_rate_ci_low", "fill_rate_ci_high", "fill_rate_unadjusted"],
            ),
            checks.ci_result(SCORECARD_KEY, frame),
        ],
    )


def _routing_frame(window: VenueWindow, venue_settings: VenueSettings) -> pl.DataFrame:
    return compute_routing(
        window.fills,
        window.children,
        window.tape_volume,
        window.bounds,
        window.delays,
        venue_settings,
        symbol_days=window.symbol_days,
    )


def _routing(paths: EqsPathsResource, frame: pl.DataFrame) -> dg.MaterializeResult:
    with paths.connect() as con, warehouse.transaction(con):
        warehouse.replace_table(con, _table(ROUTING_KEY), frame)
    segments = frame.unique(["liquidity_bucket", "size_bucket"])
    return dg.MaterializeResult(
        asset_key=ROUTING_KEY,
        metadata=frame_metadata(
            frame,
            {
                "expected_saving_per_month": float(segments["expected_saving_per_month"].sum()),
                "segments": float(segments.height),
            },
        ),
        check_results=[
            schema_check_result(ROUTING_KEY, frame),
            checks.allocation_result(ROUTING_KEY, frame),
        ],
    )


@dg.asset(
    key=EVENTS_KEY,
    metadata=columns_metadata(EVENTS_KEY),
    deps=[SCORECARD_KEY],
    group_name="venue",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "polars"},
    tags=WINDOW_TAGS,
    check_specs=[schema_check_spec(EVENTS_KEY)],
)
def venue_performance_events(paths: EqsPathsResource) -> dg.MaterializeResult:
    """One VenuePerformanceEvent per venue each time the scorecard is refreshed (versioned JSON
    payload), also exported as JSON Lines to
    `<exports>/venue_performance_events/window_end=YYYY-MM-DD/events.jsonl`. A refresh of the
    same window replaces that window's events."""
    emitted_at = datetime.now(UTC)
    with paths.connect() as con:
        if not warehouse.table_exists(con, _table(SCORECARD_KEY)):
            raise dg.Failure(
                description=f"no {_table(SCORECARD_KEY)} in {paths.warehouse_path}: materialize "
                "venue/venue_scorecard (job eqs_window) first"
            )
        scorecard = warehouse.read_table(con, _table(SCORECARD_KEY))
        frame = build_events(
            scorecard.lazy(), pl.lit(emitted_at, pl.Datetime("us", "UTC"))
        ).collect()
        window_end = scorecard["window_end"].max()
        with warehouse.transaction(con):
            warehouse.replace_rows(
                con, _table(EVENTS_KEY), frame, "delete_window_end", {"window_end": window_end}
            )
    export = write_events_jsonl(
        frame, paths.exports_root, "venue_performance_events", f"window_end={window_end}"
    )
    return dg.MaterializeResult(
        metadata={
            **frame_metadata(frame),
            "export": dg.MetadataValue.path(export),
        },
        check_results=[schema_check_result(EVENTS_KEY, frame)],
    )

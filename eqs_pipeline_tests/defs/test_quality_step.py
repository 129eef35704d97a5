"""Fill and order quality are one step (`quality`) that prepares the quotes once; either asset
can still be materialized alone."""

from __future__ import annotations

import os
import shutil

import dagster as dg

from eqs_pipeline import lake
from eqs_pipeline.defs.quality.assets import FILL_QUALITY_KEY, ORDER_QUALITY_KEY, quality
from eqs_pipeline.defs.resources import EqsPathsResource, MetricSettingsResource


def _materialize(paths: EqsPathsResource, keys: list[dg.AssetKey], day: str):
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            [quality],
            selection=keys,
            partition_key=day,
            resources={"paths": paths, "settings": MetricSettingsResource()},
            instance=instance,
        )


def test_each_quality_asset_alone_gives_what_the_pipeline_gave(built_warehouse, tmp_path):
    landing, warehouse, report = built_warehouse
    shutil.copytree(warehouse.parent / "lake", tmp_path / "lake")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing), lake=str(tmp_path / "lake"))
    day = report.trade_dates[0]
    tables = {FILL_QUALITY_KEY: "quality.fill_quality", ORDER_QUALITY_KEY: "quality.order_quality"}
    built = {k: lake.read(paths.lake_root, t, day) for k, t in tables.items()}

    for key, other in (
        (ORDER_QUALITY_KEY, FILL_QUALITY_KEY),
        (FILL_QUALITY_KEY, ORDER_QUALITY_KEY),
    ):
        untouched = lake.partition_path(paths.lake_root, tables[other], day)
        stamp = os.stat(untouched).st_mtime_ns
        result = _materialize(paths, [key], day.isoformat())
        assert result.success
        assert {e.asset_key for e in result.get_asset_materialization_events()} == {key}
        checks = result.get_asset_check_evaluations()
        assert [c.asset_key for c in checks] == [key] and checks[0].passed
        assert lake.read(paths.lake_root, tables[key], day).equals(built[key])
        assert os.stat(untouched).st_mtime_ns == stamp


def test_a_date_scored_in_symbol_ranges_gives_the_same_partitions(built_warehouse, tmp_path):
    """`chunk_fills` below the date's fills: the step reads and scores symbol ranges, and
    writes the partitions the whole-date step wrote (fills exactly, order sums to rounding)."""
    from polars.testing import assert_frame_equal

    landing, warehouse, report = built_warehouse
    shutil.copytree(warehouse.parent / "lake", tmp_path / "lake")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing), lake=str(tmp_path / "lake"))
    day = report.trade_dates[0]
    tables = ("quality.fill_quality", "quality.order_quality")
    built = [lake.read(paths.lake_root, t, day) for t in tables]
    fills = built[0].height
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [quality],
            partition_key=day.isoformat(),
            resources={"paths": paths, "settings": MetricSettingsResource(chunk_fills=fills // 5)},
            instance=instance,
        )
        logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    assert any(f"symbol ranges of at most {fills // 5:,} fills" in m for m in logged)
    fill_rows, order_rows = (lake.read(paths.lake_root, t, day) for t in tables)
    assert fill_rows.equals(built[0])
    assert_frame_equal(order_rows, built[1], rel_tol=1e-9, abs_tol=1e-9)


def test_the_step_gives_what_the_functions_give_unprepared(built_warehouse):
    # The step prepares the fills and the tape on a second thread and shares the quotes; the
    # functions called with the staged tables alone prepare everything themselves.
    from eqs_pipeline.contract import CONTRACT
    from eqs_pipeline.metrics.fills import fill_quality
    from eqs_pipeline.metrics.orders import order_quality

    _, warehouse, report = built_warehouse
    root = warehouse.parent / "lake"
    day = report.trade_dates[0]

    def staged(table: str):
        return lake.read(root, f"staging.{table}", day, CONTRACT[table].polars_schema)

    fills = fill_quality(staged("executions"), staged("quotes"), staged("orders")).collect()
    orders = order_quality(
        staged("orders"),
        fills,
        staged("quotes"),
        staged("market_trades"),
        lake.read(root, "staging.instruments", None),
    ).collect()
    assert fills.equals(lake.read(root, "quality.fill_quality", day))
    assert orders.equals(lake.read(root, "quality.order_quality", day))


def test_order_quality_metadata_fill_rate_is_shares_filled_over_shares_ordered(
    built_warehouse, tmp_path
):
    """As `eqs summary` reports it; it was the plain mean of the orders' fill rates."""
    landing, warehouse, report = built_warehouse
    shutil.copytree(warehouse.parent / "lake", tmp_path / "lake")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing), lake=str(tmp_path / "lake"))
    day = report.trade_dates[0]
    result = _materialize(paths, [ORDER_QUALITY_KEY], day.isoformat())
    (event,) = result.get_asset_materialization_events()
    figure = event.materialization.metadata["fill_rate"].value
    orders = lake.read(paths.lake_root, "quality.order_quality", day)
    assert figure == orders["filled_qty"].sum() / orders["order_qty"].sum()
    assert figure != orders["fill_rate"].mean()

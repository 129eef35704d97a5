"""Fill and order quality are one step (`quality`) that prepares the quotes once; either asset
can still be materialized alone."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import polars as pl

from eqs_pipeline.defs.quality.assets import FILL_QUALITY_KEY, ORDER_QUALITY_KEY, quality
from eqs_pipeline.defs.quality.checks import MARKET_DATA_CHECK
from eqs_pipeline.defs.resources import EqsPathsResource, MetricSettingsResource
from eqs_pipeline.storage import lake


def _materialize(
    paths: EqsPathsResource,
    keys: list[dg.AssetKey],
    day: str,
    settings: MetricSettingsResource | None = None,
):
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            [quality],
            selection=keys,
            partition_key=day,
            resources={"paths": paths, "settings": settings or MetricSettingsResource()},
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
        assert {c.asset_key for c in checks} == {key} and all(c.passed for c in checks)
        assert {c.check_name for c in checks} == {"schema", MARKET_DATA_CHECK}
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
    from eqs_pipeline.core.contract import CONTRACT
    from eqs_pipeline.quality.fills import fill_quality
    from eqs_pipeline.quality.orders import order_quality

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


def test_a_symbol_without_quotes_or_tape_is_not_graded_and_the_check_warns(
    built_warehouse, tmp_path
):
    """One symbol's quotes and tape removed from a staged date: its fills have no prior quote
    and its orders no arrival quote, so they are not graded (the other symbols' orders are);
    the `market_data` checks fail as warnings, without stopping the step, and name the symbol
    with its counts. A share threshold above the symbol's share lets them pass."""
    landing, warehouse, report = built_warehouse
    shutil.copytree(warehouse.parent / "lake", tmp_path / "lake")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing), lake=str(tmp_path / "lake"))
    root, day = paths.lake_root, report.trade_dates[0]
    built = lake.read(root, "quality.order_quality", day)
    symbol = built["symbol"].min()
    for table in ("staging.quotes", "staging.market_trades"):
        rows = lake.read(root, table, day)
        lake.write(root, table, rows.filter(pl.col("symbol") != symbol), day)
    mine = pl.col("symbol") == symbol
    counts = {
        FILL_QUALITY_KEY: lake.read(root, "quality.fill_quality", day).filter(mine).height,
        ORDER_QUALITY_KEY: built.filter(mine).height,
    }
    assert all(counts.values()) and built["quality_grade"].null_count() == 0

    result = _materialize(paths, [FILL_QUALITY_KEY, ORDER_QUALITY_KEY], day.isoformat())
    assert result.success
    checks = {(c.asset_key, c.check_name): c for c in result.get_asset_check_evaluations()}
    for key, count in counts.items():
        assert checks[key, "schema"].passed
        check = checks[key, MARKET_DATA_CHECK]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert check.metadata["rows_without_market_data"].value == count
        assert check.metadata["symbols_affected"].value == 1
        assert f"| {symbol} | {count} |" in check.metadata["symbols"].value

    orders = lake.read(root, "quality.order_quality", day)
    ungraded = orders.filter(mine)
    assert ungraded["quality_score"].null_count() == ungraded["quality_grade"].null_count()
    assert ungraded["quality_grade"].null_count() == ungraded.height
    for reason in ungraded["null_reason"]:
        assert reason.startswith("no_arrival_quote;") and reason.endswith(";not_graded")
    graded = orders.filter(~mine)
    assert graded.height and graded["quality_grade"].null_count() == 0
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key == ORDER_QUALITY_KEY
    ]
    metadata = event.materialization.metadata
    assert metadata["orders_ungraded"].value == ungraded.height
    assert metadata["mean_quality_score"].value == graded["quality_score"].mean()

    lenient = MetricSettingsResource(max_no_market_data_share=1.0)
    result = _materialize(paths, [ORDER_QUALITY_KEY], day.isoformat(), lenient)
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.check_name == MARKET_DATA_CHECK
    ]
    assert check.passed

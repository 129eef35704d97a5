"""A trade date's venue tables read in symbol ranges (`venues.daily.venue_day` with a small
`chunk_fills`) equal the date read whole, and the whole-frame functions: every sum to
rounding, the latency percentiles exactly, each child order counted once."""

from __future__ import annotations

import shutil

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eqs_pipeline.core.ranges import in_memory
from eqs_pipeline.defs.resources import EqsPathsResource, MetricSettingsResource
from eqs_pipeline.defs.venues.assets import venue_daily as venue_daily_asset
from eqs_pipeline.quality.day import score_day
from eqs_pipeline.simulate import SimulationConfig, simulate
from eqs_pipeline.storage import lake
from eqs_pipeline.venues.daily import venue_daily, venue_daily_buckets, venue_day
from eqs_pipeline.venues.frames import venue_frames
from eqs_pipeline.venues.settings import VenueSettings

CLOSE = {"rel_tol": 1e-9, "abs_tol": 1e-9}


@pytest.fixture(scope="module")
def day() -> dict[str, pl.DataFrame]:
    """One simulated date, scored, with a symbol whose fills were all lost (its orders' child
    orders stay, unfilled) and a child order whose parent order was never scored."""
    data = simulate(SimulationConfig(days=1, symbols=12, orders_per_day=240, seed=7))
    frames = dict(data.tables)
    quiet = sorted(frames["executions"]["symbol"].unique())[4]
    frames["executions"] = frames["executions"].filter(pl.col("symbol") != quiet)
    scored = score_day(in_memory(frames), data.instruments)
    orphan = (
        frames["child_orders"]
        .head(1)
        .with_columns(child_id=pl.lit("C-ORPHAN"), order_id=pl.lit("O-NEVER-SCORED"))
    )
    return {
        "fill_quality": scored.fills,
        "order_quality": scored.orders,
        "child_orders": pl.concat([frames["child_orders"], orphan]),
    }


def test_the_day_read_whole_is_the_whole_frame_functions(day) -> None:
    whole = venue_day(in_memory(day), day["fill_quality"].height, VenueSettings(), 10**9)
    assert whole.ranges == 1
    fills, children = venue_frames(day["fill_quality"], day["child_orders"], day["order_quality"])
    assert_frame_equal(whole.sums.daily(), venue_daily(fills, children), **CLOSE)
    assert_frame_equal(whole.sums.buckets(), venue_daily_buckets(fills, children), **CLOSE)


@pytest.mark.parametrize("chunk_fills", [1, 500, 2500])
@pytest.mark.parametrize("cluster", ["order", "symbol_day"])
def test_symbol_ranges_give_the_whole_days_tables(day, chunk_fills, cluster) -> None:
    settings = VenueSettings(cluster=cluster)
    whole = venue_day(in_memory(day), day["fill_quality"].height, settings, 10**9)
    ranged = venue_day(in_memory(day), day["fill_quality"].height, settings, chunk_fills)
    assert ranged.ranges > 1
    daily = ranged.sums.daily()
    assert_frame_equal(daily, whole.sums.daily(), **CLOSE)
    assert_frame_equal(ranged.sums.buckets(), whole.sums.buckets(), **CLOSE)
    # Every child order once: the orphan and the quiet symbol's unfilled children included.
    assert daily["child_orders"].sum() == day["child_orders"].height
    assert daily["fills"].sum() == day["fill_quality"].height
    assert ranged.sums.latency.height == day["fill_quality"].height
    assert ranged.sums.latency.schema["venue"] == pl.Categorical()


def test_the_step_in_symbol_ranges_writes_the_whole_dates_partitions(built_warehouse, tmp_path):
    landing, warehouse, report = built_warehouse
    shutil.copytree(warehouse.parent / "lake", tmp_path / "lake")
    paths = EqsPathsResource(home=str(tmp_path), landing=str(landing), lake=str(tmp_path / "lake"))
    trade_date = report.trade_dates[0]
    tables = ("venue.venue_daily", "venue.venue_daily_buckets")
    built = [lake.read(paths.lake_root, t, trade_date) for t in tables]
    chunk = lake.count(paths.lake_root, "quality.fill_quality", trade_date) // 4
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [venue_daily_asset],
            partition_key=trade_date.isoformat(),
            resources={"paths": paths, "settings": MetricSettingsResource(chunk_fills=chunk)},
            instance=instance,
        )
        logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    assert any(f"symbol ranges of at most {chunk:,} fills" in m for m in logged)
    for table, before in zip(tables, built, strict=True):
        assert_frame_equal(lake.read(paths.lake_root, table, trade_date), before, **CLOSE)

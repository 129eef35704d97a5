"""Tier 1: the definitions load, and the asset graph is what the product promises."""

import dagster as dg

from eqs_pipeline.definitions import defs as load_defs
from eqs_pipeline.defs.jobs import DAILY_JOB, REFERENCE_JOB, WINDOW_JOB
from eqs_pipeline.defs.resources import WAREHOUSE_POOL

EXPECTED_DAILY = {
    "staging/orders",
    "staging/child_orders",
    "staging/executions",
    "staging/quotes",
    "staging/market_trades",
    "staging/quarantine",
    "quality/fill_quality",
    "quality/order_quality",
    "quality/execution_quality_events",
}


def _keys(defs: dg.Definitions) -> set[str]:
    return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


def test_definitions_load_with_expected_assets() -> None:
    defs = load_defs()
    keys = _keys(defs)
    assert EXPECTED_DAILY | {"staging/instruments"} <= keys
    for job in (REFERENCE_JOB, DAILY_JOB, WINDOW_JOB):
        assert defs.resolve_job_def(job) is not None
    assert {s.name for s in defs.sensors} >= {"landing_sensor"}
    assert {s.name for s in defs.schedules} >= {"daily_schedule"}


def test_daily_job_holds_exactly_the_partitioned_assets() -> None:
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    daily = defs.resolve_job_def(DAILY_JOB).asset_layer.executable_asset_keys
    for key in daily:
        assert graph.get(key).partitions_def is not None, key.to_user_string()
    assert {k.to_user_string() for k in daily} >= EXPECTED_DAILY


def test_every_asset_has_a_blocking_schema_check_and_writers_share_the_pool() -> None:
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    for key in EXPECTED_DAILY | {"staging/instruments"}:
        assert (key, "schema") in checks, key
    assert ("staging/quarantine", "conservation") in checks
    for assets_def in defs.assets:
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.is_executable:
            for spec in assets_def.specs:
                if spec.key.path[0] in {"staging", "quality", "venue"}:
                    op_pool = assets_def.op.pool
                    assert op_pool == WAREHOUSE_POOL, spec.key

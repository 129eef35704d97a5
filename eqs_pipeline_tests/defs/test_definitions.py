"""Tier 1: the definitions load, and the asset graph is what the product promises."""

import dagster as dg
import pytest

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
    "venue/venue_daily",
    "venue/venue_daily_buckets",
    "warehouse/day",
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


def test_every_asset_has_a_blocking_schema_check() -> None:
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    for key in EXPECTED_DAILY - {"warehouse/day"} | {"staging/instruments"}:
        assert (key, "schema") in checks, key
    assert ("warehouse/day", "loaded") in checks
    assert ("staging/quarantine", "conservation") in checks


def test_only_steps_that_open_duckdb_take_the_pool() -> None:
    """Daily compute steps read and write the Parquet lake (no pool, so trade dates run in
    parallel); every step that opens the DuckDB file holds the one-slot pool."""
    defs = load_defs()
    daily = {
        k.to_user_string()
        for k in defs.resolve_job_def(DAILY_JOB).asset_layer.executable_asset_keys
    }
    pools = {}
    for assets_def in defs.assets:
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.is_executable:
            for spec in assets_def.specs:
                pools[spec.key.to_user_string()] = (assets_def.op.pool, spec.kinds)
    for key, (pool, kinds) in pools.items():
        if "duckdb" in kinds:
            assert pool == WAREHOUSE_POOL, key
        else:
            assert pool is None and key in daily, key
    assert {k for k in daily if pools[k][0] == WAREHOUSE_POOL} == {"warehouse/day"}
    check_pools = {
        (key.asset_key.to_user_string(), key.name): checks_def.node_def.pool
        for checks_def in defs.asset_checks
        for key in checks_def.check_keys
    }
    assert check_pools[("staging/instruments", "conservation")] == WAREHOUSE_POOL
    assert check_pools[("staging/quarantine", "conservation")] is None  # counts in the lake


def test_every_schema_check_has_its_tables_schema() -> None:
    # The specs name their table only; the schema is looked up when the check runs.
    from eqs_pipeline.defs.checks import SCHEMA_CHECK
    from eqs_pipeline.tables.schemas import SCHEMAS

    graph = load_defs().resolve_asset_graph()
    checked = {
        ".".join(key.asset_key.path) for key in graph.asset_check_keys if key.name == SCHEMA_CHECK
    }
    assert checked  # the daily, window and reference assets all declare one
    assert checked <= set(SCHEMAS), checked - set(SCHEMAS)


@pytest.mark.integration
def test_loading_the_code_location_imports_neither_pandera_scipy_nor_jax() -> None:
    # Every run loads the code location in its worker, which runs no check and no estimation;
    # pandera with pandas (about 1.3 s) and scipy (about 0.4 s) are imported where they are
    # used, and preloaded only by the executor's fork server that step processes fork from.
    # JAX, Flax and optax (3-4 s) are imported only by the steps that train or apply the cost
    # model: neither the code location nor the `eqs` commands load them.
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, eqs_pipeline.runtime.preload, eqs_pipeline.cli.main\n"
            "heavy = ('pandas', 'pandera', 'scipy', 'jax', 'flax', 'optax')\n"
            "print(sorted(m for m in heavy if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "[]"

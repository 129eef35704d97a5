"""Tier 3: trade dates backfilled as concurrent runs, in separate processes, on one instance.

Every run uses the project's executor, with its steps in their own processes (multiprocess) or
in the run's (`in_process`); compute steps read and write the Parquet lake without a pool, and only the steps that open the DuckDB file take the one slot of `duckdb_warehouse`.
All runs must succeed without a DuckDB lock error, the pool steps must never overlap, and the
warehouse must hold every partition exactly once.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from eqs_pipeline.defs.warehouse.assets import DAILY_TABLES
from eqs_pipeline.ingest import discover_trade_dates
from eqs_pipeline.simulate import SimulationConfig
from eqs_pipeline.storage import lake
from eqs_pipeline_tests.conftest import simulate_small
from perf.backfill import (
    max_overlap,
    pool_step_keys,
    run_queued,
    run_reference,
    step_intervals,
    use_home,
)

THREE_DAYS = SimulationConfig(days=3, symbols=3, orders_per_day=20, seed=5)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # use_home sets both variables; monkeypatch restores them after the test.
    monkeypatch.setenv("EQS_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    simulate_small(tmp_path / "landing", THREE_DAYS)
    return use_home(tmp_path)


@pytest.mark.parametrize("executor", ["multiprocess", "in_process"])
def test_concurrent_partition_runs_share_the_pool_and_load_each_date_once(
    executor: str, home: Path
) -> None:
    days = [d.isoformat() for d in discover_trade_dates(home / "landing")]
    assert len(days) == 3
    run_reference()
    outcomes = run_queued(days, width=len(days), executor=executor)

    assert [o.errors for o in outcomes if not o.success] == []
    assert not any("lock" in o.errors.lower() for o in outcomes)
    intervals = step_intervals([o.run_id for o in outcomes])
    pooled = [i for i in intervals if i[1] in pool_step_keys()]
    assert len(pooled) == len(days)  # one load step per trade date
    assert max_overlap(pooled) == 1  # the pool's one slot held across processes

    root = str(home / "lake")
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        for table in DAILY_TABLES:
            per_day = dict(
                con.execute(
                    f"select trade_date, count(*) from {table} "
                    "where trade_date is not null group by 1"  # instruments' quarantine rows
                ).fetchall()
            )
            expected = {
                d: n
                for d in discover_trade_dates(home / "landing")
                if (n := lake.count(root, table, d))
            }
            assert per_day == expected, table
        fills, distinct = con.execute(
            "select count(*), count(distinct exec_id) from quality.fill_quality"
        ).fetchall()[0]
        orders = con.execute("select count(*) from staging.orders").fetchall()[0][0]
    assert fills == distinct > 0 and orders == 3 * THREE_DAYS.orders_per_day

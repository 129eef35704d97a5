"""Tier 3: trade dates backfilled as concurrent runs, in separate processes, on one instance.

Two tiny dates as two runs at once, each in a fresh process, on the project's executor: one
with every step in its own process (multiprocess, the project's default), the other with its
steps in the run's process (`in_process`), so that the pool is shared by the two executors and
across processes. Compute steps read and write the Parquet lake without a pool; only the steps
that open the DuckDB file take the one slot of `duckdb_warehouse`. Both runs must succeed
without a DuckDB lock error, the pool steps must never overlap, and the warehouse must hold
every partition exactly once.

The lake is on object storage (an S3 API served by moto), set by EQS_LAKE alone: the scale-out
configuration on one machine (docs/SCALING.md), where each forked step process must find the
lake from the environment; one backfill covers both. (`make bench`'s backfill cases run each
executor on its own, concurrently too.)
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

pytestmark = pytest.mark.integration

TWO_DAYS = SimulationConfig(days=2, symbols=2, orders_per_day=10, seed=5)


@pytest.fixture
def home(s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # use_home sets EQS_HOME and DAGSTER_HOME; monkeypatch restores them after the test.
    monkeypatch.setenv("EQS_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("EQS_LAKE", f"{s3}/backfill")
    simulate_small(tmp_path / "landing", TWO_DAYS)
    return use_home(tmp_path)


def test_concurrent_partition_runs_share_the_pool_and_load_each_date_once(
    s3: str, home: Path
) -> None:
    days = discover_trade_dates(home / "landing")
    assert len(days) == 2
    run_reference()
    outcomes = run_queued(
        [d.isoformat() for d in days], width=len(days), executor=["multiprocess", "in_process"]
    )

    assert [o.errors for o in outcomes if not o.success] == []
    assert not any("lock" in o.errors.lower() for o in outcomes)
    intervals = step_intervals([o.run_id for o in outcomes])
    pooled = [i for i in intervals if i[1] in pool_step_keys()]
    assert len(pooled) == len(days)  # one load step per trade date
    assert max_overlap(pooled) == 1  # the pool's one slot held across processes

    root = f"{s3}/backfill"
    assert not (home / "lake").exists()  # every step found the lake in the bucket
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        for table in DAILY_TABLES:
            per_day = dict(
                con.execute(
                    f"select trade_date, count(*) from {table} "
                    "where trade_date is not null group by 1"  # instruments' quarantine rows
                ).fetchall()
            )
            expected = {d: n for d in days if (n := lake.count(root, table, d))}
            assert per_day == expected, table
        fills, distinct = con.execute(
            "select count(*), count(distinct exec_id) from quality.fill_quality"
        ).fetchall()[0]
        orders = con.execute("select count(*) from staging.orders").fetchall()[0][0]
    assert fills == distinct > 0 and orders == 2 * TWO_DAYS.orders_per_day
    assert all(lake.count(root, "quality.fill_quality", d) > 0 for d in days)

"""Shared small simulations (session scoped: each is generated once, in about a second)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from eqs_pipeline.simulate import SimulatedData, SimulationConfig, simulate

SMALL = SimulationConfig(
    days=2, symbols=8, orders_per_day=150, seed=7, start_date=date(2026, 11, 2)
)
# Wider universe and more flow for the statistical checks.
STATS = SimulationConfig(
    days=2, symbols=30, orders_per_day=400, seed=11, start_date=date(2026, 3, 5)
)


@pytest.fixture(scope="session")
def small() -> SimulatedData:
    return simulate(SMALL)


@pytest.fixture(scope="session")
def stats() -> SimulatedData:
    return simulate(STATS)


def fills_with_quotes(data: SimulatedData) -> pl.DataFrame:
    """Each fill with its order's side sign D, the quote prevailing strictly before exec_ts and
    the mids prevailing at exec_ts + 60 s and + 300 s (docs/METRICS.md conventions)."""
    q = data.tables["quotes"].with_columns(mid=(pl.col("bid_px") + pl.col("ask_px")) / 2).sort("ts")
    side = data.tables["orders"].select(
        "order_id", D=pl.when(pl.col("side") == "BUY").then(1.0).otherwise(-1.0)
    )
    fills = data.tables["executions"].join(side, on="order_id").sort("exec_ts")
    # "strictly before": match on exec_ts - 1 us with a backward (<=) as-of join.
    fills = fills.with_columns(key=pl.col("exec_ts") - pl.duration(microseconds=1)).join_asof(
        q.select("symbol", "bid_px", "ask_px", "mid", key="ts"),
        on="key",
        by="symbol",
        check_sortedness=False,
    )
    for h in (60, 300):
        fills = (
            fills.with_columns(key=pl.col("exec_ts") + pl.duration(seconds=h))
            .sort("key")
            .join_asof(
                q.select("symbol", key="ts", **{f"mid_{h}": "mid"}),
                on="key",
                by="symbol",
                check_sortedness=False,
            )
        )
    return fills.drop("key").with_columns(
        (pl.col("D") * (pl.col(f"mid_{h}") - pl.col("price")) / pl.col("price") * 1e4).alias(
            f"markout_{h}s_bps"
        )
        for h in (60, 300)
    )

"""The warehouse of the fixed small desk equals the golden files, table by table, row by row
(eqs_pipeline_tests/golden: how to regenerate them after a deliberate change of a figure)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from eqs_pipeline.runtime.runner import RunReport
from eqs_pipeline_tests import golden


def test_the_small_desk_builds_the_golden_warehouse(
    built_warehouse: tuple[Path, Path, RunReport],
) -> None:
    _, warehouse, _ = built_warehouse
    assert golden.differences(warehouse) == []


def test_a_changed_figure_or_row_is_reported() -> None:
    want = pl.read_parquet(golden.path("quality.order_quality"))
    moved = want.with_columns(pl.col("quality_score") * (1 + 1e-6))
    assert [p.split(":")[0] for p in golden._table_differences("t", moved, want)] == [
        "t.quality_score"
    ]
    assert golden._table_differences("t", want.head(-1), want) == [
        f"t: {want.height - 1} rows, golden {want.height}"
    ]
    events = pl.read_parquet(golden.path("quality.execution_quality_events"))
    edited = events.with_columns(pl.col("payload").str.replace('"BUY"', '"SELL"'))
    assert golden._table_differences("e", edited, events)[0].startswith("e.payload:")

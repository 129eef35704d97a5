"""One factory for the blocking schema checks of every warehouse table (PUDL style).

Each asset declares `schema_check_spec(key)` and returns `schema_check_result(key, frame)` with
its materialization: the frame is validated against the pandera schema of its table in
`eqs_pipeline.tables.schemas` (generated from the table registry: the table's columns, in order,
with their types and rules, and its row checks), lazily, so every failure case is reported in the
check's metadata. The check is blocking: downstream assets do not run on a table that breaks its
contract.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from eqs_pipeline.defs.metadata import markdown_table

MAX_FAILURE_CASES = 50

SCHEMA_CHECK = "schema"


def _table(key: dg.AssetKey) -> str:
    return ".".join(key.path)


def schema_check_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    # The schemas (`eqs_pipeline.tables.schemas`, named after their tables) are imported where a check
    # runs, not here: pandera and pandas take about 1.3 s to import, and every run's worker
    # loads the definitions without running a check (its steps run in processes forked from a
    # server that preloads them, `eqs_pipeline.runtime.executor`). A test checks that every spec has
    # its schema.
    return dg.AssetCheckSpec(
        SCHEMA_CHECK,
        asset=key,
        blocking=True,
        description=f"Rows conform to the pandera schema `{_table(key)}` (eqs_pipeline.tables.schemas).",
    )


def schema_check_result(key: dg.AssetKey, frame: pl.DataFrame) -> dg.AssetCheckResult:
    from eqs_pipeline.tables.schemas import SCHEMAS, validate_frame

    cases = validate_frame(SCHEMAS[_table(key)], frame)
    metadata: dict[str, dg.MetadataValue] = {
        "rows_checked": dg.MetadataValue.int(frame.height),
        "failure_count": dg.MetadataValue.int(len(cases)),
    }
    if cases:
        metadata["failure_cases"] = dg.MetadataValue.md(
            markdown_table(pl.DataFrame(cases[:MAX_FAILURE_CASES]), max_rows=MAX_FAILURE_CASES)
        )
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK, asset_key=key, passed=not cases, metadata=metadata
    )


def rows_check_result(
    name: str, key: dg.AssetKey, bad: pl.DataFrame, checked: int
) -> dg.AssetCheckResult:
    """The result of a domain's check `name` of `key` that found the rows `bad` among
    `checked`: passed when there are none; the first of them in the metadata."""
    metadata: dict[str, dg.MetadataValue] = {
        "rows_checked": dg.MetadataValue.int(checked),
        "failure_count": dg.MetadataValue.int(bad.height),
    }
    if bad.height:
        metadata["failures"] = dg.MetadataValue.md(markdown_table(bad, max_rows=20))
    return dg.AssetCheckResult(
        check_name=name, asset_key=key, passed=bad.height == 0, metadata=metadata
    )

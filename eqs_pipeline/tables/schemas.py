"""Pandera (polars) schemas of every warehouse table, generated from the registry.

Each table of `eqs_pipeline.tables.registry` (views aside) gets a schema: every column in the
table's order with its type, nullability and value checks (allowed values, bounds, patterns,
`finite`: no NaN or infinity), the table's key (`unique`) and its row checks, named after their
reason codes. The schemas are strict and ordered: a frame with a column the registry does not
declare, without one it declares, or with its columns in another order fails, so what a step
produces cannot drift from the registry. What a table checks is documented where it is declared
(`eqs_pipeline.tables.staging`, `quality`, `venue`).

`SCHEMAS` maps a warehouse table name (`staging.orders`, ...) to its schema; the Dagster layer
builds one blocking asset check per table with `validate_frame`.
"""

from __future__ import annotations

import copy
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from eqs_pipeline.core.contract import TS
from eqs_pipeline.core.keys import hashes_distinct
from eqs_pipeline.tables.quality import FILL_QUOTE_METRICS
from eqs_pipeline.tables.registry import TABLES
from eqs_pipeline.tables.spec import Column, RowCheck, Table

__all__ = [
    "EXECUTION_QUALITY_EVENTS",
    "FILL_QUALITY",
    "FILL_QUOTE_METRICS",
    "ORDER_QUALITY",
    "QUARANTINE",
    "SCHEMAS",
    "STAGING",
    "schema",
    "validate_frame",
]


def _row_check(check: RowCheck) -> pa.Check:
    """A dataframe-level check, named after its reason code, that every row satisfies `ok`.

    Null counts as satisfied: missing values are the nullable columns' business.
    """
    ok = check.ok
    return pa.Check(
        lambda data: data.lazyframe.select(ok.fill_null(True)),
        name=check.name,
        description=check.description,
    )


def _finite() -> pa.Check:
    """A float column holds no NaN and no infinity (nulls are the nullable columns' business)."""
    return pa.Check(
        lambda data: data.lazyframe.select(pl.col(data.key).is_finite().fill_null(True)),
        name="finite",
        description="no NaN or infinity (INGESTION.md: they are bad values, quarantined)",
    )


def _non_empty() -> pa.Check:
    return pa.Check(
        lambda data: data.lazyframe.select(pl.col(data.key).list.len() > 0),
        name="not_empty",
        description="holds at least one item",
    )


def _checks(col: Column) -> list[pa.Check]:
    checks = []
    if col.finite:
        checks.append(_finite())
    if col.gt is not None:
        checks.append(pa.Check.gt(col.gt))
    if col.ge is not None and col.le is not None:
        checks.append(pa.Check.in_range(col.ge, col.le))
    elif col.ge is not None:
        checks.append(pa.Check.ge(col.ge))
    elif col.le is not None:
        checks.append(pa.Check.le(col.le))
    if col.allowed:
        checks.append(pa.Check.isin(list(col.allowed)))
    if col.pattern:
        checks.append(pa.Check.str_matches(col.pattern))
    if col.non_empty:
        checks.append(_non_empty())
    return checks


def _column(col: Column) -> tuple[str, pa.Column]:
    column = pa.Column(
        col.dtype,
        _checks(col),
        nullable=col.nullable,
        unique=col.unique,
        regex=col.name_pattern is not None,
    )
    return (f"^{col.name_pattern}$" if col.name_pattern else col.name), column


def schema(table: Table) -> pa.DataFrameSchema:
    """The pandera schema of a registry table."""
    return pa.DataFrameSchema(
        dict(_column(c) for c in table.columns),
        checks=[_row_check(c) for c in table.row_checks],
        unique=list(table.unique) or None,
        strict=True,
        ordered=True,
        name=table.name,
        description=table.description,
    )


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    name: schema(table) for name, table in TABLES.items() if not table.view
}

STAGING: dict[str, pa.DataFrameSchema] = {
    name.removeprefix("staging."): s
    for name, s in SCHEMAS.items()
    if name.startswith("staging.") and name not in ("staging.quarantine", "staging.ingest_log")
}
QUARANTINE = SCHEMAS["staging.quarantine"]
FILL_QUALITY = SCHEMAS["quality.fill_quality"]
ORDER_QUALITY = SCHEMAS["quality.order_quality"]
EXECUTION_QUALITY_EVENTS = SCHEMAS["quality.execution_quality_events"]

# Time zones that name UTC: DuckDB reads TIMESTAMPTZ back as "Etc/UTC", the pipeline writes "UTC".
_UTC_ALIASES = frozenset(
    {"Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"}
)


def _utc(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with every timestamp in an alias of UTC relabelled UTC (the same instants)."""
    aliased = [
        name
        for name, dtype in df.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone in _UTC_ALIASES
    ]
    if not aliased:
        return df
    return df.with_columns(pl.col(aliased).dt.convert_time_zone(TS.time_zone))


# id(schema): (schema, its keyless copy); the schema is held, so its id is not reused.
_KEYLESS: dict[int, tuple[pa.DataFrameSchema, pa.DataFrameSchema]] = {}


def _keyless(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """`schema` without its `unique` check (a shallow copy, one per schema: the columns and
    checks are shared, never changed)."""
    if id(schema) not in _KEYLESS:
        keyless = copy.copy(schema)
        keyless.unique = None
        _KEYLESS[id(schema)] = (schema, keyless)
    return _KEYLESS[id(schema)][1]


def validate_frame(
    schema: pa.DataFrameSchema, df: pl.DataFrame, max_cases: int | None = None
) -> list[dict[str, Any]]:
    """Every failure of `df` against `schema` (lazy validation); [] when it passes.

    Timestamps in an alias of UTC ("Etc/UTC", as DuckDB reads them back) count as UTC. Each
    failure case is a dict with `schema_context`, `column`, `check`, `check_number`,
    `failure_case` (the offending value or row, as text) and `index` (row number, when known).
    `max_cases` truncates the list (for asset-check metadata).

    A key whose values hash distinct is distinct (`core.keys.hashes_distinct`): pandera then
    checks the rest without comparing the keys row by row (about 0.4 s of each table of 2M
    rows), and names every repeat where there may be one.
    """
    key = schema.unique or []
    if key and set(key) <= set(df.columns) and hashes_distinct(df, key):
        schema = _keyless(schema)
    try:
        schema.validate(_utc(df), lazy=True)
    except SchemaErrors as e:
        cases = e.failure_cases
    else:
        return []
    if max_cases is not None:
        cases = cases.head(max_cases)
    case = pl.col("failure_case")
    if isinstance(cases.schema["failure_case"], pl.List):  # the columns a regex did not match
        case = case.cast(pl.List(pl.String)).list.join(", ")
    return cases.with_columns(case.cast(pl.String)).to_dicts()

"""The DuckDB tables of the registry: each column's DuckDB type and each table's `create table`.

The warehouse creates a missing table with these columns and types (`declare` hands them to
`eqs_pipeline.storage.warehouse`, which cannot import this package; `eqs_pipeline.tables` calls
it when imported), so a table's columns, their order and their types come from the registry,
not from the first frame written. A column a setting renames (`Column.name_pattern`: the order's
reversion figure, named after `reversion_horizon_s`) takes the name the frame gives it, in its
place; a column the registry does not declare is added like the frame's, as before, and fails
the table's blocking schema check.

A `lake` table (`spec.Table.lake`) is a view over its lake partitions instead
(`lake_view_statement`), with the same columns and types, in the same order.

`python -m eqs_pipeline.tables.catalog --ddl` prints the statements (default settings).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from eqs_pipeline.storage import warehouse
from eqs_pipeline.tables.registry import TABLES
from eqs_pipeline.tables.spec import Table

_SIMPLE: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
    pl.Int8: "TINYINT",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.UInt8: "UTINYINT",
    pl.UInt16: "USMALLINT",
    pl.UInt32: "UINTEGER",
    pl.UInt64: "UBIGINT",
    pl.Float32: "FLOAT",
    pl.Float64: "DOUBLE",
    pl.Date: "DATE",
}


def duckdb_type(dtype: pl.DataType) -> str:
    """The DuckDB type a Polars column is stored as (what DuckDB makes of its Arrow type)."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_unit != "us":
            raise ValueError(f"{dtype}: the warehouse holds microsecond timestamps")
        return "TIMESTAMP WITH TIME ZONE" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.List):
        return f"{duckdb_type(dtype.inner)}[]"
    for polars_type, name in _SIMPLE.items():
        if dtype == polars_type:
            return name
    raise ValueError(f"no DuckDB type for the Polars type {dtype}")


def column_types(table: Table) -> list[tuple[str, str]]:
    """The table's columns and DuckDB types, in its order (default settings)."""
    return [(c.name, duckdb_type(c.dtype)) for c in table.columns]


def create_statement(name: str) -> str:
    """`create table if not exists` of the registry's table `name` (default settings)."""
    return warehouse.create_table_statement(name, column_types(TABLES[name]))


def table_columns(name: str, source: Sequence[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The columns and DuckDB types of table `name` for a frame or file with the columns
    `source` (name, DuckDB type): the registry's in its order, a column a setting renames under
    the source's name for it, then any column of the source the registry does not declare,
    with the source's type. None for a table the registry does not declare, or a view (a lake
    table loaded as a table, on object storage, is declared like any other)."""
    table = TABLES.get(name)
    if table is None or table.view:
        return None
    declared = set(table.names)
    source_types = dict(source)
    out: list[tuple[str, str]] = []
    for col in table.columns:
        dtype = duckdb_type(col.dtype)
        renamed = []
        if col.name_pattern and col.name not in source_types:
            renamed = [
                s for s in source_types if s not in declared and re.fullmatch(col.name_pattern, s)
            ]
        out += [(n, dtype) for n in renamed or [col.name]]
    covered = {n for n, _ in out}
    out += [(n, t) for n, t in source if n not in covered]
    return out


def lake_view_statement(name: str, partitions: str | None) -> str:
    """`create or replace view` of the registry's lake table `name` over the Parquet files that
    `partitions` matches (a glob, `lake.partition_glob`); None: over no rows (a lake without
    partitions of it, where `read_parquet` would fail). Each column is cast to the registry's
    type, so the view's columns and types are the table's whatever wrote the files; the trade
    date comes from the folder name (`hive_partitioning`), so a query of some dates opens only
    their files."""
    table = TABLES[name]
    if not table.lake:
        raise ValueError(f"{name} is not a lake table")
    columns = ",\n    ".join(
        f"cast({_quoted(c.name)} as {duckdb_type(c.dtype)}) as {_quoted(c.name)}"
        for c in table.columns
    )
    if partitions is None:
        source = "(select 1) as nothing where false"
        columns = ",\n    ".join(
            f"cast(null as {duckdb_type(c.dtype)}) as {_quoted(c.name)}" for c in table.columns
        )
    else:
        glob = partitions.replace("'", "''")
        source = f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
    return f"create or replace view {name} as\nselect\n    {columns}\nfrom {source}"


def _quoted(identifier: str) -> str:
    return '"{}"'.format(identifier.replace('"', '""'))


LAKE_TABLES: tuple[str, ...] = tuple(name for name, t in TABLES.items() if t.lake)
"""The tables kept only in the lake, with a view in the warehouse (where the lake is local)."""


def declare() -> None:
    """Have the warehouse create and extend the registry's tables with `table_columns`."""
    warehouse.declare_tables(table_columns)


DDL: dict[str, str] = {name: create_statement(name) for name, t in TABLES.items() if not t.view}
"""Table name -> its `create table if not exists` statement (default settings)."""

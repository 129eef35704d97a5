"""The table registry is the one description of the warehouse: what the pipeline produces, the
warehouse it builds, the golden files and docs/TABLES.md all agree with it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import get_args

import duckdb
import polars as pl
import pytest

from eqs_pipeline.storage import warehouse
from eqs_pipeline.tables.catalog import render_markdown
from eqs_pipeline.tables.ddl import DDL, duckdb_type, lake_view_statement, table_columns
from eqs_pipeline.tables.registry import TABLES
from eqs_pipeline.tables.spec import Column, RowCheck, Table, Unit
from eqs_pipeline_tests import golden

DOCS = Path(__file__).parents[1] / "docs" / "TABLES.md"
DAY = date(2026, 11, 2)


def test_docs_tables_md_is_generated_from_the_registry() -> None:
    assert DOCS.read_text() == render_markdown(), (
        "docs/TABLES.md is stale: run `.venv/bin/python -m eqs_pipeline.tables.catalog > docs/TABLES.md`"
    )


def test_every_column_is_described_with_a_known_unit() -> None:
    units = set(get_args(Unit))
    for table in TABLES.values():
        assert table.description, table.name
        for col in table.columns:
            assert col.description.strip(), (table.name, col.name)
            assert col.unit is None or col.unit in units, (table.name, col.name, col.unit)
            duckdb_type(col.dtype)  # every declared type has a DuckDB type


def test_a_table_refuses_a_key_or_row_check_on_an_undeclared_column() -> None:
    cols = (Column("a", pl.Int64, "A."),)
    with pytest.raises(ValueError, match="not columns"):
        Table("x.t", "T.", cols, unique=("b",))
    with pytest.raises(ValueError, match="not columns"):
        Table("x.t", "T.", cols, row_checks=(RowCheck("r", "b > a", pl.col("b") > pl.col("a")),))
    with pytest.raises(ValueError, match="twice"):
        Table("x.t", "T.", cols * 2)


# --- the built warehouse and the golden files ----------------------------------------------------


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "select table_schema || '.' || table_name, column_name, data_type "
        "from information_schema.columns order by table_schema, table_name, ordinal_position"
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        out.setdefault(table, []).append((column, data_type))
    return out


def test_the_built_warehouse_has_exactly_the_registrys_tables_columns_and_types(
    built_warehouse,
) -> None:
    """Views included: venue.scorecard_from_fills, created by its SQL, has the declared columns."""
    _, path, report = built_warehouse
    assert report.check_failures == []
    with duckdb.connect(str(path), read_only=True) as con:
        built = _columns(con)
    assert sorted(built) == sorted(TABLES)
    for name, table in TABLES.items():
        want = [(c.name, duckdb_type(c.dtype)) for c in table.columns]
        assert built[name] == want, name


def _describe(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple[str, str]]:
    return [tuple(row[:2]) for row in con.execute(f"describe {query}").fetchall()]


def test_the_ddl_gives_the_golden_files_types() -> None:
    """Every table of the registry has a golden file (views too), and the DDL's columns and
    types are DuckDB's reading of that file (less the volatile columns the golden files leave
    out); so are those of a lake table's view over Parquet files like it."""
    files = {p.stem for p in golden.HERE.glob("*.parquet")}
    assert files == set(TABLES)
    with duckdb.connect() as con:
        for schema in {name.split(".")[0] for name in DDL}:
            con.execute(f"create schema {schema}")
        for name, statement in DDL.items():
            con.execute(statement)
            created = [c for c in _describe(con, name) if c[0] not in golden.VOLATILE]
            want = _describe(con, f"select * from read_parquet('{golden.path(name)}')")
            assert created == want, name
            if TABLES[name].lake:
                con.execute(f"drop table {name}")
                con.execute(lake_view_statement(name, str(golden.path(name))))
                assert _describe(con, name) == want, name
                con.execute(lake_view_statement(name, None))  # no partition yet: no rows
                assert _describe(con, name) == want, name
                assert con.execute(f"select count(*) from {name}").fetchall() == [(0,)]


# --- what the pipeline produces -------------------------------------------------------------------


def _lake_partitions(lake: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for part in sorted(lake.glob("*/*/**/*.parquet")):
        schema, table = part.relative_to(lake).parts[:2]
        if not schema.startswith("_"):  # `_window/`: the window's stored rows, not a table
            found.setdefault(f"{schema}.{table}", []).append(part)
    return found


def test_what_the_pipeline_produces_passes_the_registrys_schemas(built_warehouse) -> None:
    """Every lake partition the daily steps wrote and every window table, against the schema
    generated from the registry: strict (no undeclared column, none missing), ordered, typed."""
    from eqs_pipeline.tables.schemas import SCHEMAS, validate_frame

    _, path, _ = built_warehouse
    partitions = _lake_partitions(path.parent / "lake")
    assert len(partitions) == 15, sorted(partitions)  # the fourteen daily tables, the instruments
    internal = {p.name for p in (path.parent / "lake").iterdir() if p.name.startswith("_")}
    assert internal == {"_window"}
    for table, files in partitions.items():
        for file in files:
            frame = pl.read_parquet(file)
            assert list(frame.schema.items()) == list(TABLES[table].polars_schema.items()), file
            assert validate_frame(SCHEMAS[table], frame, max_cases=5) == [], file
    window = sorted(set(SCHEMAS) - set(partitions))
    assert window == [
        "algo.algo_daily",  # the algo tables: one window step writes them all
        "algo.algo_parameters",
        "algo.algo_recommendations",
        "algo.algo_scorecard",
        "algo.algo_selection",
        "algo.broker_algo_scorecard",
        "model.model_versions",  # empty until a training (its own test: defs/test_model.py)
        "model.quality_forecast",  # empty until a training too
        "monitor.alerts",  # none on a desk of three dates: no baseline yet
        "monitor.deliveries",
        "venue.routing_recommendations",
        "venue.venue_performance_events",
        "venue.venue_scorecard",
    ]
    with duckdb.connect(str(path), read_only=True) as con:
        views = {f"{s}.{v}" for s, v in con.execute(
            "select schema_name, view_name from duckdb_views() where not internal"
        ).fetchall()}  # fmt: skip
    assert views == {t for t, spec in TABLES.items() if spec.lake or spec.view}
    with duckdb.connect(str(path), read_only=True) as con:
        for table in window:
            frame = con.execute(f"select * from {table}").pl()
            # No broker x algo pair of the small desk has min_pair_orders orders: none is shown
            # (eqs_pipeline_tests/algos validates that table's frames).
            empty = (
                table.startswith(("model.", "monitor.")) or table == "algo.broker_algo_scorecard"
            )
            assert frame.height > 0 or empty, table
            assert validate_frame(SCHEMAS[table], frame, max_cases=5) == [], table


# --- the warehouse creates the registry's tables ----------------------------------------------------


def _warehouse_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".")
    return con.execute(
        warehouse.sql("select_table_columns"), {"schema": schema, "name": name}
    ).fetchall()


def _empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=TABLES[table].polars_schema)


def test_a_missing_table_is_created_with_the_registrys_columns_order_and_types(tmp_path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    table = "venue.venue_daily"
    # Columns in another order, a count as Int64: the table still takes the registry's.
    frame = _empty(table).with_columns(pl.col("fills").cast(pl.Int64))
    frame = frame.select(reversed(frame.columns))
    with warehouse.transaction(con):
        warehouse.replace_partition(con, table, frame, DAY)
    assert _warehouse_columns(con, table) == list(table_columns(table, []))
    assert dict(_warehouse_columns(con, table))["fills"] == "UINTEGER"


def test_an_older_table_gains_the_declared_columns_it_lacks(tmp_path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    table = "staging.quotes"
    con.execute(f"create table {table} (symbol VARCHAR, trade_date DATE)")
    with warehouse.transaction(con):
        warehouse.replace_partition(con, table, _empty(table), DAY)
    got = dict(_warehouse_columns(con, table))
    assert got == dict(table_columns(table, []))


def test_a_renamed_reversion_column_takes_its_place(tmp_path) -> None:
    """reversion_horizon_s = 60 names the order's reversion figure reversion_60s_bps: the table
    has it where reversion_300s_bps would be, and the schema accepts it."""
    from eqs_pipeline.tables.schemas import ORDER_QUALITY, validate_frame

    table = "quality.order_quality"
    frame = _empty(table).rename({"reversion_300s_bps": "reversion_60s_bps"})
    assert validate_frame(ORDER_QUALITY, frame) == []
    con = warehouse.connect(tmp_path / "w.duckdb")
    with warehouse.transaction(con):
        warehouse.replace_partition(con, table, frame, DAY)
    assert [c for c, _ in _warehouse_columns(con, table)] == frame.columns


def test_an_undeclared_column_is_added_like_the_frame_and_fails_the_schema(tmp_path) -> None:
    from eqs_pipeline.tables.schemas import SCHEMAS, validate_frame

    table = "venue.venue_performance_events"
    frame = _empty(table).with_columns(extra=pl.lit(None, pl.Int16))
    checks = {c["check"] for c in validate_frame(SCHEMAS[table], frame)}
    assert "column_in_schema" in checks
    con = warehouse.connect(tmp_path / "w.duckdb")
    with warehouse.transaction(con):
        warehouse.replace_table(con, table, frame)
    assert _warehouse_columns(con, table)[-1] == ("extra", "SMALLINT")


def test_a_table_the_registry_does_not_declare_is_created_like_the_frame(tmp_path) -> None:
    assert table_columns("quality.t", [("x", "BIGINT")]) is None
    assert table_columns("venue.scorecard_from_fills", [("venue", "VARCHAR")]) is None
    con = warehouse.connect(tmp_path / "w.duckdb")
    with warehouse.transaction(con):
        warehouse.replace_table(con, "quality.t", pl.DataFrame({"b": [1.0], "a": ["x"]}))
    assert _warehouse_columns(con, "quality.t") == [("b", "DOUBLE"), ("a", "VARCHAR")]


# --- the Dagster column schema ------------------------------------------------------------------


def test_the_dagster_column_schema_comes_from_the_registry() -> None:
    from eqs_pipeline.defs.metadata import column_schema

    for name, table in TABLES.items():
        schema = column_schema(name)
        assert [c.name for c in schema.columns] == table.names
        for column, declared in zip(schema.columns, table.columns, strict=True):
            assert column.description == declared.description
            assert column.type == str(declared.dtype)
            assert column.constraints.nullable == declared.nullable
            assert (column.tags or {}).get("unit") == declared.unit
    fills = column_schema("quality.fill_quality")
    assert fills.columns[0].constraints.unique  # exec_id, the table's key
    assert any(c.startswith("null_reason_iff_no_quote") for c in fills.constraints.other)


def test_every_asset_of_a_table_declares_its_columns() -> None:
    """The column schema is the definition's (one copy, not one per materialized date)."""
    from eqs_pipeline.definitions import defs
    from eqs_pipeline.defs.metadata import column_schema

    graph = defs().resolve_asset_graph()
    tables = {k: ".".join(k.path) for k in graph.get_all_asset_keys()}
    declared = {k: t for k, t in tables.items() if t in TABLES}
    assert len(declared) == len(tables) - 1  # all but warehouse/day, which has no table
    for key, table in declared.items():
        schema = graph.get(key).metadata["dagster/column_schema"].schema
        assert schema == column_schema(table), table

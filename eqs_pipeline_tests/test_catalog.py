"""Every warehouse column is documented, and docs/TABLES.md is the catalog's current rendering."""

from __future__ import annotations

from pathlib import Path

import duckdb

from eqs_pipeline.tables.catalog import TABLES, render_markdown

DOCS = Path(__file__).parents[1] / "docs" / "TABLES.md"


def test_docs_tables_md_is_generated_from_the_catalog() -> None:
    assert DOCS.read_text() == render_markdown(), (
        "docs/TABLES.md is stale: run `.venv/bin/python -m eqs_pipeline.tables.catalog > docs/TABLES.md`"
    )


def test_every_column_of_the_built_warehouse_is_documented(built_warehouse) -> None:
    _, warehouse, _ = built_warehouse
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = con.execute(
            "select table_schema || '.' || table_name, column_name from information_schema.columns"
        ).fetchall()
    undocumented = [
        f"{table}.{column}"
        for table, column in columns
        if table not in TABLES or column not in TABLES[table].columns
    ]
    assert undocumented == []

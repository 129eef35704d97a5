"""The data catalog: docs/TABLES.md, rendered from the table registry.

Every warehouse table and column is declared once, in `eqs_pipeline.tables.registry` (the
modules `staging`, `quality` and `venue`); this module renders that declaration as docs/TABLES.md:

    .venv/bin/python -m eqs_pipeline.tables.catalog > docs/TABLES.md

and a test keeps the page in sync (`--ddl` prints the DuckDB `create table` statements instead). The assets attach the same descriptions to their
materializations as Dagster column schemas (`eqs_pipeline.defs.metadata`), which the UI's
catalog shows.
"""

from __future__ import annotations

import sys

from eqs_pipeline.tables.ddl import DDL, duckdb_type
from eqs_pipeline.tables.registry import TABLES
from eqs_pipeline.tables.spec import Table

__all__ = ["TABLES", "render_ddl", "render_markdown", "render_table"]


def _cell(text: str) -> str:
    """`text` in a markdown table cell: a pipe would end the cell."""
    return text.replace("|", "\\|")


def render_table(table: Table) -> list[str]:
    """The section of docs/TABLES.md for one table."""
    lines = [f"## `{table.name}`", "", table.description, ""]
    if table.lake:
        lines += [
            "Stored once, in the Parquet lake (one file per trade date); the warehouse holds a "
            "view over those files with these columns ([ARCHITECTURE.md](ARCHITECTURE.md), "
            '"Where each table lives").',
            "",
        ]
    if table.unique:
        lines += ["Key: " + ", ".join(f"`{c}`" for c in table.unique) + ".", ""]
    lines += ["| column | type | unit | rules | meaning |", "|---|---|---|---|---|"]
    for c in table.columns:
        rules = "; ".join(c.rules(code=lambda text: f"`{text}`"))
        lines.append(
            f"| `{c.name}` | {duckdb_type(c.dtype)} | {c.unit or ''} | {_cell(rules)} "
            f"| {_cell(c.description)} |"
        )
    if table.row_checks:
        lines += ["", "Row checks:", ""]
        lines += [f"- `{check.name}`: {check.description}." for check in table.row_checks]
    lines.append("")
    return lines


def render_markdown() -> str:
    """docs/TABLES.md."""
    lines = [
        "# Warehouse tables",
        "",
        "Generated from the table registry, `eqs_pipeline/tables/` (`python -m eqs_pipeline.tables.catalog > docs/TABLES.md`);",
        "the Dagster UI shows the same descriptions as each asset's column schema. Columns are in their",
        "warehouse order, with their DuckDB type, unit and rules; each table's pandera schema",
        "(`eqs_pipeline/tables/schemas.py`, views aside) enforces them with its key and row checks.",
        "Formulas, signs and worked examples of the metrics: [METRICS.md](METRICS.md); ingestion rules:",
        "[INGESTION.md](INGESTION.md).",
        "",
    ]
    for table in TABLES.values():
        lines += render_table(table)
    return "\n".join(lines)


def render_ddl() -> str:
    """Every table's `create table if not exists` statement (default settings)."""
    return "".join(f"{statement.rstrip()};\n" for statement in DDL.values())


if __name__ == "__main__":
    print(render_ddl() if sys.argv[1:] == ["--ddl"] else render_markdown(), end="")

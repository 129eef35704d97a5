"""Asset metadata: the column schema of each asset's table (from the table registry,
`eqs_pipeline.tables`), declared once with the asset's definition; and each materialization's
row count, markdown preview and key figures as floats."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

import dagster as dg
import polars as pl

from eqs_pipeline.tables.registry import TABLES
from eqs_pipeline.tables.spec import Table

PREVIEW_ROWS = 10


# What a table cell's text must not carry into the Dagster UI's markdown: HTML (escaped as
# entities), the markdown that links, emphasises or splits a cell (backslash-escaped) and line
# breaks (a row is one line). The data is the desk's, and a preview shows it, never runs it.
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")


def escape_markdown(text: str) -> str:
    """`text` as literal text in a GitHub-flavoured markdown table cell."""
    return _MARKDOWN.sub(r"\\\1", html.escape(_LINE_BREAKS.sub(" ", text), quote=False))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}"
    return escape_markdown(str(value))


def markdown_table(frame: pl.DataFrame, max_rows: int = PREVIEW_ROWS) -> str:
    """A GitHub-flavoured markdown table of the first rows (the Dagster UI renders it)."""
    head = frame.head(max_rows)
    lines = [
        "| " + " | ".join(escape_markdown(c) for c in head.columns) + " |",
        "|" + "---|" * len(head.columns),
        *("| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()),
    ]
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows:,} more rows_")
    return "\n".join(lines)


def frame_metadata(
    frame: pl.DataFrame, figures: Mapping[str, float | None] | None = None
) -> dict[str, dg.MetadataValue]:
    """Row count, preview and key figures (floats, so the UI plots them). The columns are the
    definition's (`columns_metadata`): a materialization of a range of trade dates is stored
    once per date, and the column schema was most of each copy (0.9 s of a run of 20 dates)."""
    meta: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(frame.height),
        "preview": dg.MetadataValue.md(markdown_table(frame)),
    }
    for name, value in (figures or {}).items():
        if value is not None:
            meta[name] = dg.MetadataValue.float(float(value))
    return meta


def columns_metadata(key: dg.AssetKey) -> dict[str, dg.MetadataValue]:
    """The definition metadata of the asset of a registry table (the key staging/executions:
    the table `staging.executions`): its `dagster/column_schema` (`column_schema`)."""
    schema = column_schema(".".join(key.path))
    return {"dagster/column_schema": dg.MetadataValue.table_schema(schema)}


def column_schema(table: str) -> dg.TableSchema:
    """The table's columns as the registry declares them (type, description, unit, rules) with
    its key and row checks, for the Dagster catalog. What a step writes is held to them by the
    blocking schema check."""
    declared = TABLES[table]
    columns = [
        dg.TableColumn(
            col.name,
            str(col.dtype),
            description=col.description,
            constraints=dg.TableColumnConstraints(
                nullable=col.nullable,
                unique=col.unique or (declared.unique == (col.name,)),
                other=[r for r in col.rules() if r not in ("not null", "unique")],
            ),
            tags={"unit": col.unit} if col.unit else None,
        )
        for col in declared.columns
    ]
    return dg.TableSchema(columns=columns, constraints=_table_constraints(declared))


def _table_constraints(table: Table) -> dg.TableConstraints | None:
    if not (table.unique or table.row_checks):
        return None
    other = [f"unique ({', '.join(table.unique)})"] if table.unique else []
    other += [f"{check.name}: {check.description}" for check in table.row_checks]
    return dg.TableConstraints(other=other)

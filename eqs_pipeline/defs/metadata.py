"""Materialization metadata: row counts, a markdown preview and key figures as floats."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import polars as pl

PREVIEW_ROWS = 10


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pl.DataFrame, max_rows: int = PREVIEW_ROWS) -> str:
    """A GitHub-flavoured markdown table of the first rows (the Dagster UI renders it)."""
    head = frame.head(max_rows)
    lines = [
        "| " + " | ".join(head.columns) + " |",
        "|" + "---|" * len(head.columns),
        *("| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()),
    ]
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows:,} more rows_")
    return "\n".join(lines)


def frame_metadata(
    frame: pl.DataFrame, figures: Mapping[str, float | None] | None = None
) -> dict[str, dg.MetadataValue]:
    """Row count, preview, and key figures (floats, so the UI plots them over partitions)."""
    meta: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(frame.height),
        "preview": dg.MetadataValue.md(markdown_table(frame)),
    }
    for name, value in (figures or {}).items():
        if value is not None:
            meta[name] = dg.MetadataValue.float(float(value))
    return meta

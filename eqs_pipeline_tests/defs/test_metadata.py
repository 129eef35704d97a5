"""Tier 2: the markdown previews of materializations show the data as text."""

from __future__ import annotations

import polars as pl

from eqs_pipeline.defs.metadata import escape_markdown, markdown_table


def test_preview_cells_carry_no_html_markdown_or_line_breaks() -> None:
    frame = pl.DataFrame(
        {
            "venue": [
                '<img src=x onerror="alert(1)">',
                "[click](javascript:alert(1))",
                "ARCX\nXNAS | row",
                "**loud** _x_ `code`",
            ],
            "fills": [1, 2, 3, 4],
        }
    )
    table = markdown_table(frame)
    lines = table.splitlines()
    assert len(lines) == 2 + frame.height  # header, rule, one line per row
    assert all(line.count(" | ") == 1 for line in lines[2:])  # no cell split by a "|"
    assert "<img" not in table and "&lt;img" in table
    assert "](" not in table.replace("\\](", "")  # no link syntax left unescaped
    assert "\\*\\*loud\\*\\*" in table and "\\`code\\`" in table


def test_ordinary_values_are_unchanged() -> None:
    for text in ("ARCX", "2026-11-02", "O20261102-000001", "BUY", "12.5"):
        assert escape_markdown(text) == text

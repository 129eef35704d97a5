"""An SVG chart of each venue's all-in cost with its confidence interval (no plotting library).

`markdown_image` wraps it as a markdown image with a base64 data URI, which the Dagster UI
renders inside markdown metadata.
"""

from __future__ import annotations

import base64
from html import escape

import polars as pl

ROW_H, LEFT, WIDTH, TOP = 26, 70, 560, 34


def cost_chart_svg(scorecard: pl.DataFrame, metric: str = "all_in_cost_bps") -> str:
    """Horizontal bars (the estimate) with error bars (the interval), one row per venue."""
    rows = scorecard.filter(pl.col(metric).is_not_null()).sort(metric)
    lo = min([0.0, *rows[f"{metric}_ci_low"].drop_nulls().to_list()])
    hi = max([0.0, *rows[f"{metric}_ci_high"].drop_nulls().to_list()])
    span = (hi - lo) or 1.0
    plot_w = WIDTH - LEFT - 20

    def x(v: float) -> float:
        return LEFT + (v - lo) / span * plot_w

    height = TOP + ROW_H * rows.height + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-weight="bold">{escape(metric)} by venue '
        "(mix-adjusted, with confidence interval; lower is better)</text>",
        f'<line x1="{x(0):.1f}" y1="{TOP - 6}" x2="{x(0):.1f}" y2="{height - 26}" stroke="#888"/>',
    ]
    for i, row in enumerate(rows.iter_rows(named=True)):
        y = TOP + i * ROW_H
        v, low, high = row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
        color = "#c0392b" if v > 0 else "#27ae60"
        x0, x1 = sorted((x(0), x(v)))
        parts += [
            f'<text x="{LEFT - 8}" y="{y + 15}" text-anchor="end">{escape(row["venue"])}</text>',
            f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 1):.1f}" height="{ROW_H - 10}" '
            f'fill="{color}" fill-opacity="0.6"/>',
        ]
        if low is not None and high is not None:
            ym = y + ROW_H / 2
            parts += [
                f'<line x1="{x(low):.1f}" y1="{ym}" x2="{x(high):.1f}" y2="{ym}" stroke="black"/>',
                f'<line x1="{x(low):.1f}" y1="{ym - 5}" x2="{x(low):.1f}" y2="{ym + 5}" '
                'stroke="black"/>',
                f'<line x1="{x(high):.1f}" y1="{ym - 5}" x2="{x(high):.1f}" y2="{ym + 5}" '
                'stroke="black"/>',
            ]
    axis_y = height - 12
    for v in (lo, 0.0, hi):
        parts.append(f'<text x="{x(v):.1f}" y="{axis_y}" text-anchor="middle">{v:.1f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def markdown_image(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode()).decode()
    return f"![{alt}](data:image/svg+xml;base64,{data})"

"""The `market_data` check of the quality assets: severity WARN, never blocking.

A trade date on which more than `max_no_market_data_share` (`QualitySettings`, exposed by
`MetricSettingsResource`) of the orders have no arrival quote, or of the fills no prior quote,
usually lacks a symbol's quotes: those fills have no spreads or markouts and those orders are
not graded (docs/METRICS.md, "Quality score"). The step still writes its tables; the check fails
as a warning, and its metadata names the symbols concerned, most affected first, with counts.
"""

from __future__ import annotations

from typing import NamedTuple

import dagster as dg
import polars as pl

from eqs_pipeline.defs.metadata import markdown_table

MARKET_DATA_CHECK = "market_data"
TOP_SYMBOLS = 10


class _Coverage(NamedTuple):
    rows: str
    lack: str
    missing: pl.Expr


_COVERAGE = {
    "quality.fill_quality": _Coverage(
        "fills", "no prior quote", (pl.col("null_reason") == "no_prior_quote").fill_null(False)
    ),
    "quality.order_quality": _Coverage(
        "orders", "no arrival quote", pl.col("arrival_mid").is_null()
    ),
}


def _coverage(key: dg.AssetKey) -> _Coverage:
    return _COVERAGE[".".join(key.path)]


def market_data_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    what = _coverage(key)
    return dg.AssetCheckSpec(
        MARKET_DATA_CHECK,
        asset=key,
        blocking=False,
        description=f"Warns when more than `max_no_market_data_share` (MetricSettingsResource, "
        f"default 1%) of the trade date's {what.rows} have {what.lack}, naming the symbols.",
    )


def missing_by_symbol(frame: pl.DataFrame, key: dg.AssetKey) -> pl.DataFrame:
    """symbol, rows: the rows of `frame` without market data per symbol, most first."""
    return (
        frame.filter(_coverage(key).missing)
        .group_by("symbol")
        .agg(rows=pl.len().cast(pl.Int64))
        .sort(["rows", "symbol"], descending=[True, False])
    )


def market_data_result(
    key: dg.AssetKey, frame: pl.DataFrame, max_share: float
) -> dg.AssetCheckResult:
    what = _coverage(key)
    by_symbol = missing_by_symbol(frame, key)
    missing = int(by_symbol["rows"].sum())
    share = missing / frame.height if frame.height else 0.0
    metadata: dict[str, dg.MetadataValue] = {
        "rows_checked": dg.MetadataValue.int(frame.height),
        "rows_without_market_data": dg.MetadataValue.int(missing),
        "share_without_market_data": dg.MetadataValue.float(share),
        "max_no_market_data_share": dg.MetadataValue.float(max_share),
        "symbols_affected": dg.MetadataValue.int(by_symbol.height),
    }
    if missing:
        metadata["symbols"] = dg.MetadataValue.md(
            markdown_table(by_symbol.rename({"rows": what.rows}), max_rows=TOP_SYMBOLS)
        )
    return dg.AssetCheckResult(
        check_name=MARKET_DATA_CHECK,
        asset_key=key,
        passed=share <= max_share,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{missing:,} of {frame.height:,} {what.rows} ({share:.2%}) have {what.lack}"
        f" in {by_symbol.height:,} symbol(s)",
        metadata=metadata,
    )

"""The monitoring's own check: `open_alerts` warns (severity WARN, not blocking) while an alert
is open, so the Dagster UI shows on the asset what needs someone's attention; its metadata
lists the open and acknowledged alerts."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl

from eqs_pipeline.defs.metadata import markdown_table

OPEN_ALERTS_CHECK = "open_alerts"


def open_alerts_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        OPEN_ALERTS_CHECK,
        asset=key,
        blocking=False,
        description="Warns while an alert is open (raised and not yet acknowledged); lists the "
        "open and acknowledged alerts. `eqs alerts ack ID` acknowledges one.",
    )


def _quoted(alerts: pl.DataFrame) -> pl.DataFrame:
    """The alerts as a reader scans them: what, since when, how bad, and the numbers."""

    def figures(text: str) -> str:
        e = json.loads(text)
        parts = [
            f"{name} {e[key]:.4g}"
            for name, key in (("baseline", "baseline"), ("recent", "recent_level"))
            if e.get(key) is not None
        ]
        if e.get("cost_per_day") is not None:
            parts.append(f"cost/day {e['cost_per_day']:,.0f}")
        return ", ".join(parts)

    return alerts.sort("severity", "trade_date", descending=[True, False]).select(
        "alert_id",
        "status",
        "severity",
        "dimension",
        "subject",
        "metric",
        pl.col("trade_date").alias("since"),
        "last_alarm_date",
        "detector",
        pl.col("evidence").map_elements(figures, return_dtype=pl.String).alias("evidence"),
    )


def open_alerts_result(key: dg.AssetKey, alerts: pl.DataFrame) -> dg.AssetCheckResult:
    active = alerts.filter(pl.col("status").is_in(["open", "acknowledged"]))
    opened = active.filter(pl.col("status") == "open")
    metadata: dict[str, dg.MetadataValue] = {
        "open": dg.MetadataValue.int(opened.height),
        "acknowledged": dg.MetadataValue.int(active.height - opened.height),
    }
    if active.height:
        metadata["alerts"] = dg.MetadataValue.md(markdown_table(_quoted(active), max_rows=50))
    return dg.AssetCheckResult(
        check_name=OPEN_ALERTS_CHECK,
        asset_key=key,
        passed=opened.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )

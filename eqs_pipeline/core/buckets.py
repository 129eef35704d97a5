"""Three-way buckets of a measure by two edges, and the checks of the settings that define them,
shared by the analyses that compare like with like (venues, algos)."""

from __future__ import annotations

import re
import zoneinfo

import polars as pl

# The bucket of a row whose measure is missing.
UNKNOWN = "unknown"


def bucket(value: pl.Expr, edges: tuple[float, float], names: tuple[str, str, str]) -> pl.Expr:
    """names[0] below the first edge, names[1] below the second, names[2] from it on;
    `UNKNOWN` where the value is null or NaN."""
    low, high = edges
    return (
        pl.when(value.is_null() | value.is_nan())
        .then(pl.lit(UNKNOWN))
        .when(value < low)
        .then(pl.lit(names[0]))
        .when(value < high)
        .then(pl.lit(names[1]))
        .otherwise(pl.lit(names[2]))
    )


def clock_minutes(clock: str) -> int:
    """Minutes after midnight of "HH:MM" (a time-of-day bucket edge)."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", clock)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"time_edges take times as 'HH:MM', not {clock!r}")
    return int(match[1]) * 60 + int(match[2])


def check_comparison(settings: object, edges: tuple[str, ...], controls: tuple[str, ...],
                     metrics: tuple[str, ...]) -> None:  # fmt: skip
    """Raise ValueError for what the venue and algo comparisons' settings share: the bucket
    `edges` fields (two increasing values each; `time_edges` as "HH:MM"), `controls` distinct
    names of the allowed ones, `session_timezone` an IANA zone and `score_weights` naming
    only `metrics`."""
    chosen = tuple(settings.controls)  # type: ignore[attr-defined]
    if set(chosen) - set(controls) or len(set(chosen)) != len(chosen):
        raise ValueError(f"controls must be distinct names of {controls}, not {chosen}")
    for name in edges:
        values = getattr(settings, name)
        low, high = (clock_minutes(v) for v in values) if name == "time_edges" else values
        if not low < high:
            raise ValueError(f"{name} must be two increasing edges, not {values}")
    zone = settings.session_timezone  # type: ignore[attr-defined]
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"session_timezone {zone!r} is not an IANA time zone "
            "(e.g. America/New_York, Europe/London)"
        ) from exc
    unknown = set(settings.score_weights) - set(metrics)  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(f"score_weights name unknown metrics {sorted(unknown)}; use {metrics}")

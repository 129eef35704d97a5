"""Three-way buckets of a measure by two edges, shared by the analyses that compare like with
like (venues, algos)."""

from __future__ import annotations

import re

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

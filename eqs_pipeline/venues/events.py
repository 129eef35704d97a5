"""VenuePerformanceEvent records: one per venue each time the scorecard is refreshed.

Envelope columns (event_id, event_type, schema_version, window_start, window_end, venue,
emitted_at) and a versioned JSON payload with the venue's score, rank and every key metric with
its interval. `event_id` = vpe:<venue>:<window_end>:<schema_version>, so a refresh of the same
window emits the same ids and consumers can de-duplicate.
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.venues.settings import KEY_METRICS

EVENT_TYPE = "VenuePerformanceEvent"
SCHEMA_VERSION = "1.0.0"

PAYLOAD_FIELDS: tuple[str, ...] = (
    "venue",
    "trade_days",
    "score",
    "score_ci_low",
    "score_ci_high",
    "rank",
    "rank_tier_members",
    "fills",
    "shares",
    "notional",
    "flow_share",
    *[c for m in KEY_METRICS for c in (m, f"{m}_ci_low", f"{m}_ci_high")],
)


def venue_performance_events(scorecard: pl.LazyFrame, emitted_at: pl.Expr) -> pl.LazyFrame:
    """One event per scorecard row; `emitted_at` is the refresh instant (a literal)."""
    return scorecard.select(
        pl.concat_str(
            pl.lit("vpe:"),
            pl.col("venue"),
            pl.lit(":"),
            pl.col("window_end").cast(pl.String),
            pl.lit(f":{SCHEMA_VERSION}"),
        ).alias("event_id"),
        pl.lit(EVENT_TYPE).alias("event_type"),
        pl.lit(SCHEMA_VERSION).alias("schema_version"),
        "window_start",
        "window_end",
        "venue",
        emitted_at.alias("emitted_at"),
        pl.struct(
            pl.lit(EVENT_TYPE).alias("event_type"),
            pl.lit(SCHEMA_VERSION).alias("schema_version"),
            pl.col("window_start").cast(pl.String),
            pl.col("window_end").cast(pl.String),
            *PAYLOAD_FIELDS,
        )
        .struct.json_encode()
        .alias("payload"),
    )

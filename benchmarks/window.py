"""The window assets' computation at scale: the venue scorecard and the routing recommendations
over every trade date of a benchmark data set (the data set is the trailing window).

The inputs are built day by day with the functions the daily assets call
(`benchmarks.cases.pipeline_frames`: fill and order quality; `eqs_pipeline.venues.frames`:
venue fills and children, as `eqs_pipeline.venues.window.load_window` builds them from the
warehouse) and concatenated, keeping only the columns the scorecard and the optimizer read.
Then `venue_scorecard` and `routing_recommendations` run on them as the window assets call
them, with the default `VenueSettings` (conditional intervals, clusters = parent orders).

    .venv/bin/python -m benchmarks.window benchmarks/.cache/1m-d5-s500-o4200-r11

prints one JSON object: fills, children, clusters, seconds per stage, the resident set once
the inputs are built, and each stage's own peak resident set (Linux: the high-water mark is
reset before the stage, /proc/self/clear_refs), so the statistics' peak is not hidden by the
input building's (the daily metric pipeline, which the window assets do not run).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl

from benchmarks.cases import pipeline_frames
from benchmarks.datasets import staged, trade_dates
from benchmarks.memory import reset_peak, status_bytes
from eqs_pipeline.venues.frames import venue_frames
from eqs_pipeline.venues.routing import routing_recommendations
from eqs_pipeline.venues.scorecard import venue_scorecard
from eqs_pipeline.venues.settings import KEY_METRICS, VenueSettings

CELL_COLUMNS = ("venue", "liquidity_flag", "size_bucket", "liquidity_bucket", "cluster")
FILL_COLUMNS = (
    *CELL_COLUMNS,
    "qty",
    "notional",
    "quoted_spread_bps",
    *(m for m in KEY_METRICS if m != "fill_rate"),
)
CHILD_COLUMNS = ("trade_date", "symbol", *CELL_COLUMNS, "qty", "filled_qty", "fill_rate")
STAGED = ("executions", "quotes", "orders", "market_trades", "child_orders")
GiB = 1024**3


def _memory_gib(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak since the last reset) of this process."""
    value = status_bytes(field)
    if value is None:
        raise RuntimeError(f"{field} not in /proc/self/status (the window case needs Linux)")
    return value / GiB


def window_inputs(
    folder: Path, settings: VenueSettings
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, tuple[date, date, int]]:
    """(fills, children, tape volume, window bounds) of every trade date of the data set."""
    instruments = staged(folder, "instruments").collect()
    fills, children, tape = [], [], []
    dates = trade_dates(folder)
    for day in dates:
        frames = {table: staged(folder, table, [day]).collect() for table in STAGED}
        out = pipeline_frames({**frames, "instruments": instruments})
        fq, oq = out["fill_quality"], out["order_quality"]
        kids = frames["child_orders"]
        day_fills, day_children = venue_frames(fq, kids, oq, settings)
        fills.append(day_fills.select(FILL_COLUMNS))
        children.append(day_children.select(CHILD_COLUMNS))
        tape.append(
            frames["market_trades"]
            .group_by("trade_date", "symbol", "venue")
            .agg(volume=pl.col("size").sum())
        )
        del frames, out, fq, oq, kids, day_fills, day_children
    return (
        pl.concat(fills, rechunk=False),
        pl.concat(children, rechunk=False),
        pl.concat(tape),
        (dates[0], dates[-1], len(dates)),
    )


def run_window(folder: Path) -> dict:
    """Build the window's inputs, then time the scorecard and the routing recommendations."""
    settings = VenueSettings()
    start = time.perf_counter()
    fills, children, tape, window = window_inputs(folder, settings)
    result = {
        "trade_dates": window[2],
        "fills": fills.height,
        "children": children.height,
        "inputs_s": time.perf_counter() - start,
        "peak_rss_gib_inputs": _memory_gib("VmHWM"),
        "rss_gib_after_inputs": _memory_gib("VmRSS"),
    }
    reset_peak()
    start = time.perf_counter()
    scorecard = venue_scorecard(fills, children, window, settings)
    result["scorecard_s"] = time.perf_counter() - start
    result["peak_rss_gib_scorecard"] = _memory_gib("VmHWM")
    reset_peak()
    start = time.perf_counter()
    routing = routing_recommendations(fills, children, tape, window, settings)
    result["routing_s"] = time.perf_counter() - start
    result["peak_rss_gib_routing"] = _memory_gib("VmHWM")
    stages = ("inputs", "scorecard", "routing")
    return {
        **result,
        # clear_refs also resets what getrusage and `time -v` report: this is the run's peak.
        "peak_rss_gib": max(result[f"peak_rss_gib_{stage}"] for stage in stages),
        "clusters": int(scorecard["clusters"].max()),
        "venues": scorecard.height,
        "routing_rows": routing.height,
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run_window(Path(sys.argv[1]))) + "\n")

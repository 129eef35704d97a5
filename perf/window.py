"""The window step's computation at scale, as the step runs it: the venue scorecard and the
routing recommendations over every trade date of a benchmark data set (the data set is the
trailing window), read from the Parquet lake.

First a child process builds the lake: every trade date through the daily functions
(`perf.cases.pipeline_frames`: fill and order quality) and the four tables the window
reads (`quality.fill_quality`, `quality.order_quality`, `staging.child_orders`,
`staging.market_trades`) written date by date as the daily steps write them. That is not part
of the window and is timed apart. Then this process runs what the step runs:
`eqs_pipeline.defs.venues.window.load_window` from the lake (`LakeWindow`, one date at a time),
then `venue_scorecard` and `routing_recommendations`, with the default `VenueSettings`
(conditional intervals, clusters = parent orders).

    .venv/bin/python -m perf.window perf/.cache/1m-d5-s500-o4200-r11

prints one JSON object: fills, children, clusters, seconds per stage, and each stage's own peak
resident set (Linux: the high-water mark is reset before the stage, /proc/self/clear_refs).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eqs_pipeline.defs.venues.window import LakeWindow, load_window
from eqs_pipeline.storage import lake
from eqs_pipeline.venues.routing import routing_recommendations
from eqs_pipeline.venues.scorecard import venue_scorecard
from eqs_pipeline.venues.settings import VenueSettings
from perf.cases import pipeline_frames
from perf.datasets import staged, trade_dates
from perf.memory import reset_peak, status_bytes

STAGED = ("executions", "quotes", "orders", "market_trades", "child_orders")
GiB = 1024**3


def _memory_gib(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak since the last reset) of this process."""
    value = status_bytes(field)
    if value is None:
        raise RuntimeError(f"{field} not in /proc/self/status (the window case needs Linux)")
    return value / GiB


def build_lake(folder: Path, root: Path) -> None:
    """A lake of every trade date of the data set with the tables the window reads."""
    instruments = staged(folder, "instruments").collect()
    for day in trade_dates(folder):
        frames = {table: staged(folder, table, [day]).collect() for table in STAGED}
        out = pipeline_frames({**frames, "instruments": instruments})
        tables = {
            "quality.fill_quality": out["fill_quality"],
            "quality.order_quality": out["order_quality"],
            "staging.child_orders": frames["child_orders"],
            "staging.market_trades": frames["market_trades"],
        }
        for table, frame in tables.items():
            lake.write(root, table, frame, day)
        del frames, out, tables


def run_window(folder: Path, workdir: Path | None = None) -> dict:
    """Build the lake (a child process), then time the window's read, the scorecard and the
    routing recommendations as the step runs them."""
    settings = VenueSettings()
    with tempfile.TemporaryDirectory(prefix="eqs-bench-window-", dir=workdir) as home:
        root = Path(home) / "lake"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "perf.window", "--build", str(folder), str(root)],
            check=True,
        )
        result = {"build_s": time.perf_counter() - start}
        reset_peak()
        start = time.perf_counter()
        window = load_window(LakeWindow(str(root)), settings)
        result |= {
            "trade_dates": window.days,
            "fills": window.fills.height,
            "children": window.children.height,
            "inputs_s": time.perf_counter() - start,
            "peak_rss_gib_inputs": _memory_gib("VmHWM"),
            "rss_gib_after_inputs": _memory_gib("VmRSS"),
        }
    reset_peak()
    start = time.perf_counter()
    scorecard = venue_scorecard(window.fills, window.children, window.bounds, settings)
    result["scorecard_s"] = time.perf_counter() - start
    result["peak_rss_gib_scorecard"] = _memory_gib("VmHWM")
    reset_peak()
    start = time.perf_counter()
    routing = routing_recommendations(
        window.fills,
        window.children,
        window.tape_volume,
        window.bounds,
        window.delays,
        settings,
        symbol_days=window.symbol_days,
    )
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
    if sys.argv[1] == "--build":
        build_lake(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.stdout.write(json.dumps(run_window(Path(sys.argv[1]))) + "\n")

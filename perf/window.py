"""The window steps' computation at scale, as the steps run them: the venue scorecard and the
routing recommendations (`venue_window`), and the algo tables (`algo_window`), over every trade
date of a benchmark data set (the data set is the trailing window), read from the Parquet lake.

First a child process builds the lake: every trade date through the daily functions
(`perf.cases.pipeline_frames`: fill and order quality) and the four tables the window
reads (`quality.fill_quality`, `quality.order_quality`, `staging.child_orders`,
`staging.market_trades`) written date by date as the daily steps write them. That is not part
of the window and is timed apart. Then this process runs what the step runs:
`eqs_pipeline.defs.venues.window.load_window` from the lake (`LakeWindow`, one date at a time),
then `venue_scorecard` and `routing_recommendations`, with the default `VenueSettings`
(conditional intervals, clusters = parent orders).

The algo step runs in a process of its own, as the executor runs it: the build also trains a
cost model on the lake's orders and registers it promoted (not timed; the algo selection prices
every order under every algo with it), and a child process then runs what `algo_window` runs:
`defs.algos.window.read_inputs` from the lake and `defs.algos.assets.compute`, with the
default `AlgoSettings` over every trade date. Its time and peak resident set are reported
against the venue window's (the algo analysis' budget is 20% of both).

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
    """A lake of every trade date of the data set with the tables the window reads, the
    instruments and a promoted cost model trained on its orders."""
    instruments = staged(folder, "instruments").collect()
    lake.write(root, "staging.instruments", instruments, None)
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
    _register_model(root, instruments)


def _register_model(root: Path, instruments) -> None:
    """Train a cost model on every order of the lake and register it promoted, its artifact
    in `<root>/../models`: the model the algo selection then finds in service (none where the
    lake has too few dates or orders to train on: `run_algos` reports `model` null)."""
    from datetime import UTC, datetime

    import polars as pl

    from eqs_pipeline.core.settings import CostTrainingSettings
    from eqs_pipeline.costmodel import registry
    from eqs_pipeline.costmodel.features import ORDER_INPUTS, arrival_features
    from eqs_pipeline.costmodel.train import train_cost_model
    from eqs_pipeline.storage import artifacts

    days = lake.partition_dates(root, "quality.order_quality")
    holdout = max(1, len(days) // 10)
    if len(days) <= holdout + CostTrainingSettings.calibration_days:
        return  # too few dates to train on (the harness's tiny set): no model
    training = CostTrainingSettings(window_days=len(days), holdout_days=holdout)
    orders = pl.concat(
        [lake.read(root, "quality.order_quality", d, columns=ORDER_INPUTS) for d in days]
    )
    outcome = train_cost_model(arrival_features(orders, instruments), training)
    if outcome.artifact is None:
        return  # too few orders: the algo step runs without a model
    where = artifacts.write(root.parent / "models", outcome.artifact.version,
                            outcome.artifact.to_bytes())  # fmt: skip
    row = registry.entry(
        outcome,
        trained_at=datetime.now(UTC),
        as_of=days[-1],
        promoted=True,
        reason="the benchmark's model",
        hyperparameters={},
        artifact=where,
    )
    lake.write(root, "model.model_versions", registry.add(registry.empty(), row), None)


def run_algos(root: Path, days: int) -> dict:
    """What `algo_window` runs, timed in this process: its inputs read from the lake `root`
    (orders, instruments, the model in service and its training orders) and every algo table
    computed with the default settings over `days` trade dates."""
    from eqs_pipeline.algos.settings import AlgoSettings
    from eqs_pipeline.defs.algos.assets import SELECTION_KEY, compute
    from eqs_pipeline.defs.algos.window import read_inputs
    from eqs_pipeline.defs.resources import EqsPathsResource

    settings = AlgoSettings(window_days=days)
    paths = EqsPathsResource(home=str(root.parent), lake=str(root))
    resident = _memory_gib("VmRSS")  # the interpreter and its imports (Dagster's included)
    reset_peak()
    start = time.perf_counter()
    inputs = read_inputs(paths, days, print)
    frames = compute(inputs, settings)
    peak = _memory_gib("VmHWM")
    return {
        "algos_s": time.perf_counter() - start,
        "peak_rss_gib_algos": peak,
        # What the step adds to the process it runs in: its peak over the resident set at its
        # start (this process imports Dagster for the step's reader, the venue window's does
        # not: 0.1 GiB that is no part of the analysis).
        "added_rss_gib_algos": peak - resident,
        "orders": inputs.orders.height,
        "model": inputs.model_version,
        "algos": frames[SELECTION_KEY]["algo"].n_unique(),
    }


def run_window(folder: Path, workdir: Path | None = None) -> dict:
    """Build the lake (a child process), time the algo step (another), then the venue window's
    read, the scorecard and the routing recommendations as the step runs them."""
    settings = VenueSettings()
    with tempfile.TemporaryDirectory(prefix="eqs-bench-window-", dir=workdir) as home:
        root = Path(home) / "lake"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "perf.window", "--build", str(folder), str(root)],
            check=True,
        )
        result = {"build_s": time.perf_counter() - start}
        days = len(lake.partition_dates(root, "quality.fill_quality"))
        algos = subprocess.run(
            [sys.executable, "-m", "perf.window", "--algos", str(root), str(days)],
            check=True,
            capture_output=True,
            text=True,
        )
        result |= json.loads(algos.stdout.splitlines()[-1])
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
    venue_s = sum(result[f"{stage}_s"] for stage in stages)
    venue_peak = max(result[f"peak_rss_gib_{stage}"] for stage in stages)
    return {
        **result,
        # clear_refs also resets what getrusage and `time -v` report: this is the run's peak.
        "peak_rss_gib": venue_peak,
        # The algo step against the venue window step it runs beside (its budget: 20%).
        "algos_time_share": result["algos_s"] / venue_s,
        "algos_peak_share": result["added_rss_gib_algos"] / venue_peak,
        "clusters": int(scorecard["clusters"].max()),
        "venues": scorecard.height,
        "routing_rows": routing.height,
    }


if __name__ == "__main__":
    if sys.argv[1] == "--build":
        build_lake(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1] == "--algos":
        sys.stdout.write(json.dumps(run_algos(Path(sys.argv[2]), int(sys.argv[3]))) + "\n")
    else:
        sys.stdout.write(json.dumps(run_window(Path(sys.argv[1]))) + "\n")

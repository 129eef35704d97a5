"""How large one trade date can be: memory follows the largest date, not the history.

The first `days` trade dates of a benchmark data set are folded into one landed trade date (each
day's symbols renamed `SYM~k`, its timestamps moved back to the first date, so every order,
child order, fill, quote and print keeps its own series), then `eqs run`'s path runs on it
(`eqs_pipeline.runtime.runner.run_pipeline`: reference data, the daily job, the window job, every step
in this process). A thread samples this process's resident set every `SAMPLE_S` seconds; each
sample is attributed to the step running then (from the runs' Dagster events), so a step's peak
includes memory the allocator kept from the step before, as a long-lived process sees it.

    .venv/bin/python -m perf.one_date perf/.cache/10m-d20-s1000-o10500-r11 10

prints one JSON object: fills, quotes, seconds, the run's peak and each step's peak (GiB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import polars as pl

from perf.backfill import step_intervals
from perf.datasets import trade_dates
from perf.memory import status_bytes

DATED = ("orders", "child_orders", "executions", "quotes", "market_trades")
SAMPLE_S = 0.2
GiB = 1024**3
# The steps as the table names them, by the start of their step keys (an asset's op is named
# after its key: `quality` and its events `quality__execution_quality_events`, the window
# assets `venue_window` and `venue__venue_performance_events`).
STEPS = {
    "staging": ("staging_day",),
    "quality": ("quality",),
    "venue_daily": ("venue_daily",),
    "warehouse load": ("warehouse__day",),
    "window assets": ("venue_window", "venue__"),
}


def fold(folder: Path, out: Path, days: int) -> date:
    """Land the first `days` trade dates of `folder` as one trade date under `out`."""
    dates = trade_dates(folder)[:days]
    first = dates[0]
    for table in DATED:
        parts = []
        for k, day in enumerate(dates):
            frame = pl.read_parquet(folder / table / f"date={day}" / "part-0.parquet")
            back = pl.duration(days=(day - first).days)
            frame = frame.with_columns(
                pl.col(c) - back for c, t in frame.schema.items() if isinstance(t, pl.Datetime)
            )
            if "symbol" in frame.columns:
                frame = frame.with_columns(pl.col("symbol") + f"~{k}")
            parts.append(frame)
        target = out / table / f"date={first}"
        target.mkdir(parents=True)
        pl.concat(parts).write_parquet(target / "part-0.parquet")
        del parts
    instruments = pl.read_parquet(folder / "instruments" / "*.parquet")
    (out / "instruments").mkdir(parents=True)
    pl.concat(
        instruments.with_columns(pl.col("symbol") + f"~{k}") for k in range(len(dates))
    ).write_parquet(out / "instruments" / "instruments.parquet")
    return first


class Sampler(threading.Thread):
    """This process's resident set every `SAMPLE_S` seconds: (time.time(), bytes)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.time(), status_bytes("VmRSS") or 0))
            self.stop.wait(SAMPLE_S)


def run_one_date(folder: Path, days: int, workdir: Path | None = None) -> dict:
    from eqs_pipeline.runtime.runner import run_pipeline

    with tempfile.TemporaryDirectory(prefix="eqs-bench-one-date-", dir=workdir) as home:
        root = Path(home)
        start = time.perf_counter()
        # In a child process: the fold's frames are no part of this process's memory.
        subprocess.run(
            [sys.executable, "-m", "perf.one_date", "--fold", str(folder),
             str(root / "landing"), str(days)],
            check=True,
        )  # fmt: skip
        fold_s = time.perf_counter() - start
        # A Dagster instance of its own, whose event log gives each step's start and end.
        os.environ["DAGSTER_HOME"] = str(root / "dagster")
        (root / "dagster").mkdir()
        sampler = Sampler()
        sampler.start()
        start = time.perf_counter()
        run_pipeline(root / "landing", root / "warehouse.duckdb")
        seconds = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            runs = [r.run_id for r in instance.get_runs()]
        steps = step_intervals(runs)
        fills, quotes = (
            pl.scan_parquet(root / "landing" / table / "*" / "*.parquet")
            .select(pl.len())
            .collect()
            .item()
            for table in ("executions", "quotes")
        )
    peaks: dict[str, float] = {}
    for name, prefixes in STEPS.items():
        spans = [(s, e) for _, key, s, e in steps if key.startswith(prefixes)]
        held = [rss for t, rss in sampler.samples if any(s <= t <= e for s, e in spans)]
        peaks[name] = max(held) / GiB if held else 0.0
    return {
        "days_folded": days,
        "fills": fills,
        "quotes": quotes,
        "fold_s": fold_s,
        "seconds": seconds,
        "peak_rss_gib": max(rss for _, rss in sampler.samples) / GiB,
        "step_peak_rss_gib": peaks,
    }


if __name__ == "__main__":
    if sys.argv[1] == "--fold":
        fold(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.stdout.write(json.dumps(run_one_date(Path(sys.argv[1]), int(sys.argv[2]))) + "\n")

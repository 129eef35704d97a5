"""The benchmark cases. Each runs in its own process (`python -m benchmarks.cases CASE ...`), so
that its peak RSS is its own; it prints one JSON object on its last line of output.

- `kernel-polars`, `kernel-pandas`, `kernel-duckdb`: the bare kernels of `kernels`.
- `pipeline`: fill -> order -> venue-daily quality with the functions the assets call, one trade
  date at a time (the assets' partition), nothing kept between dates but the tallies.
- `window`: the window assets' statistics (venue scorecard, routing recommendations) over every
  trade date of the data set (`benchmarks.window`).
- `events`: the in-process event path (`eqs_pipeline.metrics.stream`) and 10k-fill micro-batches.
- `dagster`: one daily partition through Dagster, against the pure computation of the same rows.
- `backfill-*`: several daily partitions: one run at a time in process, and one run at a time,
  one run per core and every run at once on the project's multiprocess executor.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from benchmarks.datasets import SPECS, staged, trade_dates
from benchmarks.memory import status_bytes

BACKFILL_CASES = (
    "backfill-inprocess",
    "backfill-serial",
    "backfill-parallel",
    "backfill-all",
    "backfill-parallel-inprocess",
)


def pipeline_frames(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Fill, order and venue-daily quality of one partition's staged frames, with the functions
    the assets call, as the `quality` step calls them: the fills and then the tape prepared on a
    second thread while the quotes are prepared and the fills scored."""
    from eqs_pipeline.metrics.asof import prepare_quotes, prepare_trades
    from eqs_pipeline.metrics.fills import fill_quality, prepare_fills
    from eqs_pipeline.metrics.orders import order_quality
    from eqs_pipeline.venues.daily import venue_daily
    from eqs_pipeline.venues.frames import venue_frames

    ex, q, o, t, c = (
        frames[n] for n in ("executions", "quotes", "orders", "market_trades", "child_orders")
    )
    times = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as background:
        fills_ready = background.submit(prepare_fills, ex, o)
        tape = background.submit(prepare_trades, t)
        book = prepare_quotes(q)
        fq = fill_quality(
            ex, q, o, prepared_quotes=book, prepared_fills=fills_ready.result()
        ).collect()
        times["fill"] = time.perf_counter() - start
        oq = order_quality(
            o, fq, q, t, frames["instruments"], prepared_quotes=book, prepared_trades=tape.result()
        ).collect()
    times["order"] = time.perf_counter() - start - times["fill"]
    vf, vc = venue_frames(fq, c, oq)
    vd = venue_daily(vf.lazy(), vc.lazy()).collect()
    times["venue"] = time.perf_counter() - start - times["fill"] - times["order"]
    return {"fill_quality": fq, "order_quality": oq, "venue_daily": vd, "times": times}


def pipeline(folder: Path) -> dict:
    """Fill, order and venue-daily quality of every trade date of the data set, date by date;
    nothing is kept between dates but the tallies."""
    stages = dict.fromkeys(("read", "fill", "order", "venue"), 0.0)
    fills = orders = venue_rows = 0
    instruments = staged(folder, "instruments").collect()
    for day in trade_dates(folder):
        start = time.perf_counter()
        frames = {
            table: staged(folder, table, [day]).collect()
            for table in ("executions", "quotes", "orders", "market_trades", "child_orders")
        }
        stages["read"] += time.perf_counter() - start
        out = pipeline_frames({**frames, "instruments": instruments})
        for name, seconds in out["times"].items():
            stages[name] += seconds
        fills += out["fill_quality"].height
        orders += out["order_quality"].height
        venue_rows += out["venue_daily"].height
    return {"fills": fills, "orders": orders, "venue_rows": venue_rows, "stages": stages}


def kernel(name: str, folder: Path) -> dict:
    from benchmarks.kernels import KERNELS

    out = KERNELS[name](folder)
    return {"fills": int(out["fills"].sum()), "symbols": out.height}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cases")
    parser.add_argument("case")
    parser.add_argument("--dataset", default="tiny")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--dates", type=int, default=0, help="first N trade dates (0 = all)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = (args.cache or SPECS[args.dataset].folder.parent) / SPECS[args.dataset].folder.name
    start = time.perf_counter()
    if args.case.startswith("kernel-"):
        result = kernel(args.case.removeprefix("kernel-"), folder)
    elif args.case == "pipeline":
        result = pipeline(folder)
    elif args.case == "window":
        from benchmarks.window import run_window

        result = run_window(folder, args.workdir)
    elif args.case == "events":
        from benchmarks.events import run_events

        result = run_events(folder)
    elif args.case in ("dagster", *BACKFILL_CASES):
        from benchmarks.through_dagster import run_case

        result = run_case(args.case, folder, args.workdir, args.dates)
    else:
        raise SystemExit(f"unknown case {args.case!r}")
    result["wall_s"] = result.get("wall_s", time.perf_counter() - start)
    result["own_peak_rss_bytes"] = status_bytes("VmHWM")
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

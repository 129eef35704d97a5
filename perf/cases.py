"""The benchmark cases. Each runs in its own process (`python -m perf.cases CASE ...`), so
that its peak RSS is its own; it prints one JSON object on its last line of output.

- `kernel-polars`, `kernel-pandas`, `kernel-duckdb`: the bare kernels of `kernels`.
- `pipeline`: fill -> order -> venue-daily quality with the functions the assets call, one trade
  date at a time (the assets' partition), nothing kept between dates but the tallies.
- `window`: the window assets' statistics (venue scorecard, routing recommendations) over every
  trade date of the data set (`perf.window`).
- `one-date`: the first `--dates` trade dates folded into one landed date, through `eqs run`'s
  path, each step's peak resident set (`perf.one_date`).
- `events`: the in-process event path (`eqs_pipeline.quality.stream`) and 10k-fill micro-batches.
- `model`: the cost model's training on 1M orders, inference and daily pricing (`perf.model`).
- `dagster`: one daily partition through Dagster, against the pure computation of the same rows.
- `backfill-*`: several daily partitions: one run at a time in process, and one run at a time,
  one run per core and every run at once on the project's multiprocess executor.
- `e2e`: `eqs run` as the user starts it, on the first `--dates` trade dates folded into one and
  on every date of the `--small` data set, against the bare Polars kernel on the same files; an
  analyst query and `eqs demo` (`perf.e2e`).

`--folder` points a case at a landing directory instead of a data set (`kernel-*`, `pipeline`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import polars as pl

from perf.datasets import SPECS, ensure, staged, trade_dates
from perf.memory import status_bytes

BACKFILL_CASES = (
    "backfill-inprocess",
    "backfill-serial",
    "backfill-parallel",
    "backfill-all",
    "backfill-parallel-inprocess",
)


def pipeline_frames(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Fill, order and venue-daily quality of one partition's staged frames, with the functions
    the assets call: `score_day` as the `quality` step calls it, then `venue_day` as the
    `venue_daily` step does, and its `venue_daily` table (one or two symbol ranges each for
    the benchmark's days, which are about `chunk_fills`)."""
    from eqs_pipeline.core.ranges import in_memory
    from eqs_pipeline.core.settings import QualitySettings
    from eqs_pipeline.quality.day import score_day
    from eqs_pipeline.venues.daily import venue_day
    from eqs_pipeline.venues.settings import VenueSettings

    start = time.perf_counter()
    day = score_day(in_memory(frames), frames["instruments"])
    scored = time.perf_counter() - start
    # "fill": up to the fills scored (reads of the frames, quotes and fills prepared); "order":
    # the orders after them.
    times = {"fill": scored - day.seconds["order"], "order": day.seconds["order"]}
    inputs = {"fill_quality": day.fills, "order_quality": day.orders, **frames}
    venues = venue_day(
        in_memory(inputs), day.fills.height, VenueSettings(), QualitySettings().chunk_fills
    )
    vd = venues.sums.daily()
    times["venue"] = time.perf_counter() - start - scored
    return {
        "fill_quality": day.fills,
        "order_quality": day.orders,
        "venue_daily": vd,
        "times": times,
    }


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
    from perf.kernels import KERNELS

    out = KERNELS[name](folder)
    return {"fills": int(out["fills"].sum()), "symbols": out.height}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m perf.cases")
    parser.add_argument("case")
    parser.add_argument("--dataset", default="tiny")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--dates", type=int, default=0, help="first N trade dates (0 = all)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--folder", type=Path, default=None, help="a landing directory instead")
    parser.add_argument("--small", default="small20", help="the e2e case's data set of small dates")
    parser.add_argument("--runs", type=int, default=1, help="the e2e case's runs (medians)")
    args = parser.parse_args(argv)
    cache = args.cache or SPECS[args.dataset].folder.parent
    folder = args.folder or cache / SPECS[args.dataset].folder.name
    start = time.perf_counter()
    if args.case.startswith("kernel-"):
        result = kernel(args.case.removeprefix("kernel-"), folder)
    elif args.case == "pipeline":
        result = pipeline(folder)
    elif args.case == "window":
        from perf.window import run_window

        result = run_window(folder, args.workdir)
    elif args.case == "one-date":
        from perf.one_date import run_one_date

        result = run_one_date(folder, args.dates or 10, args.workdir)
    elif args.case == "events":
        from perf.events import run_events

        result = run_events(folder)
    elif args.case in ("dagster", *BACKFILL_CASES):
        from perf.through_dagster import run_case

        result = run_case(args.case, folder, args.workdir, args.dates)
    elif args.case == "model":
        from perf.model import run_model

        result = run_model()
    elif args.case == "e2e":
        from perf.e2e import run_e2e

        small = ensure(SPECS[args.small], cache)[0]  # perf.run simulates it first
        result = run_e2e(folder, small, args.dates or 4, args.runs, args.workdir)
    else:
        raise SystemExit(f"unknown case {args.case!r}")
    result["wall_s"] = result.get("wall_s", time.perf_counter() - start)
    result["own_peak_rss_bytes"] = status_bytes("VmHWM")
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

"""Coverage of the scorecard's intervals against the exact truth of their estimand.

The scorecard's mix-adjusted estimate is linear in the per-fill metric:
theta_hat_v = a_v' M^+ X'W y, with X (cell and venue dummies), W (shares) and a_v (the pooled
reference mix) fixed by the design, i.e. by which fills were sent where, in which cells, with
which prevailing quotes. Its estimand given that design is the same map applied to the
per-fill expectations, theta_v = a_v' M^+ X'W E[y | design], which the simulator knows
exactly for two metrics (docs/SIMULATOR.md, `truth_fills`):

- price_improvement_bps: E[PI | quote] = `expected_price_improvement_bps` (the full spread for
  ADD, the half spread for MID, pi_frac_mean x the half spread for REMOVE); the only noise is
  each REMOVE fill's Beta draw of its improvement fraction (plus a $0.0001 rounding);
- effective_spread_bps = quoted_spread_bps - 2 price_improvement_bps, fill by fill, so its
  truth is quoted_spread_bps - 2 expected_price_improvement_bps.

Markouts and the all-in cost have no exact per-fill expectation in the truth (the mid path and
our own impact are common to many fills and are not recorded per fill), so their coverage is
not measured here.

    .venv/bin/python -m eqs_pipeline_tests.venues.coverage --seeds 200 [--method cr1]
        [--routing dark-lit]
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from eqs_pipeline.simulate import SimulationConfig
from eqs_pipeline.simulate.config import ROUTINGS
from eqs_pipeline.stats import METHODS, adjusted_means
from eqs_pipeline.venues.scorecard import CELL, venue_scorecard
from eqs_pipeline.venues.settings import VenueSettings
from eqs_pipeline_tests.venues.truth import Desk, simulated_desk

TRUTH = {
    "price_improvement_bps": pl.col("expected_price_improvement_bps"),
    "effective_spread_bps": pl.col("quoted_spread_bps")
    - 2 * pl.col("expected_price_improvement_bps"),
}


def exact_truth(
    fills: pl.DataFrame, metric: str, settings: VenueSettings | None = None
) -> pl.DataFrame:
    """venue -> the estimand of `metric`: the scorecard's adjustment (across styles: the
    liquidity x size cell and the additive controls) applied to the per-fill expectations,
    over the same rows (those where the metric is known)."""
    rows = fills.filter(pl.col(metric).is_not_null() & pl.col(metric).is_not_nan())
    rows = rows.with_columns(cell=CELL, _truth=TRUTH[metric])
    controls = "conditions" if (settings or VenueSettings()).controls else None
    table = adjusted_means(rows, "_truth", controls=controls).table
    return table.select("venue", truth="estimate")


def desks(seeds: range, **config: int | str) -> list[tuple[int, Desk]]:
    """The small simulated desk of each seed (their venue frames do not depend on the interval
    level, so one set serves every level)."""
    config = {"days": 1, "symbols": 6, "orders_per_day": 80} | config
    return [(seed, simulated_desk(SimulationConfig(seed=seed, **config))) for seed in seeds]


def intervals(
    seeds: range,
    settings: VenueSettings,
    metrics: tuple[str, ...] = tuple(TRUTH),
    simulated: list[tuple[int, Desk]] | None = None,
    **config: int | str,
) -> pl.DataFrame:
    """One row per seed, metric and venue: estimate, interval and exact truth (of the desks
    `desks(seeds, **config)` gives, unless they are given)."""
    out = []
    for seed, desk in simulated if simulated is not None else desks(seeds, **config):
        card = venue_scorecard(desk.fills, desk.children, desk.window, settings)
        for metric in metrics:
            out.append(
                card.select(
                    "venue",
                    estimate=metric,
                    ci_low=f"{metric}_ci_low",
                    ci_high=f"{metric}_ci_high",
                )
                .join(exact_truth(desk.fills, metric, settings), on="venue")
                .drop_nulls()
                .with_columns(seed=pl.lit(seed), metric=pl.lit(metric))
            )
    return pl.concat(out).with_columns(
        covered=(pl.col("ci_low") <= pl.col("truth")) & (pl.col("truth") <= pl.col("ci_high"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--method", default="conditional", choices=METHODS)
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--routing", default="default", choices=ROUTINGS)
    args = parser.parse_args()
    settings = VenueSettings(ci_method=args.method, ci_level=args.level)
    start = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    rows = intervals(seeds, settings, routing=args.routing)
    elapsed = time.perf_counter() - start
    summary = rows.group_by("metric").agg(intervals=pl.len(), coverage=pl.col("covered").mean())
    by_venue = (
        rows.filter(pl.col("metric") == "price_improvement_bps")
        .group_by("venue")
        .agg(intervals=pl.len(), coverage=pl.col("covered").mean())
        .sort("venue")
    )
    print(f"routing {args.routing}, method {args.method}, level {args.level}, seeds {args.first_seed}.."
          f"{args.first_seed + args.seeds - 1}, {elapsed:.1f} s")  # fmt: skip
    with pl.Config(tbl_rows=50):
        print(summary.sort("metric"))
        print(by_venue)


if __name__ == "__main__":
    main()

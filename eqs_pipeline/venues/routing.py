"""`venue.routing_recommendations`: the allocation of our flow across venues that minimizes the
expected all-in cost, per liquidity bucket and liquidity flag (a segment), solved as a linear
program with scipy's HiGHS.

In a segment, y_v is venue v's share of our executed shares (sum 1), c_v its all-in cost in bps
(mix-adjusted over size buckets, cluster-robust standard error s_v) and f_v its child fill rate
(executed / routed quantity of the segment's child orders). The program is

    minimize    sum_v (c_v + lambda s_v) y_v + (epsilon / 2) sum_v |y_v - y_cur_v|
    subject to  sum_v y_v = 1
                sum_v y_v / f_v <= sum_v y_cur_v / f_v     (routed quantity per executed share,
                                                            i.e. the expected fill rate, no worse)
                0 <= y_v <= min(1, k max(y_cur_v, tape_v))  (capacity)

with lambda = cost_uncertainty_penalty (pessimistic costs: flow is not moved on noise),
epsilon = switching_cost_bps (a move must save more than this per share moved; among venues
whose penalized costs are within it, the current allocation stays), k =
capacity_multiple and tape_v the venue's share of the consolidated tape in the segment's
symbol-days (its observed share of volume bounds what it can absorb). Venues with fewer than
`min_fills` fills, no fill rate, or no standard error for their cost (fills from fewer than two
clusters, `stats.MIN_VENUE_CLUSTERS`: one order's luck is not evidence) keep their current share. The current allocation is
feasible, so the optimum is never worse than it at the penalized costs. The expected saving
uses the point costs: sum_v (y_cur_v - y_v) c_v bps of the segment's executed notional, and in
currency per month at the window's average daily notional.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from eqs_pipeline.venues.settings import VenueSettings
from eqs_pipeline.venues.stats import adjusted_means

SEGMENT = ("liquidity_bucket", "liquidity_flag")
# What `_segment_inputs` reads of a segment's fills and child orders: each segment is copied
# out of the window with these columns only.
_SEGMENT_FILLS = ("venue", "size_bucket", "cluster", "qty", "notional", "all_in_cost_bps")
_SEGMENT_CHILDREN = ("venue", "qty", "filled_qty")


def tape_shares(tape_volume: pl.DataFrame, children: pl.DataFrame) -> pl.DataFrame:
    """Each venue's share of tape volume per liquidity bucket (symbol-days of our flow).

    tape_volume: trade_date, symbol, venue, volume (the consolidated tape, summed).
    """
    buckets = (
        children.lazy()
        .select("trade_date", "symbol", "liquidity_bucket")
        .unique()
        # As text, as the tape has them (the window holds categoricals: `venues.window`).
        .with_columns(pl.col("symbol", "liquidity_bucket").cast(pl.String))
        .collect(engine="streaming")  # batch by batch: the window's children are not copied
    )
    per_bucket = (
        tape_volume.join(buckets, on=["trade_date", "symbol"], how="inner")
        .filter(pl.col("venue").is_not_null())
        .group_by("liquidity_bucket", "venue")
        .agg(pl.col("volume").sum())
    )
    return per_bucket.with_columns(
        tape_share=pl.col("volume") / pl.col("volume").sum().over("liquidity_bucket")
    ).drop("volume")


def _segment_inputs(
    fills: pl.DataFrame, children: pl.DataFrame, tape: pl.DataFrame, settings: VenueSettings
) -> pl.DataFrame:
    costs = adjusted_means(
        fills, "all_in_cost_bps", "qty", cell="size_bucket", level=settings.ci_level
    ).table.select("venue", pl.col("estimate").alias("cost"), pl.col("se").alias("cost_se"))
    as_text = pl.col("venue").cast(pl.String)  # the window holds a categorical
    flow = (
        fills.group_by("venue")
        .agg(fills=pl.len(), shares=pl.col("qty").sum(), notional=pl.col("notional").sum())
        .with_columns(as_text)
    )
    fill_rate = (
        children.group_by("venue")
        .agg(fill_rate=pl.col("filled_qty").sum() / pl.col("qty").sum())
        .with_columns(as_text)
    )
    return (
        flow.join(costs, on="venue", how="left")
        .join(fill_rate, on="venue", how="left")
        .join(tape, on="venue", how="left")
        .with_columns(
            current_share=pl.col("shares") / pl.col("shares").sum(),
            tape_share=pl.col("tape_share").fill_null(0.0),
        )
        .sort("venue")
    )


def solve_allocation(
    current: np.ndarray,
    cost: np.ndarray,
    fill_rate: np.ndarray,
    capacity: np.ndarray,
    movable: np.ndarray,
    switching_cost_bps: float = 0.0,
) -> tuple[np.ndarray, str]:
    """The linear program of the module docstring; returns (allocation, solver message).

    `cost` already includes the uncertainty penalty; fixed venues keep `current`. Variables are
    the shares y and the moves d >= |y - y_cur|. Moving a share from one venue to another
    changes two shares by it (sum d = 2 x the share moved), so each unit of d costs half of
    `switching_cost_bps`: a move costs `switching_cost_bps` per share moved, as documented.
    """
    n = len(current)
    lower = np.where(movable, 0.0, current)
    upper = np.where(movable, np.maximum(capacity, current), current)
    c = np.concatenate([np.where(movable, cost, 0.0), np.full(n, switching_cost_bps / 2)])
    inv_f = np.where(movable, 1.0 / np.where(fill_rate > 0, fill_rate, 1.0), 0.0)
    eye = np.eye(n)
    a_ub = np.vstack(
        [
            np.concatenate([inv_f, np.zeros(n)])[None, :],
            np.hstack([eye, -eye]),  # y - d <= y_cur
            np.hstack([-eye, -eye]),  # -y - d <= -y_cur
        ]
    )
    b_ub = np.concatenate([[float(inv_f @ current) + 1e-12], current, -current])
    # Imported here: scipy.optimize costs about 0.8 s to import, and only the window job solves.
    from scipy.optimize import linprog

    result = linprog(
        c,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=np.concatenate([np.ones(n), np.zeros(n)])[None, :],
        b_eq=[1.0],
        bounds=[*zip(lower, upper, strict=True), *[(0.0, None)] * n],
        method="highs",
    )
    if not result.success:
        return current.copy(), f"kept current allocation: {result.message}"
    x = np.clip(result.x[:n], 0.0, None)
    return x / x.sum(), "optimal"


def routing_recommendations(
    fills: pl.DataFrame,
    children: pl.DataFrame,
    tape_volume: pl.DataFrame,
    window: tuple[date, date, int],
    settings: VenueSettings | None = None,
) -> pl.DataFrame:
    """One row per segment and venue with current and recommended shares and the saving."""
    settings = settings or VenueSettings()
    start, end, days = window
    tape = tape_shares(tape_volume, children)
    parts = []
    segments = (
        fills.select(SEGMENT).unique().with_columns(pl.all().cast(pl.String)).sort(SEGMENT)
    ).iter_rows()
    for bucket, flag in segments:
        in_segment = (pl.col("liquidity_bucket") == bucket) & (pl.col("liquidity_flag") == flag)
        seg_fills = fills.lazy().filter(in_segment).select(_SEGMENT_FILLS).collect()
        seg_children = children.lazy().filter(in_segment).select(_SEGMENT_CHILDREN).collect()
        seg_tape = tape.filter(pl.col("liquidity_bucket") == bucket).drop("liquidity_bucket")
        inputs = _segment_inputs(seg_fills, seg_children, seg_tape, settings)
        current = inputs["current_share"].to_numpy()
        cost = inputs["cost"].fill_null(np.nan).to_numpy()
        cost_se = inputs["cost_se"].fill_null(np.nan).to_numpy()
        rate = inputs["fill_rate"].fill_null(0.0).to_numpy()
        movable = (
            (inputs["fills"].to_numpy() >= settings.min_fills)
            & np.isfinite(cost)
            & np.isfinite(cost_se)
            & (rate > 0)
        )
        capacity = np.minimum(
            1.0, settings.capacity_multiple * np.maximum(current, inputs["tape_share"].to_numpy())
        )
        penalized = np.where(movable, cost + settings.cost_uncertainty_penalty * cost_se, 0.0)
        if movable.sum() >= 2:
            recommended, status = solve_allocation(
                current, penalized, rate, capacity, movable, settings.switching_cost_bps
            )
        else:
            recommended, status = current.copy(), "kept current allocation: fewer than 2 venues"
        point = np.where(movable, cost, 0.0)
        saving_bps = float((current - recommended) @ point)
        daily_notional = float(inputs["notional"].sum()) / max(days, 1)
        parts.append(
            inputs.with_columns(
                recommended_share=pl.Series(recommended),
                capacity_share=pl.Series(np.where(movable, capacity, current)),
                movable=pl.Series(movable),
                liquidity_bucket=pl.lit(bucket),
                liquidity_flag=pl.lit(flag),
                expected_saving_bps=pl.lit(saving_bps),
                segment_notional_per_day=pl.lit(daily_notional),
                expected_saving_per_month=pl.lit(
                    saving_bps / 1e4 * daily_notional * settings.trading_days_per_month
                ),
                solver_status=pl.lit(status),
            )
        )
    if not parts:
        return pl.DataFrame()
    return (
        pl.concat(parts, how="diagonal_relaxed")
        .with_columns(
            window_start=pl.lit(start),
            window_end=pl.lit(end),
            share_change=pl.col("recommended_share") - pl.col("current_share"),
        )
        .select(
            "liquidity_bucket",
            "liquidity_flag",
            "venue",
            "window_start",
            "window_end",
            "fills",
            "shares",
            "current_share",
            "recommended_share",
            "share_change",
            "capacity_share",
            "movable",
            pl.col("cost").alias("all_in_cost_bps"),
            pl.col("cost_se").alias("all_in_cost_se_bps"),
            "fill_rate",
            "tape_share",
            "expected_saving_bps",
            "expected_saving_per_month",
            "segment_notional_per_day",
            "solver_status",
        )
        .sort(*SEGMENT, "venue")
    )

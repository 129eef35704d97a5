"""`venue.routing_recommendations`: where to send child orders first, per segment of flow, so
that getting the shares done costs least: a linear program solved with scipy's HiGHS.

A segment is what the router does not choose: liquidity bucket x order-size bucket. Within it
every venue competes, whatever its style (dark midpoint pools against lit venues taking
liquidity). y_v is the share of the segment's routed quantity sent first to venue v. Of what is
sent there a share f_v fills (its child fill rate) at the venue's all-in cost c_v (bps per
executed share, adjusted for the controls within the segment; cluster-robust SE s_v); the
unfilled rest is re-routed to take liquidity at the segment's fallback cost c_F (the all-in
cost of its REMOVE fills), after waiting W_v (the venue's mean wait of unfilled quantity), at
the opportunity cost of that delay rho W_v (rho: the segment's measured adverse drift of the
mid while our orders work, bps per second). The expected cost of a share routed to v is

    e_v = f_v (c_v + lambda s_v) + (1 - f_v) (c_F + rho W_v)

so a dark pool's lower cost is weighed against its lower fill rate and what its misses cost.
The program is

    minimize    sum_v e_v y_v + (epsilon / 2) sum_v |y_v - y_cur_v|
    subject to  sum_v y_v = 1
                0 <= y_v <= min(1, k max(y_cur_v, tape_v))      (capacity)

with lambda = cost_uncertainty_penalty (pessimistic costs: flow is not moved on noise),
epsilon = switching_cost_bps (a move must save more than this per share moved; among venues
whose penalized costs are within it, the current allocation stays), k = capacity_multiple and
tape_v the venue's share of the consolidated tape in the segment's symbol-days. Venues with
fewer than `min_fills` fills, no fill, or no standard error for their cost (fills from fewer
than two clusters, `stats.MIN_VENUE_CLUSTERS`: one order's luck is not evidence) keep their
current share. The current allocation is feasible, so the optimum is never worse than it at the
penalized costs. The expected saving uses the point costs (lambda = 0): sum_v (y_cur_v - y_v)
e_v bps of the segment's quantity, and in currency per month at the window's average daily
executed notional of the segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from eqs_pipeline.core.contract import ORDER_KEY
from eqs_pipeline.stats import adjusted_means
from eqs_pipeline.venues.frames import order_buckets
from eqs_pipeline.venues.settings import VenueSettings

SEGMENT = ("liquidity_bucket", "size_bucket")
# What `_segment_inputs` reads of a segment's fills and child orders: each segment is copied
# out of the window with these columns only.
_SEGMENT_FILLS = (
    "venue",
    "liquidity_flag",
    "conditions",
    "cluster",
    "qty",
    "notional",
    "all_in_cost_bps",
)
_SEGMENT_CHILDREN = ("venue", "qty", "filled_qty")
# What `order_drift` reads of quality.order_quality besides the buckets' inputs.
DRIFT_INPUTS: tuple[str, ...] = ("side_sign", "arrival_mid", "end_mid", "duration_s", "order_qty")


@dataclass(frozen=True)
class DelayInputs:
    """What a miss costs in time, per segment: `waits` (segment x venue: unfilled_qty and
    unfilled_wait = sum of unfilled quantity x wait_s of the venue's child orders) and `drift`
    (segment: drift_qty_bps = sum of order_qty x the order's adverse mid drift in bps, and
    qty_s = sum of order_qty x duration_s). Sums, so the parts of several dates add up."""

    waits: pl.DataFrame
    drift: pl.DataFrame

    @staticmethod
    def summed(waits: list[pl.DataFrame], drifts: list[pl.DataFrame]) -> DelayInputs:
        """The sums of parts of `waits` and `drift` (several dates or symbol ranges)."""
        return DelayInputs(
            pl.concat(waits, how="vertical_relaxed")
            .group_by(*SEGMENT, "venue")
            .agg(pl.all().sum()),
            pl.concat(drifts, how="vertical_relaxed").group_by(*SEGMENT).agg(pl.all().sum()),
        )


def delay_inputs(
    children: pl.DataFrame,
    order_quality: pl.LazyFrame | pl.DataFrame,
    settings: VenueSettings | None = None,
) -> DelayInputs:
    """`DelayInputs` of child-order rows (`frames.venue_frames`, with wait_s) and the orders'
    quality rows, over whatever dates they hold (the window adds them up date by date)."""
    settings = settings or VenueSettings()
    return DelayInputs(child_waits(children), order_drift(order_quality, settings))


def child_waits(children: pl.DataFrame) -> pl.DataFrame:
    """Per segment and venue: the unfilled quantity of the child orders (`frames.venue_frames`
    rows) and its sum of quantity x wait_s."""
    unfilled = (pl.col("qty") - pl.col("filled_qty")).clip(lower_bound=0.0)
    return (
        children.lazy()
        .group_by(*SEGMENT, "venue")
        .agg(unfilled_qty=unfilled.sum(), unfilled_wait=(unfilled * pl.col("wait_s")).sum())
        .with_columns(pl.col(*SEGMENT, "venue").cast(pl.String))
        .collect(engine="streaming")
    )


def order_drift(
    order_quality: pl.LazyFrame | pl.DataFrame, settings: VenueSettings
) -> pl.DataFrame:
    """Per segment: how far the mid moved against our orders while they worked, from arrival to
    end (quality.order_quality: side_sign x (end_mid - arrival_mid) / arrival_mid in bps),
    summed weighted by order quantity, and the quantity-weighted seconds they worked. Orders
    without both mids or with no duration are left out."""
    orders = order_quality.lazy()
    buckets = order_buckets(orders, settings).select(*ORDER_KEY, *SEGMENT)
    drift = (
        pl.col("side_sign") * (pl.col("end_mid") - pl.col("arrival_mid")) / pl.col("arrival_mid")
    ) * 1e4
    known = drift.is_not_null() & drift.is_not_nan() & (pl.col("duration_s") > 0)
    return (
        orders.select(*ORDER_KEY, *DRIFT_INPUTS)
        .join(buckets, on=list(ORDER_KEY), how="left")
        .filter(known)
        .group_by(*SEGMENT)
        .agg(
            drift_qty_bps=(pl.col("order_qty") * drift).sum(),
            qty_s=(pl.col("order_qty") * pl.col("duration_s")).sum(),
        )
        .collect()
    )


def day_symbol_days(rows: pl.DataFrame) -> pl.DataFrame:
    """The symbol-days of rows (child orders, or orders with their `frames.order_buckets`)
    with their liquidity bucket, as text."""
    return (
        rows.lazy()
        .select("trade_date", "symbol", "liquidity_bucket")
        .unique()
        .with_columns(pl.col("symbol", "liquidity_bucket").cast(pl.String))
        .collect(engine="streaming")  # batch by batch: the window's children are not copied
    )


def tape_shares(tape_volume: pl.DataFrame, symbol_days: pl.DataFrame) -> pl.DataFrame:
    """Each venue's share of tape volume per liquidity bucket (the symbol-days of our flow:
    `day_symbol_days`).

    tape_volume: trade_date, symbol, venue, volume (the consolidated tape, summed).
    """
    per_bucket = (
        tape_volume.join(symbol_days, on=["trade_date", "symbol"], how="inner")
        .filter(pl.col("venue").is_not_null())
        .group_by("liquidity_bucket", "venue")
        .agg(pl.col("volume").sum())
    )
    return per_bucket.with_columns(
        tape_share=pl.col("volume") / pl.col("volume").sum().over("liquidity_bucket")
    ).drop("volume")


def _segment_inputs(
    fills: pl.DataFrame,
    children: pl.DataFrame,
    tape: pl.DataFrame,
    waits: pl.DataFrame,
    settings: VenueSettings,
) -> pl.DataFrame:
    costs = adjusted_means(
        fills,
        "all_in_cost_bps",
        "qty",
        cell=None,
        controls="conditions" if settings.controls else None,
        level=settings.ci_level,
    ).table.select("venue", pl.col("estimate").alias("cost"), pl.col("se").alias("cost_se"))
    as_text = pl.col("venue").cast(pl.String)  # the window holds a categorical
    flow = (
        fills.group_by("venue")
        .agg(fills=pl.len(), shares=pl.col("qty").sum(), notional=pl.col("notional").sum())
        .with_columns(as_text)
    )
    routed = (
        children.group_by("venue")
        .agg(
            routed_qty=pl.col("qty").sum(),
            fill_rate=pl.col("filled_qty").sum() / pl.col("qty").sum(),
        )
        .with_columns(as_text)
    )
    return (
        routed.join(flow, on="venue", how="full", coalesce=True)
        .join(costs, on="venue", how="left")
        .join(tape, on="venue", how="left")
        .join(waits, on="venue", how="left")
        .with_columns(
            pl.col("fills").fill_null(0),
            pl.col("shares", "notional", "routed_qty").fill_null(0.0),
            wait_s=pl.when(pl.col("unfilled_qty") > 0)
            .then(pl.col("unfilled_wait") / pl.col("unfilled_qty"))
            .otherwise(0.0),
            tape_share=pl.col("tape_share").fill_null(0.0),
        )
        .with_columns(current_share=pl.col("routed_qty") / pl.col("routed_qty").sum())
        .sort("venue")
    )


def fallback_cost(fills: pl.DataFrame) -> float | None:
    """The cost of getting an unfilled remainder done by taking liquidity: the share-weighted
    all-in cost of the segment's REMOVE fills; without any, of all its fills."""
    known = pl.col("all_in_cost_bps").is_not_null() & pl.col("all_in_cost_bps").is_not_nan()

    def mean(frame: pl.DataFrame) -> float | None:
        frame = frame.filter(known)
        shares = float(frame["qty"].sum())
        return float((frame["all_in_cost_bps"] * frame["qty"]).sum()) / shares if shares else None

    remove = mean(fills.filter(pl.col("liquidity_flag").cast(pl.String) == "REMOVE"))
    return remove if remove is not None else mean(fills)


def routed_share_cost(
    fill_rate: np.ndarray, cost: np.ndarray, fallback: float, delay: np.ndarray
) -> np.ndarray:
    """e_v = f_v c_v + (1 - f_v)(c_F + delay_v): the expected cost in bps of a share routed to
    each venue first, its misses re-routed (module docstring)."""
    return fill_rate * cost + (1.0 - fill_rate) * (fallback + delay)


def solve_allocation(
    current: np.ndarray,
    cost: np.ndarray,
    capacity: np.ndarray,
    movable: np.ndarray,
    switching_cost_bps: float = 0.0,
) -> tuple[np.ndarray, str]:
    """The linear program of the module docstring; returns (allocation, solver message).

    `cost` is the penalized cost per routed share; fixed venues keep `current`. Variables are
    the shares y and the moves d >= |y - y_cur|. Moving a share from one venue to another
    changes two shares by it (sum d = 2 x the share moved), so each unit of d costs half of
    `switching_cost_bps`: a move costs `switching_cost_bps` per share moved, as documented.
    """
    n = len(current)
    lower = np.where(movable, 0.0, current)
    upper = np.where(movable, np.maximum(capacity, current), current)
    c = np.concatenate([np.where(movable, cost, 0.0), np.full(n, switching_cost_bps / 2)])
    eye = np.eye(n)
    a_ub = np.vstack([np.hstack([eye, -eye]), np.hstack([-eye, -eye])])  # |y - y_cur| <= d
    b_ub = np.concatenate([current, -current])
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


def _drift_rate(drift: pl.DataFrame, bucket: str, size: str) -> float:
    """The segment's adverse drift in bps per second of working time, at least 0: a favourable
    drift would make waiting look profitable, which a router cannot bank on."""
    row = drift.filter((pl.col("liquidity_bucket") == bucket) & (pl.col("size_bucket") == size))
    if row.height == 0 or not row["qty_s"][0]:
        return 0.0
    return max(float(row["drift_qty_bps"][0]) / float(row["qty_s"][0]), 0.0)


def _segment_recommendations(
    inputs: pl.DataFrame,
    rho: float,
    fallback: float | None,
    days: int,
    settings: VenueSettings,
) -> pl.DataFrame:
    """One segment's venues (`_segment_inputs`) with their recommended shares, capacity,
    costs and the segment's expected saving, given its drift rate `rho` (bps per second) and
    fallback cost (module docstring)."""
    current = inputs["current_share"].to_numpy()
    cost = inputs["cost"].fill_null(np.nan).to_numpy()
    cost_se = inputs["cost_se"].fill_null(np.nan).to_numpy()
    rate = inputs["fill_rate"].fill_null(0.0).to_numpy()
    delay = rho * inputs["wait_s"].to_numpy()
    movable = (
        (inputs["fills"].to_numpy() >= settings.min_fills)
        & np.isfinite(cost)
        & np.isfinite(cost_se)
        & (rate > 0)
        & (fallback is not None)
    )
    base = fallback if fallback is not None else np.nan
    point = routed_share_cost(rate, cost, base, delay)
    penalized = routed_share_cost(
        rate, cost + settings.cost_uncertainty_penalty * cost_se, base, delay
    )
    capacity = np.minimum(
        1.0, settings.capacity_multiple * np.maximum(current, inputs["tape_share"].to_numpy())
    )
    if movable.sum() >= 2:
        recommended, status = solve_allocation(
            current, np.where(movable, penalized, 0.0), capacity, movable,
            settings.switching_cost_bps,
        )  # fmt: skip
    else:
        recommended, status = current.copy(), "kept current allocation: fewer than 2 venues"
    saving_bps = float((current - recommended) @ np.where(movable, point, 0.0))
    daily_notional = float(inputs["notional"].sum()) / max(days, 1)
    return inputs.with_columns(
        recommended_share=pl.Series(recommended),
        capacity_share=pl.Series(np.where(movable, capacity, current)),
        movable=pl.Series(movable),
        delay_cost_bps=pl.Series(delay),
        routed_cost_bps=pl.Series(point).fill_nan(None),
        fallback_cost_bps=pl.lit(fallback, pl.Float64),
        drift_bps_per_s=pl.lit(rho),
        expected_saving_bps=pl.lit(saving_bps),
        segment_notional_per_day=pl.lit(daily_notional),
        expected_saving_per_month=pl.lit(
            saving_bps / 1e4 * daily_notional * settings.trading_days_per_month
        ),
        solver_status=pl.lit(status),
    )


# The columns of `venue.routing_recommendations`, in order (tables/venue.py describes each).
_COLUMNS = (
    *SEGMENT,
    "venue",
    "window_start",
    "window_end",
    "fills",
    "shares",
    "routed_qty",
    "current_share",
    "recommended_share",
    "share_change",
    "capacity_share",
    "movable",
    pl.col("cost").alias("all_in_cost_bps"),
    pl.col("cost_se").alias("all_in_cost_se_bps"),
    "fill_rate",
    "wait_s",
    "delay_cost_bps",
    "fallback_cost_bps",
    "routed_cost_bps",
    "drift_bps_per_s",
    "tape_share",
    "expected_saving_bps",
    "expected_saving_per_month",
    "segment_notional_per_day",
    "solver_status",
)


def routing_recommendations(
    fills: pl.DataFrame,
    children: pl.DataFrame,
    tape_volume: pl.DataFrame,
    window: tuple[date, date, int],
    delays: DelayInputs,
    settings: VenueSettings | None = None,
    symbol_days: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per segment and venue with current and recommended shares and the saving;
    `symbol_days` (`day_symbol_days`) where the children do not carry their trade_date and
    symbol (the window's)."""
    settings = settings or VenueSettings()
    start, end, days = window
    if symbol_days is None:
        symbol_days = day_symbol_days(children)
    tape = tape_shares(tape_volume, symbol_days)
    drift = delays.drift.with_columns(pl.col(*SEGMENT).cast(pl.String))
    waits = delays.waits.with_columns(pl.col(*SEGMENT, "venue").cast(pl.String))
    parts = []
    segments = (
        children.select(SEGMENT).unique().with_columns(pl.all().cast(pl.String)).sort(SEGMENT)
    ).iter_rows()
    for bucket, size in segments:
        in_segment = (pl.col("liquidity_bucket") == bucket) & (pl.col("size_bucket") == size)
        seg_fills = fills.lazy().filter(in_segment).select(_SEGMENT_FILLS).collect()
        seg_children = children.lazy().filter(in_segment).select(_SEGMENT_CHILDREN).collect()
        seg_tape = tape.filter(pl.col("liquidity_bucket") == bucket).drop("liquidity_bucket")
        seg_waits = waits.filter(in_segment).drop(*SEGMENT)
        inputs = _segment_inputs(seg_fills, seg_children, seg_tape, seg_waits, settings)
        rho = _drift_rate(drift, bucket, size)
        recommended = _segment_recommendations(
            inputs, rho, fallback_cost(seg_fills), days, settings
        )
        parts.append(
            recommended.with_columns(liquidity_bucket=pl.lit(bucket), size_bucket=pl.lit(size))
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
        .select(_COLUMNS)
        .sort(*SEGMENT, "venue")
    )

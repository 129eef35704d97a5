"""`algo.algo_scorecard` and `algo.broker_algo_scorecard`: per algo (per broker x algo pair)
over the trailing window, difficulty-adjusted key metrics with cluster-robust confidence
intervals, the composite score, the rank tier and, on algo-wheel orders, the unbiased
comparison (`wheel`). docs/ALGOS.md, "Scorecards".

Traders send their hardest orders to the algo they trust most, so a plain average makes that
algo look worst. The comparison holds equal what the trader chose, or found, before the algo:
the order's size against ADV and the instrument's volatility, the spread at arrival, the time
of day and the urgency (`settings.controls`). Each algo's figure is its cost on the desk's
whole flow over the window, standardized over the size buckets (`STRATA`,
`stats.stratified_means`): within each size bucket its value at the bucket's pooled mix of the
controls (additive effects), then the buckets weighed by their share of the desk's weight. An
algo's advantage may differ by size (one cheapest on small orders, another on large): each
bucket's figure is its own, and the desk's mix of sizes, not the algo's precision, weighs them.
An algo without an estimable figure in a size bucket that holds desk weight gets no adjusted
figure and `note` names the bucket; one that shares no size bucket with the others is not
comparable either (`stats` "largest" reference). The intervals (CR1 by default, clustered by
symbol-day; the buckets' cluster influences summed cluster by cluster) and the tiers are those
of the venue scorecard (`stats`, docs/VENUES.md), with the algo as the compared group and
orders as rows.

Weights: a cost in bps of the arrival notional (implementation shortfall, cost vs expected)
and the fill rate weigh each order by its arrival notional (order_qty x arrival mid); a cost in
bps of the fill prices (arrival and interval VWAP slippage) by its executed notional, as
`algo_daily` does, so that an order that filled 5% does not speak for its whole size. Each
metric is valued at the desk's mix of its own weight (the size buckets' shares of it);
`<m>_unadjusted` is the same weighted mean without the adjustment.

Score: sum over `settings.score_weights` of weight x adjusted metric (higher is better; the
default, -implementation_shortfall_bps, reads "bps saved"), its interval from the metrics'
summed cluster influences. Tiers: sorted by score, an algo joins the tier of the algo above it
unless it is significantly below that tier's leader. Algos with fewer than
`settings.min_orders` orders, no estimable score, or no interval (its orders, or those of a
size bucket, from one cluster) are not ranked and `note` says why; the adjusted fill rate is
clipped to [0, 1] for display.

The broker x algo scorecard standardizes every pair the same way, on all of the window's
orders (the size buckets' shares are the algo scorecard's), and publishes the pairs with at
least `settings.min_pair_orders` orders: a pair with fewer is left out, as a figure it could
not support would be noise with a name on it. A published pair without orders in a size bucket
gets no adjusted figure, as an algo.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import polars as pl

from eqs_pipeline.algos.frames import WEIGHT
from eqs_pipeline.algos.settings import KEY_METRICS, AlgoSettings
from eqs_pipeline.algos.wheel import COLUMNS as WHEEL_COLUMNS
from eqs_pipeline.algos.wheel import wheel_comparison
from eqs_pipeline.stats import VenueEstimates, stratified_means
from eqs_pipeline.stats.scorecard import (
    missing_metrics,
    notes,
    with_estimates,
    with_ranks,
    with_score,
)

# The strata the algos are standardized over: what the trader chose before the algo and what
# matters most for its cost, the order's size against ADV. Within each, an algo's figure is
# its own (its advantage may differ by size); the other conditions enter as additive controls.
# Size x urgency strata cut the test bed's bias further but are too thin for a few weeks of
# orders (wider errors, lower coverage, algos and pairs without a figure): docs/ALGOS.md, "Why
# not size x urgency".
STRATA: tuple[str, ...] = ("size_bucket",)
# The metric whose comparison groups and missing strata the notes report.
_HEADLINE = "implementation_shortfall_bps"
# The orders' column of each control.
_CONTROL_COLUMNS = {"urgency": "urgency_level"}
# Executed notional: the weight of the slippage metrics (bps of the fill prices).
EXECUTED = "notional"
METRIC_WEIGHTS: dict[str, str] = {
    "implementation_shortfall_bps": WEIGHT,
    "cost_vs_expected_bps": WEIGHT,
    "arrival_slippage_bps": EXECUTED,
    "interval_vwap_slippage_bps": EXECUTED,
    "fill_rate": WEIGHT,
}
# The pair's key in the estimates: broker and algo joined by a control character, which the
# contract's identifiers cannot hold.
_PAIR = "pair"
_SEPARATOR = "\x1f"

_CONTROL_WORDS = {
    "volatility_bucket": "daily volatility",
    "spread_bucket": "spread at arrival",
    "time_bucket": "time of day",
    "urgency": "urgency",
}
_STRATA_WORDS = " x ".join({"size_bucket": "size buckets"}.get(c, c) for c in STRATA)
_CLUSTER_WORDS = {"symbol_day": "one symbol on one date", "order": "one order"}


def adjusted_for(settings: AlgoSettings) -> str:
    """What the comparison controls for, in words."""
    return ", ".join(["order size against ADV"] + [_CONTROL_WORDS[c] for c in settings.controls])


def ci_method_label(settings: AlgoSettings) -> str:
    """How the intervals were computed, in words."""
    level = f"{settings.ci_level:.0%}"
    if settings.ci_method == "conditional":
        return (
            f"cluster-robust CR2 (by {settings.cluster}), conditional on the orders' mix, "
            f"standardized over {_STRATA_WORDS} at the desk's mix, t(effective clusters) {level}"
        )
    return (
        f"cluster-robust CR1 (by {settings.cluster}), standardized over {_STRATA_WORDS} at the "
        f"desk's mix, t(G - 1) {level}"
    )


def _controls(settings: AlgoSettings) -> str | pl.Expr | None:
    """The additive controls within a stratum: `settings.controls` less the strata's own
    columns (constant within a stratum); the orders' `conditions` column when none is one."""
    columns = [_CONTROL_COLUMNS.get(c, c) for c in settings.controls]
    kept = [c for c in columns if c not in STRATA]
    if not kept:
        return None
    if kept == columns:
        return "conditions"
    return pl.concat_str([pl.col(c) for c in kept], separator="|")


def scorecard_estimates(
    orders: pl.DataFrame, key: str, settings: AlgoSettings
) -> dict[str, VenueEstimates]:
    """Adjusted estimates of every key metric per subject (`key`: the algo, or the pair),
    standardized over `STRATA` at the desk's mix of each metric's weight
    (`stats.stratified_means`); one call per weight."""
    by_weight: dict[str, list[str]] = {}
    for metric in KEY_METRICS:
        by_weight.setdefault(METRIC_WEIGHTS[metric], []).append(metric)
    out: dict[str, VenueEstimates] = {}
    for weight, metrics in by_weight.items():
        out |= stratified_means(
            orders,
            metrics,
            weight,
            STRATA,
            venue=key,
            cluster="cluster",
            controls=_controls(settings),
            level=settings.ci_level,
            method=settings.ci_method,
        )
    return {m: out[m] for m in KEY_METRICS}


def _weighted_mean(value: str, weight: str) -> pl.Expr:
    """The `weight`-weighted mean of `value` over the rows where both are known (and the
    weight positive), as the estimates take them; null where there are none."""
    known = pl.col(value).is_not_null() & pl.col(value).is_not_nan() & (pl.col(weight) > 0)
    total = pl.col(weight).filter(known).sum()
    return pl.when(total > 0).then((pl.col(value) * pl.col(weight)).filter(known).sum() / total)


def _unadjusted(orders: pl.DataFrame, key: str) -> pl.DataFrame:
    """Per subject: orders, the clusters they come from, arrival notional, flow share, mean
    difficulty and each metric's weighted mean without adjustment."""
    out = orders.group_by(key).agg(
        orders=pl.len().cast(pl.UInt32),
        order_clusters=pl.col("cluster").n_unique(),
        arrival_notional=pl.col(WEIGHT).sum(),
        difficulty_bps=_weighted_mean("difficulty_bps", WEIGHT),
        **{f"{m}_unadjusted": _weighted_mean(m, w) for m, w in METRIC_WEIGHTS.items()},
    )
    total = pl.col("arrival_notional").sum()
    return out.with_columns(
        flow_share=pl.when(total > 0).then(pl.col("arrival_notional") / total),
        **{key: pl.col(key).cast(pl.String)},
    )


def _metric_columns() -> list[str]:
    return [c for m in KEY_METRICS for c in (m, f"{m}_ci_low", f"{m}_ci_high", f"{m}_unadjusted")]


def _common_notes(settings: AlgoSettings, min_orders: int, subject: str) -> list[pl.Expr]:
    """Why a figure is missing, for algos and pairs alike."""
    compared = pl.col("comparison_group") == 0
    # Valued on the desk's whole flow: an estimate in every size bucket that holds its weight.
    whole = compared & pl.col("missing").is_null()
    score_metrics = list(settings.score_weights)
    other_metrics = [m for m in KEY_METRICS if m not in settings.score_weights]
    share = (pl.col("missing_share") * 100).round(1).cast(pl.String)
    no_interval = compared & pl.col("score").is_not_null() & pl.col("score_ci_low").is_null()
    return [
        pl.when(pl.col("orders") < min_orders).then(
            pl.format(f"not ranked: {{}} orders, fewer than the {min_orders} needed", "orders")
        ),
        pl.when(~compared).then(
            pl.lit(
                f"not comparable: the {subject} works no order-size bucket that the others "
                "work, so no figure puts it on the desk's mix"
            )
        ),
        pl.when(compared & pl.col("missing").is_not_null()).then(
            pl.format(
                f"not comparable: no estimable cost of the {subject} on the desk's {{}} orders "
                "({}% of the desk's notional; it has no order there, or none the controls can "
                "compare), so no figure puts it on the desk's whole flow",
                "missing",
                share,
            )
        ),
        pl.when(no_interval & (pl.col("order_clusters") <= 1)).then(
            pl.lit(
                f"no interval, not ranked: all its orders come from "
                f"{_CLUSTER_WORDS[settings.cluster]}, so the data cannot say how far its "
                "figures are from luck"
            )
        ),
        pl.when(no_interval & (pl.col("order_clusters") > 1)).then(
            pl.lit(
                f"no interval, not ranked: its orders of a size bucket all come from "
                f"{_CLUSTER_WORDS[settings.cluster]}, so the data cannot say how far its "
                "figure there is from luck"
            )
        ),
        pl.when(whole & pl.col("score").is_null()).then(
            pl.format("no score: {} not estimable", missing_metrics(score_metrics))
        ),
        pl.when(whole & (missing_metrics(other_metrics) != "")).then(
            pl.format("no adjusted {}: not known on its orders", missing_metrics(other_metrics))
        ),
    ]


def _wheel_notes(total: int) -> list[pl.Expr]:
    """Why a wheel figure is missing."""
    if not total:
        return []
    diff = pl.col("wheel_difference_to_best_bps")
    return [
        pl.when(pl.col("wheel_orders") == 0).then(
            pl.lit(f"not on the wheel: none of the window's {total} wheel orders went to it")
        ),
        pl.when(
            (pl.col("wheel_orders") > 0)
            & pl.col("wheel_implementation_shortfall_bps").is_not_null()
            & pl.col("wheel_implementation_shortfall_bps_ci_low").is_null()
        ).then(pl.lit("wheel: no interval, its wheel orders come from one cluster")),
        pl.when((diff == 0) & pl.col("wheel_difference_to_best_bps_ci_low").is_not_null()).then(
            pl.lit("wheel: no difference to the best observed, so no number of orders separates")
        ),
    ]


def _card(
    orders: pl.DataFrame,
    key: str,
    window: tuple[date, date, int],
    settings: AlgoSettings,
    min_orders: int,
) -> tuple[pl.DataFrame, Mapping[str, VenueEstimates]]:
    """The scorecard's rows per subject (`key`) before the table's own columns: unadjusted
    figures, adjusted metrics, score, ranks (of the subjects with `min_orders` orders) and the
    window's columns."""
    estimates = scorecard_estimates(orders, key, settings)
    groups = estimates[_HEADLINE].table.select(
        pl.col("venue").alias(key), "missing", "missing_share", comparison_group="group"
    )
    base = (
        _unadjusted(orders, key)
        .join(groups, on=key, how="left")
        .with_columns(pl.col("comparison_group").fill_null(0))
    )
    base = with_estimates(base, estimates, key)
    level, method = settings.ci_level, settings.ci_method
    base, influence = with_score(base, estimates, settings.score_weights, key, level, method)
    base = with_ranks(base, influence, key, pl.col("orders") >= min_orders, level, method)
    start, end, days = window
    clusters = max((e.clusters for e in estimates.values()), default=0)
    base = base.with_columns(
        window_start=pl.lit(start, pl.Date),
        window_end=pl.lit(end, pl.Date),
        trade_days=pl.lit(days, pl.Int32),
        clusters=pl.lit(clusters, pl.Int32),
        ci_method=pl.lit(ci_method_label(settings)),
        adjusted_for=pl.lit(adjusted_for(settings)),
    ).with_columns(
        # The additive controls can carry a fill rate past [0, 1] for an algo far from a
        # bucket's mix; the score uses the unclipped value.
        pl.col("fill_rate", "fill_rate_ci_low", "fill_rate_ci_high").clip(0.0, 1.0),
    )
    return base, estimates


_HEAD = ("window_start", "window_end", "trade_days", "score", "score_ci_low", "score_ci_high")
_FIGURES = ("rank", "rank_tier_members", "orders", "arrival_notional", "flow_share")


def algo_columns() -> list[str]:
    """The algo scorecard's columns, in order (tables/algo_scorecard.py describes each)."""
    return [
        "algo",
        *_HEAD,
        *_FIGURES,
        "difficulty_bps",
        *_metric_columns(),
        *WHEEL_COLUMNS,
        "adjusted_for",
        "clusters",
        "ci_method",
        "note",
    ]


def broker_algo_columns() -> list[str]:
    """The broker x algo scorecard's columns, in order."""
    return [
        "broker",
        "algo",
        *_HEAD,
        *_FIGURES,
        "difficulty_bps",
        *_metric_columns(),
        "adjusted_for",
        "clusters",
        "ci_method",
        "note",
    ]


def algo_scorecard(
    orders: pl.DataFrame, window: tuple[date, date, int], settings: AlgoSettings
) -> pl.DataFrame:
    """The algo scorecard over the window's orders (`frames.algo_orders` with
    `frames.with_difficulty`); `window` is (first date, last date, number of trade dates)."""
    base, _ = _card(orders, "algo", window, settings, settings.min_orders)
    wheel = wheel_comparison(orders, settings)
    total = int(wheel["wheel_orders"].sum()) if wheel.height else 0
    base = base.join(wheel, on="algo", how="left").with_columns(pl.col("wheel_orders").fill_null(0))
    reasons = _common_notes(settings, settings.min_orders, "algo") + _wheel_notes(total)
    return (
        base.with_columns(note=notes(reasons))
        .select(algo_columns())
        .sort(pl.col("rank").is_null(), "rank", pl.col("score").neg(), "algo")
    )


def broker_algo_scorecard(
    orders: pl.DataFrame, window: tuple[date, date, int], settings: AlgoSettings
) -> pl.DataFrame:
    """The broker x algo scorecard: every pair estimated on all the window's orders, the pairs
    with at least `settings.min_pair_orders` orders published and ranked among themselves."""
    pair = pl.concat_str(pl.col("broker"), pl.col("algo"), separator=_SEPARATOR)
    keyed = orders.with_columns(**{_PAIR: pair})
    names = keyed.select(_PAIR, "broker", "algo").unique(_PAIR)
    base, _ = _card(keyed, _PAIR, window, settings, settings.min_pair_orders)
    reasons = _common_notes(settings, settings.min_pair_orders, "pair")
    return (
        base.filter(pl.col("orders") >= settings.min_pair_orders)
        .join(names, on=_PAIR, how="left")
        .with_columns(note=notes(reasons))
        .select(broker_algo_columns())
        .sort(pl.col("rank").is_null(), "rank", pl.col("score").neg(), "broker", "algo")
    )

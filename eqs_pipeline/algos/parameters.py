"""Parameter curves (`algo.algo_parameters`): how an algo's cost depends on each instruction the
trader gives it, per algo and difficulty bucket, and the setting to prefer where the data can
tell.

For each algo x difficulty bucket (of the orders' base difficulty, which no instruction
moves: `selection`) and each instruction (`PARAMETERS`: urgency, target participation,
instructed duration, limit aggressiveness), the orders are grouped by the
instruction's level and each level's implementation shortfall is mix-adjusted like the
scorecard's (`stats.adjusted_means`: the size bucket as the cell, `settings.controls` as
additive effects, except the instruction itself when it is one of them): a level's estimate is
its shortfall at the pooled mix of the group's orders, so a level that is given the volatile or
wide-spread orders is not blamed for them. The intervals are cluster-robust
(`settings.cluster`, `settings.ci_method`), as the scorecard's.

The recommendation of a group is the level with the lowest adjusted shortfall among the
levels a trader can set (not `unknown`) with at least `settings.min_orders` orders and an
interval. Its saving is the group's current mix (the levels' adjusted shortfalls weighted by
their shares of the group's arrival notional) minus the best level's adjusted shortfall, a
linear contrast of the levels' estimates whose cluster-robust interval comes from the summed
cluster influences, with t at the contrast's effective number of clusters (Satterthwaite:
with notional weights a few large orders often carry most of it). The best level is picked
after looking at the k eligible levels, so the interval is taken at the Bonferroni level
1 - (1 - ci_level) / k; the recommendation is set only when that interval lies above 0. The
test holds its error rate per curve, not across the table's many curves. Otherwise the best level and its saving are shown, the
recommendation is null and `note` says why.
"""

from __future__ import annotations

import math
from datetime import date

import polars as pl

from eqs_pipeline.algos.frames import WEIGHT
from eqs_pipeline.algos.settings import CONTROL_LEVELS, DIFFICULTY_BUCKETS, AlgoSettings
from eqs_pipeline.core.buckets import UNKNOWN, bucket
from eqs_pipeline.stats import adjusted_means, effective_df, influence_se, t_quantile_df

VALUE = "implementation_shortfall_bps"
# The instructions whose curves are estimated, and each one's levels in their natural order.
PARAMETER_LEVELS: dict[str, tuple[str, ...]] = {
    "urgency": CONTROL_LEVELS["urgency"],
    "target_participation": ("none", "low", "medium", "high"),
    "duration": ("short", "medium", "long", UNKNOWN),
    "limit_aggressiveness": ("market", "passive", "aggressive", UNKNOWN),
}
PARAMETERS: tuple[str, ...] = tuple(PARAMETER_LEVELS)
# The control a parameter is, when it is one (it is then not controlled for in its own curve).
_CONTROL_OF = {"urgency": "urgency"}
_CONTROL_COLUMN = {"urgency": "urgency_level"}
_CONTROL_WORDS = {
    "volatility_bucket": "volatility",
    "spread_bucket": "arrival spread",
    "time_bucket": "time of day",
    "urgency": "urgency",
}
# Difficulty buckets in their natural order.
_DIFFICULTY_ORDER = pl.col("difficulty_bucket").replace_strict(
    {b: i for i, b in enumerate((*DIFFICULTY_BUCKETS, UNKNOWN))},
    default=None,
    return_dtype=pl.Int32,
)
# `algo_parameters`'s columns, in the table's order (tables/algo_choice.py describes each).
PARAMETER_COLUMNS: tuple[str, ...] = (
    "window_start",
    "window_end",
    "trade_days",
    "algo",
    "difficulty_bucket",
    "parameter",
    "level",
    "level_order",
    "orders",
    "notional",
    "share",
    VALUE,
    f"{VALUE}_ci_low",
    f"{VALUE}_ci_high",
    f"{VALUE}_unadjusted",
    "best_level",
    "best_saving_bps",
    "best_saving_ci_low",
    "best_saving_ci_high",
    "recommended_level",
    "expected_saving_bps",
    "adjusted_for",
    "test",
    "note",
)


def parameter_levels(settings: AlgoSettings) -> dict[str, pl.Expr]:
    """Each parameter's level of an order (rows of `frames.algo_orders`).

    target_participation: none (no target), else low | medium | high by
    `settings.participation_edges`. duration: the instructed duration end_ts - arrival_ts in
    minutes, short | medium | long by `settings.duration_edges_minutes`, unknown where no end
    time landed. limit_aggressiveness: market (no limit price), else how far the limit lets the
    order pay beyond the arrival mid, in half spreads: aggressive from
    `settings.aggressive_limit_half_spreads` on (the far touch at 1), else passive; unknown
    for a limit order without an arrival quote."""
    minutes = (pl.col("end_ts") - pl.col("arrival_ts")).dt.total_microseconds() / 60e6
    target = pl.col("target_participation")
    side = pl.col("side_sign").cast(pl.Float64)
    half_spread_bps = pl.col("arrival_spread_bps") / 2.0
    # How far the limit lets the order pay beyond the arrival mid, in bps of the mid.
    room_bps = side * (pl.col("limit_price") - pl.col("arrival_mid")) / pl.col("arrival_mid") * 1e4
    is_market = (pl.col("order_type") == "MARKET") | pl.col("limit_price").is_null()
    # A locked quote (spread 0) leaves every limit at or through the mid "aggressive".
    through = room_bps >= settings.aggressive_limit_half_spreads * half_spread_bps
    return {
        "urgency": pl.col("urgency_level"),
        "target_participation": pl.when(target.is_null())
        .then(pl.lit("none"))
        .otherwise(bucket(target, settings.participation_edges, ("low", "medium", "high"))),
        "duration": bucket(minutes, settings.duration_edges_minutes, ("short", "medium", "long")),
        "limit_aggressiveness": pl.when(is_market)
        .then(pl.lit("market"))
        .when(room_bps.is_null() | half_spread_bps.is_null())
        .then(pl.lit(UNKNOWN))
        .when(through)
        .then(pl.lit("aggressive"))
        .otherwise(pl.lit("passive")),
    }


def _controls(settings: AlgoSettings, parameter: str) -> list[str]:
    """The controls of a parameter's curve: `settings.controls` but the parameter itself."""
    return [c for c in settings.controls if c != _CONTROL_OF.get(parameter)]


def _adjusted_for(settings: AlgoSettings, parameter: str) -> str:
    words = ["order size"] + [_CONTROL_WORDS[c] for c in _controls(settings, parameter)]
    return ", ".join(words)


def _test_words(settings: AlgoSettings) -> str:
    method = "CR2" if settings.ci_method == "conditional" else "CR1"
    return (
        "current mix minus best level of the mix-adjusted implementation shortfall; "
        f"cluster-robust by {settings.cluster} ({method}, t with the contrast's effective "
        f"number of clusters) at the Bonferroni level 1 - {1 - settings.ci_level:.2g} / k over "
        "the k eligible levels: recommended when the interval lies above 0"
    )


def _level_rows(group: pl.DataFrame, parameter: str, settings: AlgoSettings) -> pl.DataFrame:
    """One group's (algo x difficulty bucket) curve of one parameter: per level its orders,
    notional, share, adjusted shortfall with its interval and unadjusted shortfall, and the
    group's best level, its saving against the current mix and the recommendation."""
    raw = group.group_by("level").agg(
        orders=pl.len().cast(pl.UInt32),
        notional=pl.col(WEIGHT).sum(),
        unadjusted=(pl.col(VALUE) * pl.col(WEIGHT)).sum() / pl.col(WEIGHT).sum(),
    )
    if group.height < settings.min_orders:
        # Too few orders for a curve: a level's adjusted figure on a handful of orders would be
        # noise, and no level could be recommended (that needs min_orders at two levels).
        columns = (VALUE, f"{VALUE}_ci_low", f"{VALUE}_ci_high")
        rows = raw.with_columns(pl.lit(None, pl.Float64).alias(c) for c in columns)
        rows = rows.with_columns(_shares_and_order(parameter))
        return rows.with_columns(_nothing(f"no curve: {group.height} orders, fewer than "
                                          f"min_orders ({settings.min_orders})"))  # fmt: skip
    controls = _controls(settings, parameter)
    parts = [pl.col(_CONTROL_COLUMN.get(c, c)) for c in controls]
    frame = group.with_columns(
        conditions=pl.concat_str(parts, separator="|") if parts else pl.lit("")
    )
    estimates = adjusted_means(
        frame,
        VALUE,
        WEIGHT,
        cell="size_bucket",
        venue="level",
        cluster="cluster",
        controls="conditions" if controls else None,
        level=settings.ci_level,
        method=settings.ci_method,
    )
    rows = raw.join(
        estimates.table.select(
            pl.col("venue").alias("level"),
            pl.col("estimate").alias(VALUE),
            pl.col("ci_low").alias(f"{VALUE}_ci_low"),
            pl.col("ci_high").alias(f"{VALUE}_ci_high"),
        ),
        on="level",
        how="left",
    ).with_columns(_shares_and_order(parameter))
    return rows.with_columns(_recommendation(rows, estimates.influence, settings))


def _shares_and_order(parameter: str) -> list[pl.Expr]:
    """Each level's share of the group's notional and its position among the parameter's
    levels."""
    return [
        (pl.col("notional") / pl.col("notional").sum()).alias("share"),
        pl.col("level")
        .replace_strict(
            {v: i for i, v in enumerate(PARAMETER_LEVELS[parameter])},
            default=len(PARAMETER_LEVELS[parameter]),
        )
        .cast(pl.Int32)
        .alias("level_order"),
    ]


_NOTHING: dict[str, pl.DataType] = {
    "best_level": pl.String(),
    "best_saving_bps": pl.Float64(),
    "best_saving_ci_low": pl.Float64(),
    "best_saving_ci_high": pl.Float64(),
    "recommended_level": pl.String(),
    "expected_saving_bps": pl.Float64(),
}


def _nothing(note: str) -> list[pl.Expr]:
    """No best level and no recommendation, and why."""
    return [pl.lit(None, t).alias(k) for k, t in _NOTHING.items()] + [pl.lit(note).alias("note")]


def _recommendation(
    rows: pl.DataFrame, influence: pl.DataFrame, settings: AlgoSettings
) -> list[pl.Expr]:
    """The group's best level and its saving against the current mix (the estimated levels'
    adjusted shortfalls at their notional shares), with the Bonferroni interval, and the
    recommendation where that interval lies above 0; `note` otherwise."""
    # The current mix: the levels with an estimate and an interval (a level whose orders come
    # from one cluster has no identified variance, and would leave the saving without one).
    estimated = rows.filter(pl.col(f"{VALUE}_ci_low").is_not_null())
    eligible = estimated.filter(
        (pl.col("level") != UNKNOWN) & (pl.col("orders") >= settings.min_orders)
    ).sort(VALUE, "level")
    if eligible.height < 2:
        confounded = rows.filter(pl.col(VALUE).is_null()).height
        note = (
            "no recommendation: the levels cannot be told apart from the controls the curve "
            "adjusts for (in these orders they move together)"
            if confounded and rows.height > 1
            else "no recommendation: fewer than two levels a trader can set with at least "
            f"{settings.min_orders} orders and an interval"
        )
        return _nothing(note)
    k = eligible.height
    best = eligible["level"][0]
    weights = estimated.select("level", w=pl.col("notional") / pl.col("notional").sum()).iter_rows()
    shares = dict(weights)
    current = sum(s * v for s, v in zip(shares.values(), estimated[VALUE], strict=True))
    saving = current - eligible[VALUE][0]
    contrast = pl.sum_horizontal([pl.col(lv) * s for lv, s in shares.items()]) - pl.col(best)
    level = 1 - (1 - settings.ci_level) / k
    se = influence_se(influence, contrast, settings.ci_method)
    # t with the contrast's effective number of clusters (Satterthwaite), whatever the method:
    # a level's few large orders often carry the contrast, and t(G - 1) would then promise an
    # interval the clusters cannot give.
    values = influence.select(contrast).to_series().to_numpy()[:, None]
    crit = float(t_quantile_df(level, effective_df(values, influence.height))[0])
    low, high = saving - crit * se, saving + crit * se
    if math.isnan(se) or math.isnan(crit):
        low = high = None
    significant = low is not None and low > 0
    if significant:
        note = None
    elif low is None:
        note = "no recommendation: the saving's interval cannot be computed"
    else:
        note = (
            f"no recommendation: the best level, {best}, saves {saving:.2f} bps against the "
            f"current mix, with interval [{low:.2f}, {high:.2f}] that does not lie above 0"
        )
    return [
        pl.lit(best, pl.String).alias("best_level"),
        pl.lit(saving, pl.Float64).alias("best_saving_bps"),
        pl.lit(low, pl.Float64).alias("best_saving_ci_low"),
        pl.lit(high, pl.Float64).alias("best_saving_ci_high"),
        pl.lit(best if significant else None, pl.String).alias("recommended_level"),
        pl.lit(saving if significant else None, pl.Float64).alias("expected_saving_bps"),
        pl.lit(note, pl.String).alias("note"),
    ]


def algo_parameters(
    orders: pl.DataFrame,
    window: tuple[date, date, int],
    settings: AlgoSettings,
    base_difficulty_bps: pl.Series | None = None,
) -> pl.DataFrame:
    """The parameter curves of the window's orders (`frames.algo_orders` rows with
    `with_difficulty` applied); `window` is (first date, last date, number of trade dates).
    One row per algo x difficulty bucket x parameter x level of the orders that enter (a known
    shortfall and a positive arrival notional), sorted so.

    The difficulty bucket is that of `base_difficulty_bps` (`selection.Selection`, aligned
    with the orders) where given: the orders' difficulty moves with their urgency and limit,
    so bucketing by it would set, within a bucket, urgent orders that are otherwise easy
    against patient ones that are otherwise hard, and flatten the urgency curve. Without it
    (no cost model), the orders' own `difficulty_bucket`."""
    if base_difficulty_bps is not None:
        if base_difficulty_bps.len() != orders.height:
            raise ValueError(
                f"base_difficulty_bps has {base_difficulty_bps.len()} values for "
                f"{orders.height} orders"
            )
        orders = orders.with_columns(
            difficulty_bucket=bucket(
                pl.lit(base_difficulty_bps.cast(pl.Float64)),
                settings.difficulty_edges_bps,
                DIFFICULTY_BUCKETS,
            )
        )
    levels = parameter_levels(settings)
    entering = orders.filter(
        pl.col(VALUE).is_not_null() & pl.col(VALUE).is_not_nan() & (pl.col(WEIGHT) > 0)
    )
    keep = ["algo", "difficulty_bucket", "size_bucket", "cluster", WEIGHT, VALUE]
    keep += [_CONTROL_COLUMN.get(c, c) for c in settings.controls]
    parts = []
    for parameter in PARAMETERS:
        frame = entering.select(*dict.fromkeys(keep), level=levels[parameter])
        for (algo, difficulty), group in frame.group_by(
            "algo", "difficulty_bucket", maintain_order=True
        ):
            rows = _level_rows(group, parameter, settings).with_columns(
                algo=pl.lit(algo, pl.String),
                difficulty_bucket=pl.lit(difficulty, pl.String),
                parameter=pl.lit(parameter),
                adjusted_for=pl.lit(_adjusted_for(settings, parameter)),
            )
            parts.append(rows)
    start, end, days = window
    schema_frame = pl.DataFrame(
        schema={
            "algo": pl.String,
            "difficulty_bucket": pl.String,
            "parameter": pl.String,
            "level": pl.String,
            "level_order": pl.Int32,
            "orders": pl.UInt32,
            "notional": pl.Float64,
            "share": pl.Float64,
            "unadjusted": pl.Float64,
            VALUE: pl.Float64,
            f"{VALUE}_ci_low": pl.Float64,
            f"{VALUE}_ci_high": pl.Float64,
            "best_level": pl.String,
            "best_saving_bps": pl.Float64,
            "best_saving_ci_low": pl.Float64,
            "best_saving_ci_high": pl.Float64,
            "recommended_level": pl.String,
            "expected_saving_bps": pl.Float64,
            "adjusted_for": pl.String,
            "note": pl.String,
        }
    )
    out = pl.concat([schema_frame, *parts], how="diagonal_relaxed")
    return (
        out.with_columns(
            window_start=pl.lit(start, pl.Date),
            window_end=pl.lit(end, pl.Date),
            trade_days=pl.lit(days, pl.Int32),
            test=pl.lit(_test_words(settings)),
            **{f"{VALUE}_unadjusted": pl.col("unadjusted")},
        )
        .sort("algo", _DIFFICULTY_ORDER, "parameter", "level_order", "level")
        .select(PARAMETER_COLUMNS)
    )

"""`venue.venue_scorecard`: per venue over the trailing window, mix-adjusted key metrics with
confidence intervals, the composite score and the rank tier.

Venues are compared across execution styles: the model controls for what the router does not
choose (the cell: liquidity bucket x order-size bucket; the controls `settings.controls` as
additive effects) and leaves how the shares were obtained (the flag: passive, marketable,
midpoint; dark or lit) in the venue's outcome, so a midpoint dark pool and a lit venue taking
liquidity are compared on what it cost to get shares done under the same conditions. Every
venue in the largest comparison group (all venues that share a cell, directly or through other
venues) gets estimates at that group's pooled mix; one outside it is not comparable and says so
in `note`. `WITHIN_STYLE_METRICS` are also estimated within style (cells split by flag, each
comparison group at its own mix) as `<m>_within_style` columns: lit venues against each other
on effective spread; a venue with no other venue in its style has none, and says so.

Score: sum over `settings.score_weights` of weight x adjusted metric (higher is better). Its
interval comes from the summed cluster influences of its metrics, so their correlation (the
same fills feed the all-in cost and the markouts) is accounted for.

Rank tiers: venues sorted by score; the best venue opens tier 1 and the next venues join it
while their score is not significantly below it (the difference's t statistic, from the
influences of the difference, below the critical value of `ci_level`); the first venue that is
significantly below opens tier 2, and so on, so tiers follow the order of the scores. `rank` is the tier, so venues that the data cannot tell apart share a rank.
Venues with fewer than `min_fills` fills, no estimable score or no interval for it (rows from
fewer than two clusters: `stats.MIN_VENUE_CLUSTERS`) are not ranked (null).
The adjusted fill rate and its interval are clipped to [0, 1] for display.
"""

from __future__ import annotations

from datetime import date
from typing import TypedDict

import polars as pl

from eqs_pipeline.core.contract import LIQUIDITY_FLAGS
from eqs_pipeline.stats import (
    Design,
    Method,
    VenueEstimates,
    adjusted_means_designs,
)
from eqs_pipeline.stats.scorecard import (
    missing_metrics,
    notes,
    with_estimates,
    with_ranks,
    with_score,
)
from eqs_pipeline.venues.settings import KEY_METRICS, WITHIN_STYLE_METRICS, VenueSettings

# The comparison cell: what the router does not choose, interacted (the routing segment), and
# within style the same split by how the shares were obtained. As columns: the window holds
# them as categoricals, and the units' group-by keys on them as they are.
CELL_COLUMNS = ("liquidity_bucket", "size_bucket")
STYLE_CELL_COLUMNS = ("liquidity_flag", *CELL_COLUMNS)
# The same cells as one label each, for frames that hold a cell column (tests, hand-made ones).
CELL = pl.concat_str(*CELL_COLUMNS, separator="|")
STYLE_CELL = pl.concat_str(*STYLE_CELL_COLUMNS, separator="|")


# The column of `style_mix`'s executed shares of one flag, computed with the unadjusted figures.
SHARES_OF_FLAG = "shares_of_flag_"


class _EstimationOptions(TypedDict):
    """What every `adjusted_means_designs` call of the scorecard shares."""

    level: float
    method: Method
    flag: str
    controls: str | None
    working_cell: tuple[str, ...]


def _common(settings: VenueSettings) -> _EstimationOptions:
    return {
        "level": settings.ci_level,
        "method": settings.ci_method,
        "flag": "liquidity_flag",
        "controls": "conditions" if settings.controls else None,
        # One working model for both comparisons: cells split by flag, venue x flag effects
        # and slopes (docs/VENUES.md, "Confidence intervals").
        "working_cell": STYLE_CELL_COLUMNS,
    }


def scorecard_estimates(
    fills: pl.DataFrame, children: pl.DataFrame, settings: VenueSettings
) -> tuple[dict[str, VenueEstimates], dict[str, VenueEstimates]]:
    """Adjusted estimates of every key metric across styles (fill metrics over fills, fill rate
    over children) at the pooled mix of the largest comparison group, and of
    `WITHIN_STYLE_METRICS` within style (cells split by flag, each comparison group at its own
    pooled mix). Both comparisons share one group-by of the fills and one working model, with
    its CR2 machinery and scores: only their normal equations and influences are their own."""
    common = _common(settings)
    across = Design(CELL_COLUMNS, "largest")
    within = Design(STYLE_CELL_COLUMNS, "component", WITHIN_STYLE_METRICS)
    fill_metrics = [m for m in KEY_METRICS if m != "fill_rate"]
    out = adjusted_means_designs(
        fills,
        fill_metrics,
        "qty",
        designs={"across": across, "within": within},
        spread="quoted_spread_bps",
        **common,
    )
    # The fill rate from the quantities (the window does not hold it as a column).
    rate = {"fill_rate": pl.col("filled_qty") / pl.col("qty")}
    rates = adjusted_means_designs(
        children, ["fill_rate"], "qty", designs={"across": across}, derived=rate, **common
    )
    estimates = out["across"] | rates["across"]
    return {m: estimates[m] for m in KEY_METRICS}, {
        m: out["within"][m] for m in WITHIN_STYLE_METRICS
    }


def _unadjusted(fills: pl.DataFrame, children: pl.DataFrame) -> pl.DataFrame:
    """Per venue: fills, shares, notional, flow share and the share-weighted raw metrics.

    The streaming engine aggregates the rows in batches: the in-memory engine materialized
    each metric's products and filtered quantities over the whole window (10M fills: 2.6 s
    and 2.6 GiB more at its peak, against 0.8 s and nothing measurable)."""

    def wmean(m: str) -> pl.Expr:
        known = pl.col("qty").filter(pl.col(m).is_not_null()).sum()
        return pl.when(known > 0).then((pl.col(m) * pl.col("qty")).sum() / known)

    fill_part = (
        fills.lazy()
        .group_by("venue")
        .agg(
            fills=pl.len(),
            shares=pl.col("qty").sum(),
            notional=pl.col("notional").sum(),
            **{f"{m}_unadjusted": wmean(m) for m in KEY_METRICS if m != "fill_rate"},
            # Executed shares by flag, in the same pass (`_style_mix`).
            **{
                f"{SHARES_OF_FLAG}{flag}": pl.col("qty")
                .filter(pl.col("liquidity_flag") == flag)
                .sum()
                for flag in LIQUIDITY_FLAGS
            },
        )
    )
    child_part = (
        children.lazy()
        .group_by("venue")
        .agg(fill_rate_unadjusted=pl.col("filled_qty").sum() / pl.col("qty").sum())
    )
    joined = fill_part.join(child_part, on="venue", how="full", coalesce=True).with_columns(
        pl.col("fills").fill_null(0),
        pl.col("shares", "notional").fill_null(0.0),
        flow_share=pl.col("shares") / pl.col("shares").sum(),
    )
    # The venue as text, whatever the window holds it as (a categorical: `defs.venues.window`).
    return joined.with_columns(pl.col("venue").cast(pl.String)).collect(engine="streaming")


def _ci_method_label(settings: VenueSettings) -> str:
    if settings.ci_method == "conditional":
        return (
            f"cluster-robust CR2 (by {settings.cluster}), conditional on the fills' mix and "
            f"quotes, mix-adjusted, t(effective clusters) {settings.ci_level:.0%}"
        )
    return f"cluster-robust (by {settings.cluster}), mix-adjusted, t {settings.ci_level:.0%}"


_CONTROL_WORDS = {
    "spread_bucket": "arrival spread",
    "urgency": "urgency",
    "time_bucket": "time of day",
    "child_size_bucket": "child size",
}


def adjusted_for(settings: VenueSettings) -> str:
    """What the comparison controls for, in words."""
    words = ["liquidity x order size"] + [_CONTROL_WORDS[c] for c in settings.controls]
    return ", ".join(words)


def _style_mix(shares_by_flag: pl.DataFrame) -> pl.DataFrame:
    """Per venue: its executed shares by flag (`_unadjusted`'s `shares_of_flag_<flag>`
    columns), as "REMOVE 62%, ADD 38%" (largest first)."""
    columns = [c for c in shares_by_flag.columns if c.startswith(SHARES_OF_FLAG)]
    long = shares_by_flag.unpivot(columns, index="venue", variable_name="flag", value_name="shares")
    by_flag = (
        long.filter(pl.col("shares") > 0)
        .with_columns(
            liquidity_flag=pl.col("flag").str.strip_prefix(SHARES_OF_FLAG),
            share=pl.col("shares") / pl.col("shares").sum().over("venue"),
        )
        .sort("venue", "share", "liquidity_flag", descending=[False, True, False])
    )
    percent = (pl.col("share") * 100).round(0).cast(pl.Int64)
    return by_flag.group_by("venue", maintain_order=True).agg(
        style_mix=pl.format("{} {}%", "liquidity_flag", percent).str.join(", ")
    )


def _within_style(estimates: dict[str, VenueEstimates]) -> pl.DataFrame:
    """Per venue: the within-style columns (null where no other venue shares its style) and the
    venues it is compared with."""
    first = estimates[WITHIN_STYLE_METRICS[0]].table
    peers = first.group_by("group").agg(members=pl.col("venue").sort())
    frame = first.select("venue", "group", "peers").join(peers, on="group", how="left")
    frame = frame.with_columns(
        within_style_peers=pl.col("members")
        .list.set_difference(pl.concat_list(pl.col("venue")))
        .list.sort()
        .list.join(", ")
    ).select("venue", "peers", "within_style_peers")
    compared = pl.col("peers") > 1
    for metric in WITHIN_STYLE_METRICS:
        columns = {"estimate": "", "ci_low": "_ci_low", "ci_high": "_ci_high"}
        values = estimates[metric].table.select(
            "venue", *(pl.col(c).alias(f"{metric}_within_style{x}") for c, x in columns.items())
        )
        frame = frame.join(values, on="venue", how="left").with_columns(
            pl.when(compared).then(pl.col(f"{metric}_within_style{x}")) for x in columns.values()
        )
    return frame.rename({"peers": "within_style_group_size"})


def _notes(settings: VenueSettings) -> pl.Expr:
    """Why a figure is missing, in words: each reason that applies, joined by "; "."""
    reasons = [
        pl.when(pl.col("fills") < settings.min_fills).then(
            pl.format(
                f"not ranked: {{}} fills, fewer than min_fills ({settings.min_fills})", "fills"
            )
        ),
        pl.when(pl.col("comparison_group") > 0).then(
            pl.lit(
                "not comparable: it trades in no liquidity x order-size cell that the other "
                "venues trade in, so no figure puts it on the same mix"
            )
        ),
        pl.when(
            (pl.col("comparison_group") == 0)
            & pl.col("all_in_cost_bps").is_not_null()
            & pl.col("all_in_cost_bps_ci_low").is_null()
        ).then(
            pl.lit(
                "no interval, not ranked: all its fills come from one cluster, so the data "
                "cannot say how far its figures are from luck"
            )
        ),
        pl.when(
            (pl.col("comparison_group") == 0) & pl.col("score").is_null() & (pl.col("fills") > 0)
        ).then(
            pl.format("no score: {} not estimable", missing_metrics(list(settings.score_weights)))
        ),
        pl.when((pl.col("within_style_group_size") == 1) & (pl.col("fills") > 0)).then(
            pl.format(
                "within style: no other venue trades as it does ({}), so only the comparison "
                "across styles applies",
                "style_mix",
            )
        ),
    ]
    return notes(reasons)


def _with_estimates(
    base: pl.DataFrame,
    estimates: dict[str, VenueEstimates],
    within_style: dict[str, VenueEstimates],
) -> pl.DataFrame:
    """The unadjusted figures with each venue's comparison group, its adjusted key metrics and
    their intervals, its style mix and the within-style columns."""
    groups = estimates["all_in_cost_bps"].table.select("venue", comparison_group="group")
    base = base.join(groups, on="venue", how="left").with_columns(
        pl.col("comparison_group").fill_null(0)
    )
    base = with_estimates(base, estimates, "venue")
    shares_by_flag = f"^{SHARES_OF_FLAG}.*$"
    base = base.join(_style_mix(base.select("venue", shares_by_flag)), on="venue", how="left")
    return base.drop(shares_by_flag).join(_within_style(within_style), on="venue", how="left")


def _columns() -> list[str]:
    """The scorecard's columns, in order (tables/venue.py describes each)."""
    within = [
        c
        for m in WITHIN_STYLE_METRICS
        for c in (f"{m}_within_style", f"{m}_within_style_ci_low", f"{m}_within_style_ci_high")
    ]
    return [
        "venue",
        "window_start",
        "window_end",
        "trade_days",
        "score",
        "score_ci_low",
        "score_ci_high",
        "rank",
        "rank_tier_members",
        "fills",
        "shares",
        "notional",
        "flow_share",
        "style_mix",
        *[c for m in KEY_METRICS for c in (m, f"{m}_ci_low", f"{m}_ci_high", f"{m}_unadjusted")],
        *within,
        "within_style_peers",
        "adjusted_for",
        "clusters",
        "ci_method",
        "note",
    ]


def venue_scorecard(
    fills: pl.DataFrame,
    children: pl.DataFrame,
    window: tuple[date, date, int],
    settings: VenueSettings | None = None,
) -> pl.DataFrame:
    """The scorecard over the fills and children of the window (`frames.venue_frames`
    rows, with `conditions` when `settings.controls` is not empty); `window` is (first date,
    last date, number of trade dates)."""
    settings = settings or VenueSettings()
    estimates, within_style = scorecard_estimates(fills, children, settings)
    base = _with_estimates(_unadjusted(fills, children), estimates, within_style)
    level, method = settings.ci_level, settings.ci_method
    base, influence = with_score(base, estimates, settings.score_weights, "venue", level, method)
    enough = pl.col("fills") >= settings.min_fills
    base = with_ranks(base, influence, "venue", enough, level, method)
    clusters = max((e.clusters for e in estimates.values()), default=0)
    start, end, days = window
    return (
        base.with_columns(
            window_start=pl.lit(start),
            window_end=pl.lit(end),
            trade_days=pl.lit(days, pl.Int32),
            clusters=pl.lit(clusters, pl.Int32),
            ci_method=pl.lit(_ci_method_label(settings)),
            adjusted_for=pl.lit(adjusted_for(settings)),
        )
        .with_columns(
            # The additive model can extrapolate a fill rate past [0, 1] for a venue whose
            # flags are far from the reference mix; the score uses the unclipped value.
            pl.col("fill_rate", "fill_rate_ci_low", "fill_rate_ci_high").clip(0.0, 1.0),
        )
        .with_columns(note=_notes(settings))
        .select(_columns())
        .sort(pl.col("rank").is_null(), "rank", pl.col("score").neg(), "venue")
    )

"""Per venue and trade date aggregates: `venue.venue_daily` and its bucket breakdowns.

Fill metrics are share-weighted over the fills where the metric is known (docs/METRICS.md); E/Q is
sum(effective x shares) / sum(quoted x shares); the quote-position percentages are shares of the
fills with a known quote; fill latency is the distribution over fills of exec_ts - sent_ts;
the fill rate is executed / routed quantity of the child orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from eqs_pipeline.core.ranges import Reader
from eqs_pipeline.venues.frames import FILL_METRICS, venue_frames_by_range
from eqs_pipeline.venues.settings import VenueSettings

ALL = "ALL"
DIMENSIONS: tuple[str, ...] = ("liquidity_flag", "size_bucket", "liquidity_bucket")
POSITIONS: tuple[str, ...] = ("improved", "at_quote", "outside")
# A comparison cell of the venue tables: what every breakdown's groups are made of.
CELL: tuple[str, ...] = ("trade_date", "venue", *DIMENSIONS)
# The columns of `frames.venue_frames`' fill rows that the venue tables read.
DAILY_FILL_COLUMNS: tuple[str, ...] = (
    *CELL,
    "qty",
    "notional",
    "fee",
    "quote_position",
    "latency_ms",
    *FILL_METRICS,
)


def _known(name: str) -> str:
    return f"_known_qty_{name}"


def _weighted(name: str) -> str:
    return f"_qty_x_{name}"


def fill_sums() -> list[pl.Expr]:
    """The additive part of the per-group fill figures: counts and sums over the group's fills,
    which add up again over coarser groups (`venue_daily_buckets` sums them from its finest
    grouping). Share-weighted means are `_qty_x_<m> / _known_qty_<m>` (`fill_ratios`)."""
    qty = pl.col("qty")
    position = pl.col("quote_position")
    eff, quoted = pl.col("effective_spread_bps"), pl.col("quoted_spread_bps")
    both = eff.is_not_null() & quoted.is_not_null()
    return [
        pl.len().alias("fills"),
        qty.sum().alias("shares"),
        pl.col("notional").sum().alias("notional"),
        pl.col("fee").filter(pl.col("fee") > 0).sum().alias("fees_paid"),
        (-pl.col("fee").filter(pl.col("fee") < 0)).sum().alias("rebates_received"),
        (eff * qty).filter(both).sum().alias(_weighted("eq_effective")),
        (quoted * qty).filter(both).sum().alias(_weighted("eq_quoted")),
        qty.filter(position.is_not_null()).sum().alias(_known("quote_position")),
        *[qty.filter(position == p).sum().alias(_weighted(p)) for p in POSITIONS],
        *[qty.filter(pl.col(m).is_not_null()).sum().alias(_known(m)) for m in FILL_METRICS],
        *[(pl.col(m) * qty).sum().alias(_weighted(m)) for m in FILL_METRICS],
    ]


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator))


def fill_ratios() -> list[pl.Expr]:
    """The per-group fill figures that are ratios of `fill_sums`: metrics share-weighted over
    the fills where they are known, E/Q over the fills with both spreads, quote positions as
    shares of the fills with a known quote."""
    return [
        _ratio(_weighted("eq_effective"), _weighted("eq_quoted")).alias("eq_ratio"),
        *[_ratio(_weighted(p), _known("quote_position")).alias(f"pct_{p}") for p in POSITIONS],
        *[_ratio(_weighted(m), _known(m)).alias(m) for m in FILL_METRICS],
    ]


def latency_quantiles() -> list[pl.Expr]:
    """Fill latency's median and P95 (not additive: computed from the fills of each group)."""
    return [
        pl.col("latency_ms").median().alias("latency_median_ms"),
        pl.col("latency_ms").quantile(0.95, "linear").alias("latency_p95_ms"),
    ]


def _sum_columns() -> list[str]:
    return [e.meta.output_name() for e in fill_sums()]


def child_sums() -> list[pl.Expr]:
    """The additive part of the per-group child-order figures."""
    return [
        pl.len().alias("child_orders"),
        pl.col("qty").sum().alias("routed_qty"),
        pl.col("filled_qty").sum().alias("executed_qty"),
    ]


def _child_sum_columns() -> list[str]:
    return [e.meta.output_name() for e in child_sums()]


def _columns(keys: list[str]) -> list[str]:
    return [
        "trade_date",
        "venue",
        *keys,
        "fills",
        "shares",
        "notional",
        "flow_share",
        "child_orders",
        "routed_qty",
        "executed_qty",
        "fill_rate",
        "latency_median_ms",
        "latency_p95_ms",
        "eq_ratio",
        "pct_improved",
        "pct_at_quote",
        "pct_outside",
        "fees_paid",
        "rebates_received",
        *FILL_METRICS,
    ]


@dataclass(frozen=True)
class VenueSums:
    """Fills and child orders reduced to what the venue tables are computed from, which adds up
    over any split of them (a trade date's symbol ranges, `venue_day`): per comparison cell
    (`CELL`) the fills' `fill_sums` and the children's `child_sums`, and each fill's latency
    with its cell (a median and a P95 do not add up; the cell's text may be categorical)."""

    fills: pl.DataFrame
    latency: pl.DataFrame
    children: pl.DataFrame

    def daily(self) -> pl.DataFrame:
        """`venue.venue_daily`: one row per venue and trade date."""
        return self._aggregate([]).select(_columns([])).sort("trade_date", "venue")

    def buckets(self) -> pl.DataFrame:
        """`venue.venue_daily_buckets`: the same figures per venue, trade date and bucket.

        `breakdown` names the grouping: `liquidity_flag`, `size_bucket` or `liquidity_bucket`
        (the other two dimensions read ALL), or `cell` (all three set). flow_share is the
        venue's share of our shares within the same trade date and bucket."""
        parts = []
        for keys in [[d] for d in DIMENSIONS] + [list(DIMENSIONS)]:
            fixed = [pl.lit(ALL).alias(d) for d in DIMENSIONS if d not in keys]
            name = keys[0] if len(keys) == 1 else "cell"
            parts.append(
                self._aggregate(keys)
                .with_columns(*fixed, breakdown=pl.lit(name))
                .select(["breakdown", *_columns(list(DIMENSIONS))])
            )
        return pl.concat(parts).sort("trade_date", "breakdown", "venue", *DIMENSIONS)

    def _aggregate(self, keys: list[str]) -> pl.DataFrame:
        """The figures per trade date, venue and `keys`: sums added up from the cells, latency
        percentiles from the fills, ratios from the sums."""
        by = ["trade_date", "venue", *keys]
        added = self.fills.lazy().group_by(by).agg(pl.col(_sum_columns()).sum())
        latency = (
            self.latency.lazy()
            .group_by(by)
            .agg(latency_quantiles())
            .with_columns(pl.col(c).cast(self.fills.schema[c]) for c in by)
        )
        # Both sides have the same groups, a null key's included.
        figures = (
            added.join(latency, on=by, how="left", nulls_equal=True)
            .with_columns(pl.col("fills").cast(pl.get_index_type()))
            .with_columns(fill_ratios())
        )
        children = (
            self.children.lazy()
            .group_by(by)
            .agg(pl.col(_child_sum_columns()).sum())
            .with_columns(
                pl.col("child_orders").cast(pl.get_index_type()),
                fill_rate=pl.col("executed_qty") / pl.col("routed_qty"),
            )
        )
        out = figures.join(children, on=by, how="full", coalesce=True).with_columns(
            pl.col("fills", "shares", "notional", "fees_paid", "rebates_received").fill_null(0),
            pl.col("child_orders").fill_null(0),
            pl.col("routed_qty", "executed_qty").fill_null(0.0),
        )
        total = pl.col("shares").sum().over("trade_date", *keys)
        return out.with_columns(
            flow_share=pl.when(total > 0).then(pl.col("shares") / total)
        ).collect()


def venue_sums(
    fills: pl.LazyFrame | pl.DataFrame,
    children: pl.LazyFrame | pl.DataFrame,
    *,
    categorical: bool = False,
) -> VenueSums:
    """The `VenueSums` of the fill and child rows of `frames.venue_frames` (the fills need
    `DAILY_FILL_COLUMNS`); with `categorical`, the latency rows' text as categoricals (4 bytes a
    row instead of 16: what `venue_day` keeps of each symbol range)."""
    latency = fills.lazy().select(*CELL, "latency_ms")
    if categorical:
        latency = latency.with_columns(pl.col(CELL[1:]).cast(pl.Categorical))
    return VenueSums(
        *pl.collect_all(
            [
                fills.lazy().group_by(CELL).agg(fill_sums()),
                latency,
                children.lazy().group_by(CELL).agg(child_sums()),
            ]
        )
    )


def add_up(parts: Sequence[VenueSums]) -> VenueSums:
    """The `VenueSums` of the union of the parts' fills and children."""
    if len(parts) == 1:
        return parts[0]
    return VenueSums(
        pl.concat(p.fills for p in parts).group_by(CELL).agg(pl.col(_sum_columns()).sum()),
        pl.concat(p.latency for p in parts),
        pl.concat(p.children for p in parts).group_by(CELL).agg(pl.col(_child_sum_columns()).sum()),
    )


def venue_daily(
    fills: pl.LazyFrame | pl.DataFrame, children: pl.LazyFrame | pl.DataFrame
) -> pl.DataFrame:
    """One row per venue and trade date (the fill and child rows of `frames.venue_frames`)."""
    return venue_sums(fills, children).daily()


def venue_daily_buckets(
    fills: pl.LazyFrame | pl.DataFrame, children: pl.LazyFrame | pl.DataFrame
) -> pl.DataFrame:
    """`VenueSums.buckets` of the fill and child rows of `frames.venue_frames`."""
    return venue_sums(fills, children).buckets()


@dataclass(frozen=True)
class VenueDay:
    sums: VenueSums
    ranges: int  # symbol ranges read (1: the whole day at once)
    # The date's fill and child rows with the columns asked to be kept (None: none asked).
    fills: pl.DataFrame | None = None
    children: pl.DataFrame | None = None


def venue_day(
    read: Reader,
    fill_count: int,
    settings: VenueSettings,
    chunk_fills: int,
    *,
    keep_fills: Sequence[str] = (),
    keep_children: Sequence[str] = (),
) -> VenueDay:
    """The `VenueSums` of one trade date of `fill_count` fills, from its scored fills and
    orders and its staged child orders (`frames.venue_frames_by_range`: in symbol ranges of at
    most `chunk_fills` fills when the date has more; each range's rows are summed before the
    next is read, its latency rows kept with categorical text).

    With `keep_fills` (columns of `frames.FILL_COLUMNS`) and `keep_children` (of
    `frames.CHILD_COLUMNS`), the date's venue rows with those columns too, each range's
    narrowed before the next is read: what the window reads of the date, built once here."""
    fill_columns = tuple(dict.fromkeys((*DAILY_FILL_COLUMNS, *keep_fills)))
    parts, fills_kept, children_kept = [], [], []
    for fills, children in venue_frames_by_range(
        read, fill_count, settings, chunk_fills, fill_columns=fill_columns
    ):
        parts.append(venue_sums(fills, children, categorical=fill_count > chunk_fills))
        if keep_fills:
            fills_kept.append(fills.select(keep_fills))
            children_kept.append(children.select(keep_children))
        del fills, children
    if not keep_fills:
        return VenueDay(add_up(parts), len(parts))
    return VenueDay(add_up(parts), len(parts), pl.concat(fills_kept), pl.concat(children_kept))

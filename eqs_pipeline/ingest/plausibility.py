"""Plausibility bounds and the trade-date window of ingestion's row rules.

A row can pass every type and sign rule and still be absurd: a fill of 1e-300 shares, a fee of
1e300, an order of 1e308 shares, a quote whose bid is a thousandth of the day's price, an order
stamped three days after its folder's date. Each of these wrecks an aggregate (a venue's
all-in cost becomes 1e297 bps) or a lookup (a fill measured against a quote days old), so the
rules here quarantine them with the bound they broke (docs/INGESTION.md lists the defaults):

- `implausible_size:<col>`: a size above `max_adv_multiple` x the instrument's ADV, or below
  `min_lot_fraction` x its lot size;
- `implausible_price:<col>`: a quote's bid or ask far from the symbol's median mid of the day,
  or a print, fill or limit price outside the day's staged quote range widened by
  `price_band_factor`;
- `implausible_fee`: a fee or rebate above `max_fee_bps` of the fill's notional;
- `off_date:<col>`: a timestamp outside the folder's trade date on the instrument's market
  clock, widened by `off_date_tolerance_hours`.

Bounds come per symbol (`symbol_limits`). A normal day breaks none of them, so each table is
first reduced to its per-symbol extremes and compared with the limits there; only when some
symbol's extreme is out of bounds are the limits joined onto the rows to flag them (a day of
26M quotes costs one group-by instead of a join).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from eqs_pipeline.core.settings import IngestSettings

LIMIT = "__lim_"  # prefix of the per-symbol limit columns
DAY_START, DAY_END = f"{LIMIT}day_start", f"{LIMIT}day_end"
MIN_QTY, MAX_QTY = f"{LIMIT}min_qty", f"{LIMIT}max_qty"
PX_LOW, PX_HIGH = f"{LIMIT}px_low", f"{LIMIT}px_high"
MID = f"{LIMIT}median_mid"
TS_LIMIT = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Bound:
    """A row breaks `code` when `value` is below `low` or above `high` (either may be None).

    `low` and `high` are expressions over the limit columns of its symbol (`symbol_limits`) or
    literals; a null bound (a symbol with no limit) is never broken."""

    code: str
    value: pl.Expr
    low: pl.Expr | None = None
    high: pl.Expr | None = None

    def broken(self, value: pl.Expr | None = None) -> pl.Expr:
        value = self.value if value is None else value
        out = pl.lit(False)
        if self.low is not None:
            out = out | (value < self.low)
        if self.high is not None:
            out = out | (value > self.high)
        return out.fill_null(False)


def trade_day_window(
    trade_date: date, zone: str, tolerance_hours: float
) -> tuple[datetime, datetime]:
    """UTC instants of the trade date's first and last moment on `zone`'s clock, widened by the
    tolerance on each side."""
    tz = ZoneInfo(zone)
    slack = timedelta(hours=tolerance_hours)
    start = datetime.combine(trade_date, time(), tz) - slack
    end = datetime.combine(trade_date + timedelta(days=1), time(), tz) + slack
    return start.astimezone(UTC), end.astimezone(UTC)


def default_window(trade_date: date, settings: IngestSettings) -> tuple[pl.Expr, pl.Expr]:
    """The window of a symbol with no instrument row (or no known market), as literals."""
    start, end = trade_day_window(
        trade_date, settings.default_timezone, settings.off_date_tolerance_hours
    )
    return pl.lit(start, TS_LIMIT), pl.lit(end, TS_LIMIT)


def symbol_limits(
    instruments: pl.DataFrame | None, trade_date: date, settings: IngestSettings
) -> pl.DataFrame:
    """Per instrument symbol: the smallest and largest size accepted and its trade-date window
    (UTC, from its market's clock)."""
    schema = {
        "symbol": pl.String,
        MIN_QTY: pl.Float64,
        MAX_QTY: pl.Float64,
        DAY_START: TS_LIMIT,
        DAY_END: TS_LIMIT,
        PX_LOW: pl.Float64,
        PX_HIGH: pl.Float64,
    }
    if instruments is None or instruments.height == 0:
        return pl.DataFrame(schema=schema)
    zones = dict(settings.market_timezones)
    markets = (
        instruments.get_column("market").unique().to_list()
        if "market" in instruments.columns
        else [None]
    )
    windows = {
        m: trade_day_window(
            trade_date,
            zones.get(m or "", settings.default_timezone),
            settings.off_date_tolerance_hours,
        )
        for m in markets
        if m is not None  # no market: null limits, the default window (`date_bound`)
    }
    market = pl.col("market") if "market" in instruments.columns else pl.lit(None, pl.String)
    lot = pl.col("lot_size") if "lot_size" in instruments.columns else pl.lit(None)
    return (
        instruments.select(
            "symbol",
            (lot.cast(pl.Float64).fill_null(1.0) * settings.min_lot_fraction).alias(MIN_QTY),
            (pl.col("adv_shares") * settings.max_adv_multiple).alias(MAX_QTY),
            market.replace_strict(
                {m: w[0] for m, w in windows.items()}, return_dtype=TS_LIMIT
            ).alias(DAY_START),
            market.replace_strict(
                {m: w[1] for m, w in windows.items()}, return_dtype=TS_LIMIT
            ).alias(DAY_END),
            pl.lit(None, pl.Float64).alias(PX_LOW),
            pl.lit(None, pl.Float64).alias(PX_HIGH),
        )
        .unique("symbol", keep="first")
        .cast(schema)
    )


def quote_range(good_quotes: pl.DataFrame, settings: IngestSettings) -> pl.DataFrame:
    """Per symbol with staged quotes: the price range a print, fill or limit price may lie in."""
    f = settings.price_band_factor
    return good_quotes.group_by("symbol").agg(
        (pl.col("bid_px").min() / f).alias(PX_LOW), (pl.col("ask_px").max() * f).alias(PX_HIGH)
    )


def median_mids(quotes: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: the median mid of the day's landed quotes (the centre of a quote's band)."""
    return quotes.group_by("symbol").agg(
        ((pl.col("bid_px") + pl.col("ask_px")) / 2).median().alias(MID)
    )


def positive(column: str) -> pl.Expr:
    """The value when positive: a value <= 0 breaks `non_positive`, and only that."""
    return pl.when(pl.col(column) > 0).then(pl.col(column))


def size_bounds(settings: IngestSettings, *columns: str) -> list[Bound]:
    """Within [lot x min_lot_fraction, ADV x max_adv_multiple] of the symbol's instrument, and
    never above `max_adv_multiple` x `max_adv_shares` (a symbol without an instrument too)."""
    low = pl.col(MIN_QTY).fill_null(settings.min_lot_fraction)
    high = pl.min_horizontal(
        pl.col(MAX_QTY), pl.lit(settings.max_adv_multiple * settings.max_adv_shares)
    )
    return [Bound(f"implausible_size:{c}", positive(c), low, high) for c in columns]


def price_bounds(settings: IngestSettings, *columns: str) -> list[Bound]:
    """Within the day's quote range widened by `price_band_factor`, and never outside
    [min_price, max_price]."""
    return [
        Bound(
            f"implausible_price:{c}",
            positive(c),
            absolute_low(settings, pl.col(PX_LOW)),
            absolute_high(settings, pl.col(PX_HIGH)),
        )
        for c in columns
    ]


def absolute_low(settings: IngestSettings, low: pl.Expr) -> pl.Expr:
    return pl.max_horizontal(low, pl.lit(settings.min_price))


def absolute_high(settings: IngestSettings, high: pl.Expr) -> pl.Expr:
    return pl.min_horizontal(high, pl.lit(settings.max_price))


def date_bound(column: str, trade_date: date, settings: IngestSettings) -> Bound:
    start, end = default_window(trade_date, settings)
    return Bound(
        f"off_date:{column}",
        pl.col(column),
        pl.col(DAY_START).fill_null(start),
        pl.col(DAY_END).fill_null(end),
    )


def fee_bound(settings: IngestSettings) -> pl.Expr:
    """implausible_fee: |fee| above `max_fee_bps` of qty x price (computed as a product, so a
    tiny notional cannot overflow a division)."""
    notional = positive("qty") * positive("price")  # a value <= 0 breaks non_positive
    return (pl.col("fee").abs() * 1e4 > settings.max_fee_bps * notional).fill_null(False)


def with_bound_flags(
    df: pl.DataFrame, limits: pl.DataFrame, bounds: list[Bound], flag: str, key: str = "symbol"
) -> pl.DataFrame:
    """`df` with a boolean column `flag + code` per bound, `key` naming each row's symbol.

    The per-symbol extremes of every bounded value are compared with the limits first; the
    limits are joined onto the rows only when some symbol breaks a bound."""
    names = [flag + b.code for b in bounds]
    limits = limits.rename({"symbol": key})
    extremes = (
        df.lazy()
        .group_by(key)
        .agg(
            *(b.value.min().alias(f"__min{i}") for i, b in enumerate(bounds)),
            *(b.value.max().alias(f"__max{i}") for i, b in enumerate(bounds)),
        )
        .join(limits.lazy(), on=key, how="left")
        .select(
            key,
            *(
                (
                    Bound(b.code, pl.col(f"__min{i}"), b.low, None).broken()
                    | Bound(b.code, pl.col(f"__max{i}"), None, b.high).broken()
                ).alias(f"__suspect{i}")
                for i, b in enumerate(bounds)
            ),
        )
        .collect()
    )
    suspects = [
        extremes.filter(pl.col(f"__suspect{i}")).get_column(key) for i in range(len(bounds))
    ]
    if not any(s.len() for s in suspects):
        return df.with_columns(pl.lit(False).alias(n) for n in names)
    added = [c for c in limits.columns if c != key]
    joined = df.join(limits, on=key, how="left", maintain_order="left")
    return joined.with_columns(
        (pl.col(key).is_in(s.implode(), nulls_equal=True) & b.broken()).fill_null(False).alias(n)
        for b, s, n in zip(bounds, suspects, names, strict=True)
    ).drop(added)

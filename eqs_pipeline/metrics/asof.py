"""As-of look-ups of the prevailing NBBO, and interval integrals over quotes and the tape.

The quote conventions of DESIGN.md live here and nowhere else:
- at a fill, the prevailing quote is the last with `ts` strictly before `exec_ts`;
- at an order's arrival, and at `t + h`, the last with `ts` at or before the instant (after the
  session's last quote that is the session's last quote).
Among quotes with equal `ts` the last one landed wins (the sorts keep landing order).

Interval benchmarks use cumulative sums so that each order costs two as-of look-ups instead of a
range join: an interval sum is `cum(<= end) - cum(< start)`. Sums are taken of deviations from a
per-symbol reference price, which keeps the cumulative magnitudes small and the differences exact
to far below a hundredth of a basis point.
"""

from __future__ import annotations

import polars as pl

US_PER_S = 1_000_000

# Quotes and prints serve only rows of their own trade date and symbol.
GROUP = ["trade_date", "symbol"]


def prepare_quotes(quotes: pl.LazyFrame) -> pl.LazyFrame:
    """Quotes sorted by symbol and time (ties in landing order) with their mid.

    Adds the columns the interval TWAP needs: `_qi` (the row's position), `_ref` (the symbol's
    first mid) and `_area_before` (the time integral of `mid - _ref`, in price x seconds, from
    the symbol's first quote to this quote's `ts`).
    """
    return (
        quotes.select(*GROUP, "ts", "bid_px", "ask_px", "bid_sz", "ask_sz")
        .sort(*GROUP, "ts", maintain_order=True)
        .with_row_index("_qi")
        .with_columns(mid=(pl.col("bid_px") + pl.col("ask_px")) / 2)
        .with_columns(_ref=pl.col("mid").first().over(GROUP))
        .with_columns(
            _area_before=(
                (
                    (pl.col("mid") - pl.col("_ref"))
                    * seconds_between(pl.col("ts"), pl.col("ts").shift(-1))
                )
                .shift(1)
                .fill_null(0.0)
                .cum_sum()
            ).over(GROUP)
        )
    )


def prepare_trades(trades: pl.LazyFrame) -> pl.LazyFrame:
    """Tape sorted by symbol and time with cumulative volume and price x volume.

    `_cum_dpv` accumulates `(price - _ref) * size` with `_ref` the symbol's first print, so
    `VWAP = _ref + d(_cum_dpv) / d(_cum_v)` over an interval.
    """
    return (
        trades.select(*GROUP, "ts", "price", "size")
        .sort(*GROUP, "ts", maintain_order=True)
        .with_columns(_tref=pl.col("price").first().over(GROUP))
        .with_columns(
            _cum_v=pl.col("size").cum_sum().over(GROUP),
            _cum_dpv=((pl.col("price") - pl.col("_tref")) * pl.col("size")).cum_sum().over(GROUP),
        )
    )


def asof(
    left: pl.LazyFrame,
    on: str | pl.Expr,
    right: pl.LazyFrame,
    columns: dict[str, str],
    *,
    strict: bool,
) -> pl.LazyFrame:
    """Attach, per row of `left`, columns of the last `right` row of the same trade date and
    symbol at `on`.

    `left` must be sorted by `on` within each trade date and symbol; `right` is a frame from `prepare_quotes` or
    `prepare_trades`. `columns` maps right-hand column names to output names. `strict=True`
    takes the last row with `ts < on`, `strict=False` the last with `ts <= on`.
    """
    key = "_asof_key"
    key_expr = pl.col(on) if isinstance(on, str) else on
    picked = right.select(
        *GROUP, pl.col("ts").alias("_asof_ts"), *[pl.col(c).alias(a) for c, a in columns.items()]
    )
    return (
        left.with_columns(key_expr.alias(key))
        .join_asof(
            picked,
            left_on=key,
            right_on="_asof_ts",
            by=GROUP,
            strategy="backward",
            allow_exact_matches=not strict,
            check_sortedness=False,
        )
        .drop(key, "_asof_ts")
    )


def seconds_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """end - start in (fractional) seconds."""
    return (end - start).dt.total_microseconds().cast(pl.Float64) / US_PER_S

"""Fill-level execution quality: `quality.fill_quality`, one row per exec_id.

Each fill gets the NBBO prevailing strictly before it (nbb, nbo, mid) and the mid at every
horizon after it, then every fill metric of docs/METRICS.md from `formulas`. A fill with no prior quote
of its symbol keeps null quote-based metrics and `null_reason = 'no_prior_quote'`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from eqs_pipeline.core.contract import ORDER_KEY, one_trade_date, side_sign
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.quality import formulas as f
from eqs_pipeline.quality.asof import Instants, Timeline, eager, prepare_quotes, stable_order

ORDER_ATTRIBUTES = ("side", "algo", "broker", "trader", "urgency")

# The prevailing quote's columns at a fill, and their names in `quality.fill_quality`.
_AT_FILL = {
    "ts": "quote_ts",
    "bid_px": "nbb",
    "ask_px": "nbo",
    "bid_sz": "nbb_size",
    "ask_sz": "nbo_size",
    "mid": "mid",
}
# `fill_quality`'s look-ups at once: two keep the target machine's two cores busy, and more
# would only share them (each look-up is mostly one core's work).
LOOKUP_THREADS = 2


def horizon_label(seconds: int) -> str:
    """1 -> '1s', 300 -> '300s': the horizon part of the column names (docs/METRICS.md)."""
    return f"{seconds}s"


# The prevailing quote and what is computed from it and the fill alone: null exactly when the
# fill has no prior quote (`null_reason`). spread_capture is also null for a locked quote.
PREVAILING_QUOTE_COLUMNS: tuple[str, ...] = (
    "quote_ts",
    "nbb",
    "nbo",
    "nbb_size",
    "nbo_size",
    "mid",
    "quoted_spread_bps",
    "effective_spread_bps",
    "price_improvement_bps",
    "quote_position",
)


def fill_metric_columns(horizons_s: tuple[int, ...]) -> list[str]:
    """The horizon-dependent fill metric columns, in output order."""
    cols: list[str] = []
    for h in horizons_s:
        lab = horizon_label(h)
        cols += [f"realized_spread_{lab}_bps", f"price_impact_{lab}_bps", f"markout_{lab}_bps"]
    return cols


@dataclass(frozen=True)
class PreparedFills:
    """Fills in (trade_date, symbol, exec_ts, exec_id) order with their order's attributes,
    side_sign and notional, and their execution instants: what scoring needs that does not
    depend on the quotes (`prepare_fills`)."""

    frame: pl.DataFrame
    instants: Instants


def prepare_fills(
    executions: pl.LazyFrame | pl.DataFrame, orders: pl.LazyFrame | pl.DataFrame
) -> PreparedFills:
    """The quote-independent part of `fill_quality`, so that a caller can run it while the
    quotes are prepared (the `quality` step does, on a second thread)."""
    fills = eager(executions)
    table = orders.lazy().select(*ORDER_KEY, *ORDER_ATTRIBUTES).collect()
    # An order is (trade_date, order_id); within one date (a daily partition) the id alone, one
    # column to join on. The attributes come from a join of the key columns alone (joining the
    # wide frame would copy every column of it).
    key = list(ORDER_KEY[1:] if one_trade_date(fills, table) else ORDER_KEY)
    attributes = fills.select(key).join(
        table.select(*key, *ORDER_ATTRIBUTES), on=key, how="left", maintain_order="left"
    )
    if attributes.height != fills.height:
        raise ValueError(
            "orders holds an order_id more than once on one trade date; the staging layer keeps "
            "(trade_date, order_id) unique"
        )
    fills = (
        fills.hstack(attributes.drop(key))
        .with_columns(side_sign=side_sign(pl.col("side")), notional=pl.col("qty") * pl.col("price"))
        .rechunk()  # one chunk: the gather below is several times faster
    )
    fills = fills[fill_order(fills)]
    return PreparedFills(fills, Instants.of(fills["exec_ts"]))


def fill_quality(
    executions: pl.LazyFrame | pl.DataFrame,
    quotes: pl.LazyFrame | pl.DataFrame,
    orders: pl.LazyFrame | pl.DataFrame,
    settings: QualitySettings | None = None,
    *,
    prepared_quotes: Timeline | None = None,
    prepared_fills: PreparedFills | None = None,
) -> pl.LazyFrame:
    """Score every fill against the NBBO.

    executions, orders and quotes are staged contract tables of one or more trade dates (quotes
    of a date serve that date's fills; an order is (trade_date, order_id), so ids may repeat
    across dates). `prepared_quotes` (from `prepare_quotes`) lets a caller
    that also computes order quality share one preparation of the quotes; `prepared_fills`
    (from `prepare_fills` of the same executions and orders) lets it prepare the fills
    meanwhile. The frames are collected here (the as-of look-ups are binary searches
    over numpy keys, see `asof`); the result is returned lazy so callers compose it like any
    other frame.
    """
    settings = settings or QualitySettings()
    q = prepared_quotes if prepared_quotes is not None else prepare_quotes(quotes)
    prepared = prepared_fills if prepared_fills is not None else prepare_fills(executions, orders)
    fills, instants = prepared.frame, prepared.instants
    d = pl.col("side_sign")
    p, m = pl.col("price"), pl.col("mid")
    bid, ask = pl.col("nbb"), pl.col("nbo")

    gid = q.ids(fills)
    # The quote at the fill and the mid at each horizon: independent look-ups, run on two
    # threads (NumPy and Polars release the GIL; one look-up mostly keeps one core busy).
    searches = [(instants, True, _AT_FILL)] + [
        (instants.later(h), False, {"mid": f"mid_{horizon_label(h)}"}) for h in settings.horizons_s
    ]

    def look_up(search: tuple[Instants, bool, dict[str, str]]) -> list[pl.Series]:
        at, strict, columns = search
        return q.take(q.lookup(gid, at, strict=strict), columns)

    with ThreadPoolExecutor(max_workers=LOOKUP_THREADS) as pool:
        looked_up = [column for found in pool.map(look_up, searches) for column in found]
    fills = fills.with_columns(looked_up).lazy()

    pi = f.price_improvement_bps(d, p, bid, ask, m)
    horizon_exprs: list[pl.Expr] = []
    for h in settings.horizons_s:
        lab = horizon_label(h)
        m_h = pl.col(f"mid_{lab}")
        horizon_exprs += [
            f.realized_spread_bps(d, p, m, m_h).alias(f"realized_spread_{lab}_bps"),
            f.price_impact_bps(d, m, m_h).alias(f"price_impact_{lab}_bps"),
            # Needs only P and M_t+h, so it is kept for a fill without a prior quote
            # (docs/METRICS.md).
            f.markout_bps(d, p, m_h).alias(f"markout_{lab}_bps"),
        ]
    locked = ask == bid
    return fills.with_columns(
        f.quoted_spread_bps(bid, ask, m).alias("quoted_spread_bps"),
        f.effective_spread_bps(d, p, m).alias("effective_spread_bps"),
        pi.alias("price_improvement_bps"),
        pl.when(pi > 0)
        .then(pl.lit("improved"))
        .when(pi == 0)
        .then(pl.lit("at_quote"))
        .when(pi < 0)
        .then(pl.lit("outside"))
        .alias("quote_position"),
        pl.when(locked)
        .then(None)
        .otherwise(f.spread_capture(d, p, m, bid, ask))
        .alias("spread_capture"),
        f.fee_bps(pl.col("fee"), pl.col("notional")).alias("fee_bps"),
        *horizon_exprs,
        pl.when(m.is_null()).then(pl.lit("no_prior_quote")).alias("null_reason"),
    ).select(fill_quality_columns(settings.horizons_s))


def fill_order(fills: pl.DataFrame) -> np.ndarray:
    """The permutation that sorts fills by (trade_date, symbol, exec_ts, exec_id), nulls first.

    The same order as `DataFrame.sort` on those columns, without sorting strings: the symbol is
    rank-encoded through an Enum of its sorted values, the three integer keys are sorted at once
    (`stable_order`), and only rows tied on all three (rare) are ordered by exec_id.
    """
    if fills.height == 0:
        return np.arange(0, dtype=np.int64)
    symbols = fills["symbol"].drop_nulls().unique().sort()
    keys = fills.select(
        pl.col("trade_date").is_not_null().cast(pl.Int64).alias("dn"),
        pl.col("trade_date").cast(pl.Int32).cast(pl.Int64).fill_null(0).alias("d"),
        pl.col("symbol").cast(pl.Enum(symbols)).to_physical().cast(pl.Int64).fill_null(-1),
        pl.col("exec_ts").is_not_null().cast(pl.Int64).alias("tn"),
        pl.col("exec_ts").to_physical().fill_null(0).alias("t"),
    )
    dn, d, sym, tn, t = (keys.to_series(i).to_numpy().astype(np.int64) for i in range(5))
    known_d, known_t = dn == 1, tn == 1
    days = np.unique(d[known_d])
    day = np.where(known_d, np.searchsorted(days, d) + 1, 0)
    # Group number in (date, symbol) order and time, nulls first (0).
    group = day * (symbols.len() + 1) + sym + 1
    time = np.where(known_t, t - (t[known_t].min() if known_t.any() else 0) + 1, 0)
    order = stable_order(group, time)
    g, t_sorted = group[order], time[order]
    tied = (g[1:] == g[:-1]) & (t_sorted[1:] == t_sorted[:-1])
    if tied.any():
        at = np.zeros(order.size, dtype=bool)
        at[1:] |= tied
        at[:-1] |= tied
        rows = np.flatnonzero(at)
        sub = pl.DataFrame(
            {
                "g": g[rows],
                "t": t_sorted[rows],
                "e": fills["exec_id"].gather(order[rows]),
                "i": order[rows],
            }
        ).sort("g", "t", "e")
        order[rows] = sub["i"].to_numpy()
    return order


def fill_quality_columns(horizons_s: tuple[int, ...]) -> list[str]:
    """Column order of `quality.fill_quality`."""
    return [
        "exec_id",
        "trade_date",
        "order_id",
        "child_id",
        "symbol",
        "venue",
        "side",
        "side_sign",
        "algo",
        "broker",
        "trader",
        "urgency",
        "liquidity_flag",
        "exec_ts",
        "qty",
        "price",
        "notional",
        "fee",
        "fee_bps",
        *PREVAILING_QUOTE_COLUMNS,
        "spread_capture",
        *[f"mid_{horizon_label(h)}" for h in horizons_s],
        *fill_metric_columns(horizons_s),
        "null_reason",
    ]

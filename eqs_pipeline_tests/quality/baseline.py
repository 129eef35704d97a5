"""The fill and order quality computation as it was before the performance work (issue 4).

A frozen copy of `eqs_pipeline.quality` (asof.py, fills.py, orders.py) at the commit before
optimization, kept only so that `test_performance_equivalence` can prove that the optimized path
gives the same numbers. Do not optimize this file: it is the yardstick.
"""

from __future__ import annotations

import polars as pl

from eqs_pipeline.core.contract import side_sign
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.costmodel import almgren_expected_cost_bps
from eqs_pipeline.quality import formulas as f
from eqs_pipeline.quality.scoring import quality_grade, quality_score

# --- asof.py

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


# --- fills.py

ORDER_ATTRIBUTES = ("side", "algo", "broker", "trader", "urgency")


def horizon_label(seconds: int) -> str:
    """1 -> '1s', 300 -> '300s': the horizon part of the column names."""
    return f"{seconds}s"


def fill_metric_columns(horizons_s: tuple[int, ...]) -> list[str]:
    """The horizon-dependent fill metric columns, in output order."""
    cols: list[str] = []
    for h in horizons_s:
        lab = horizon_label(h)
        cols += [f"realized_spread_{lab}_bps", f"price_impact_{lab}_bps", f"markout_{lab}_bps"]
    return cols


def fill_quality(
    executions: pl.LazyFrame,
    quotes: pl.LazyFrame,
    orders: pl.LazyFrame,
    settings: QualitySettings | None = None,
    *,
    prepared_quotes: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Score every fill against the NBBO.

    executions, orders and quotes are staged contract tables of one or more trade dates (quotes
    of a date serve that date's fills). `prepared_quotes` lets a caller that also computes order
    quality share one `prepare_quotes` result.
    """
    settings = settings or QualitySettings()
    q = prepared_quotes if prepared_quotes is not None else prepare_quotes(quotes)
    d = pl.col("side_sign")
    p, m = pl.col("price"), pl.col("mid")
    bid, ask = pl.col("nbb"), pl.col("nbo")

    fills = (
        executions.join(orders.select("order_id", *ORDER_ATTRIBUTES), on="order_id", how="left")
        .with_columns(side_sign=side_sign(pl.col("side")), notional=pl.col("qty") * pl.col("price"))
        .sort("trade_date", "symbol", "exec_ts", "exec_id")
    )
    fills = asof(
        fills,
        "exec_ts",
        q,
        {
            "ts": "quote_ts",
            "bid_px": "nbb",
            "ask_px": "nbo",
            "bid_sz": "nbb_size",
            "ask_sz": "nbo_size",
            "mid": "mid",
        },
        strict=True,
    )
    for h in settings.horizons_s:
        fills = asof(
            fills,
            pl.col("exec_ts") + pl.duration(seconds=h),
            q,
            {"mid": f"mid_{horizon_label(h)}"},
            strict=False,
        )

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
        "spread_capture",
        *[f"mid_{horizon_label(h)}" for h in horizons_s],
        *fill_metric_columns(horizons_s),
        "null_reason",
    ]


# --- orders.py

FILLED_TOLERANCE = 1e-9
# Intervals spanning at most this many quote changes get their TWAP summed exactly, quote by
# quote; longer ones use the cumulative integral, whose cancellation error (relative to the
# interval's length) is then far below 1e-6 bps.
EXACT_TWAP_MAX_QUOTES = 256


def _weighted(metric: str) -> pl.Expr:
    """Share-weighted mean of a fill metric over the fills where it is known."""
    weight = pl.col("qty").filter(pl.col(metric).is_not_null()).sum()
    return pl.when(weight > 0).then((pl.col(metric) * pl.col("qty")).sum() / weight)


def aggregate_fills(fill_quality: pl.LazyFrame) -> pl.LazyFrame:
    """Per order: filled quantity, notional, fees, first/last fill and share-weighted metrics."""
    q = pl.col("qty")
    return fill_quality.group_by("order_id").agg(
        filled_qty=q.sum(),
        fill_count=pl.len().cast(pl.Int64),
        notional=pl.col("notional").sum(),
        fees=pl.col("fee").fill_null(0.0).sum(),
        first_fill_ts=pl.col("exec_ts").min(),
        last_fill_ts=pl.col("exec_ts").max(),
        passive_qty=q.filter(pl.col("liquidity_flag") == "ADD").sum(),
        venue_count=pl.col("venue").n_unique().cast(pl.Int64),
        effective_spread_bps=_weighted("effective_spread_bps"),
        price_improvement_bps=_weighted("price_improvement_bps"),
    )


def order_quality(
    orders: pl.LazyFrame,
    fill_quality: pl.LazyFrame,
    quotes: pl.LazyFrame,
    market_trades: pl.LazyFrame,
    instruments: pl.LazyFrame,
    settings: QualitySettings | None = None,
    *,
    prepared_quotes: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Every order-level metric plus the documented extras and the quality score."""
    settings = settings or QualitySettings()
    q = prepared_quotes if prepared_quotes is not None else prepare_quotes(quotes)
    t = prepare_trades(market_trades)
    rev_lab = horizon_label(settings.reversion_horizon_s)

    base = (
        orders.join(aggregate_fills(fill_quality), on="order_id", how="left")
        .join(
            instruments.select("symbol", "adv_shares", "daily_volatility"),
            on="symbol",
            how="left",
        )
        .with_columns(
            side_sign=side_sign(pl.col("side")),
            filled_qty=pl.col("filled_qty").fill_null(0.0),
            fill_count=pl.col("fill_count").fill_null(0),
            venue_count=pl.col("venue_count").fill_null(0),
            fees=pl.col("fees").fill_null(0.0),
            order_end_ts=pl.coalesce("end_ts", "last_fill_ts"),
        )
    )

    # Arrival quote (at or before arrival) and the TWAP integral's value at arrival.
    base = asof(
        base.sort("trade_date", "symbol", "arrival_ts", "order_id"),
        "arrival_ts",
        q,
        {
            "bid_px": "arrival_bid",
            "ask_px": "arrival_ask",
            "mid": "arrival_mid",
            "ts": "_qa_ts",
            "_qi": "_qa_i",
            "_ref": "_qref",
            "_area_before": "_qa_area",
        },
        strict=False,
    )
    base = asof(base, "arrival_ts", t, {"_cum_v": "_v_a", "_cum_dpv": "_dpv_a"}, strict=True)
    # End quote and tape at end (both ends of the interval included).
    base = base.sort("trade_date", "symbol", "order_end_ts", "order_id")
    base = asof(
        base,
        "order_end_ts",
        q,
        {"mid": "end_mid", "ts": "_qe_ts", "_qi": "_qe_i", "_area_before": "_qe_area"},
        strict=False,
    )
    base = asof(
        base,
        "order_end_ts",
        t,
        {"_cum_v": "_v_e", "_cum_dpv": "_dpv_e", "_tref": "_tref"},
        strict=False,
    )
    base = asof(
        base,
        pl.col("order_end_ts") + pl.duration(seconds=settings.reversion_horizon_s),
        q,
        {"mid": f"mid_end_{rev_lab}"},
        strict=False,
    )
    base = base.join(_exact_twap(base, q), on="order_id", how="left")
    return _order_metrics(base, settings, rev_lab)


def _exact_twap(base: pl.LazyFrame, q: pl.LazyFrame) -> pl.LazyFrame:
    """TWAP summed quote by quote for orders whose interval sees few quote changes.

    Each quote k from the arrival quote to the end quote prevails from max(ts_k, arrival) to
    min(ts_k+1, end) (the end quote until end).
    """
    span = pl.col("_qe_i").cast(pl.Int64) - pl.col("_qa_i").cast(pl.Int64)
    short = base.filter(
        (span >= 1)
        & (span <= EXACT_TWAP_MAX_QUOTES)
        & (pl.col("order_end_ts") > pl.col("arrival_ts"))
    ).select(
        "order_id",
        "arrival_ts",
        "order_end_ts",
        "_qe_i",
        _qi=pl.int_ranges(pl.col("_qa_i"), pl.col("_qe_i") + 1, dtype=pl.UInt32),
    )
    segments = q.select(pl.col("_qi").cast(pl.UInt32), "ts", "mid", _next_ts=pl.col("ts").shift(-1))
    start = pl.max_horizontal("ts", "arrival_ts")
    stop = (
        pl.when(pl.col("_qi") == pl.col("_qe_i"))
        .then(pl.col("order_end_ts"))
        .otherwise(pl.min_horizontal("_next_ts", "order_end_ts"))
    )
    return (
        short.explode("_qi")
        # Keep the exploded order so the sums below add up in the same order on every run.
        .join(segments, on="_qi", maintain_order="left")
        .group_by("order_id")
        .agg(
            _twap_exact=(pl.col("mid") * seconds_between(start, stop)).sum()
            / seconds_between(pl.col("arrival_ts").first(), pl.col("order_end_ts").first())
        )
    )


def _order_metrics(base: pl.LazyFrame, settings: QualitySettings, rev_lab: str) -> pl.LazyFrame:
    d = pl.col("side_sign")
    size, filled = pl.col("order_qty"), pl.col("filled_qty")
    m0, m_end = pl.col("arrival_mid"), pl.col("end_mid")
    avg_px = pl.col("avg_px")
    has_fills = filled > 0

    # Tape between the two as-of points; missing cumulative values mean "no print yet" (0).
    volume = pl.col("_v_e").fill_null(0.0) - pl.col("_v_a").fill_null(0.0)
    dpv = pl.col("_dpv_e").fill_null(0.0) - pl.col("_dpv_a").fill_null(0.0)
    # Time integral of (mid - ref) at instant t, from the quote prevailing at t.
    area_at_end = pl.col("_qe_area") + (m_end - pl.col("_qref")) * seconds_between(
        pl.col("_qe_ts"), pl.col("order_end_ts")
    )
    area_at_arrival = pl.col("_qa_area") + (m0 - pl.col("_qref")) * seconds_between(
        pl.col("_qa_ts"), pl.col("arrival_ts")
    )
    duration = seconds_between(pl.col("arrival_ts"), pl.col("order_end_ts"))

    out = base.with_columns(
        fill_rate=filled / size,
        avg_px=pl.when(has_fills).then(pl.col("notional") / filled),
        market_volume=pl.when(pl.col("order_end_ts").is_not_null()).then(volume),
        interval_vwap=pl.when(volume > 0).then(pl.col("_tref") + dpv / volume),
        interval_twap=pl.when(pl.col("_qa_i") == pl.col("_qe_i"))
        .then(m0)
        .when(pl.col("_twap_exact").is_not_null())
        .then(pl.col("_twap_exact"))
        .when(duration > 0)
        .then(pl.col("_qref") + (area_at_end - area_at_arrival) / duration)
        .when(duration == 0)
        .then(m0),
        duration_s=duration,
        time_to_first_fill_s=seconds_between(pl.col("arrival_ts"), pl.col("first_fill_ts")),
        arrival_spread_bps=f.quoted_spread_bps(pl.col("arrival_bid"), pl.col("arrival_ask"), m0),
        size_pct_adv=size / pl.col("adv_shares"),
        daily_volatility=pl.col("daily_volatility").fill_null(
            settings.cost_model.default_daily_volatility
        ),
    ).with_columns(
        arrival_slippage_bps=f.slippage_bps(d, avg_px, m0),
        interval_vwap_slippage_bps=f.slippage_bps(d, avg_px, pl.col("interval_vwap")),
        interval_twap_slippage_bps=f.slippage_bps(d, avg_px, pl.col("interval_twap")),
        participation_rate=pl.when(pl.col("market_volume") > 0).then(
            filled / pl.col("market_volume")
        ),
        implementation_shortfall_bps=f.implementation_shortfall_bps(
            d, size, filled, pl.col("notional").fill_null(0.0), pl.col("fees"), m0, m_end
        ),
        opportunity_cost_bps=f.opportunity_cost_bps(d, size, filled, m0, m_end),
        fee_bps=pl.when(has_fills).then(f.fee_bps(pl.col("fees"), pl.col("notional"))),
        pct_passive=pl.when(has_fills).then(pl.col("passive_qty").fill_null(0.0) / filled),
        **{
            f"reversion_{rev_lab}_bps": pl.when(pl.col("order_end_ts").is_not_null()).then(
                f.reversion_bps(d, m_end, pl.col(f"mid_end_{rev_lab}"))
            )
        },
        status=pl.when(filled <= 0)
        .then(pl.lit("unfilled"))
        .when(filled >= size * (1 - FILLED_TOLERANCE))
        .then(pl.lit("filled"))
        .otherwise(pl.lit("partial")),
    )
    out = out.with_columns(expected_cost_bps=almgren_expected_cost_bps(settings.cost_model))
    out = out.with_columns(
        cost_vs_expected_bps=pl.col("implementation_shortfall_bps") - pl.col("expected_cost_bps"),
        quality_score=quality_score(settings.score),
    ).with_columns(quality_grade=quality_grade(settings.score), null_reason=_null_reason())
    return out.select(order_quality_columns(settings)).sort("order_id")


def _null_reason() -> pl.Expr:
    """Why some metrics of the row are null, as a ';'-joined list (null when none are)."""
    reasons = [
        (pl.col("arrival_mid").is_null(), "no_arrival_quote"),
        (pl.col("filled_qty") <= 0, "no_fills"),
        (pl.col("order_end_ts").is_null(), "no_end_time"),
        (
            pl.col("order_end_ts").is_not_null() & (pl.col("market_volume") <= 0),
            "no_tape_in_interval",
        ),
        (pl.col("adv_shares").is_null(), "unknown_instrument"),
        (pl.col("quality_score").is_null(), "not_graded"),
    ]
    parts = [pl.when(cond).then(pl.lit(name)) for cond, name in reasons]
    joined = pl.concat_list(parts).list.drop_nulls().list.join(";")
    return pl.when(joined != "").then(joined)


def order_quality_columns(settings: QualitySettings) -> list[str]:
    """Column order of `quality.order_quality`."""
    rev = f"reversion_{horizon_label(settings.reversion_horizon_s)}_bps"
    return [
        "order_id",
        "trade_date",
        "symbol",
        "side",
        "side_sign",
        "order_type",
        "limit_price",
        "algo",
        "urgency",
        "target_participation",
        "broker",
        "trader",
        "account",
        "decision_ts",
        "arrival_ts",
        "end_ts",
        "order_end_ts",
        "first_fill_ts",
        "last_fill_ts",
        "status",
        "order_qty",
        "filled_qty",
        "fill_count",
        "venue_count",
        "fill_rate",
        "avg_px",
        "notional",
        "fees",
        "arrival_bid",
        "arrival_ask",
        "arrival_mid",
        "arrival_spread_bps",
        "end_mid",
        "interval_vwap",
        "interval_twap",
        "market_volume",
        "arrival_slippage_bps",
        "interval_vwap_slippage_bps",
        "interval_twap_slippage_bps",
        "participation_rate",
        "implementation_shortfall_bps",
        "opportunity_cost_bps",
        "fee_bps",
        "effective_spread_bps",
        "price_improvement_bps",
        "pct_passive",
        "time_to_first_fill_s",
        "duration_s",
        rev,
        "adv_shares",
        "size_pct_adv",
        "daily_volatility",
        "expected_cost_bps",
        "cost_vs_expected_bps",
        "quality_score",
        "quality_grade",
        "null_reason",
    ]

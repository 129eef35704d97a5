"""Real Nasdaq executions through the metric functions: invariants that must hold on real data.

Every type-4 message (a visible resting order hit by a marketable order) is taken as OUR
aggressive fill: side = the aggressor = -direction, liquidity REMOVE, venue XNAS. The fills of a
symbol, side and clock minute form one MARKET parent order that arrives one microsecond before
its first fill. Quotes, tape and instruments are the landing files written by `import_lobster`.

The expectations are computed here independently, with numpy searches over the raw LOBSTER book
(row i = the book after message i), not with the as-of code under test.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.core.contract import EXECUTIONS, ORDERS
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.lobster import LobsterDay
from eqs_pipeline.quality.fills import fill_quality, horizon_label
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline_tests.lobster.samples import DATE, read_landed

HORIZONS = QualitySettings().horizons_s
LABELS = [horizon_label(h) for h in HORIZONS]
US = 1_000_000
TOL_BPS = 1e-9
# The metrics that need the quote prevailing at the fill. Markouts need only the later mids and
# the price, and fill_quality computes them even without a prior quote, so they are not listed.
QUOTE_METRICS = [
    "nbb",
    "nbo",
    "mid",
    "quoted_spread_bps",
    "effective_spread_bps",
    "price_improvement_bps",
    "quote_position",
    "spread_capture",
    *[f"{m}_{lab}_bps" for lab in LABELS for m in ("realized_spread", "price_impact")],
]


def _contract_frame(frame: pl.DataFrame, contract_columns: tuple) -> pl.DataFrame:
    """All contract columns (absent optional ones as typed nulls) plus trade_date."""
    return frame.select(
        *[
            (pl.col(c.name) if c.name in frame.columns else pl.lit(None))
            .cast(c.dtype)
            .alias(c.name)
            for c in contract_columns
        ],
        trade_date=pl.lit(date.fromisoformat(DATE)),
    )


def our_fills(days: dict[str, LobsterDay]) -> pl.DataFrame:
    """Type-4 executions as aggressive fills, with the independent expectations attached.

    exp_bid / exp_ask: the book row of the last message whose microsecond is before the fill's
    (the quote strictly before exec_ts); null when there is none. first_in_us: the fill is the
    first message of its microsecond, so that row is the one right before it. exp_mid_<h>: the
    mid of the last book row at or before exec_ts + h.
    """
    frames = []
    for symbol, day in days.items():
        book = day.book
        book_us = book["ts"].dt.epoch("us").to_numpy()
        bid, ask = book["bid_px"].to_numpy(), book["ask_px"].to_numpy()
        fills = day.messages.filter(pl.col("type") == 4)
        fill_us = fills["ts"].dt.epoch("us").to_numpy()
        j = np.searchsorted(book_us, fill_us, side="left") - 1
        has = j >= 0
        horizon_mids = {}
        for h, lab in zip(HORIZONS, LABELS, strict=True):
            k = np.searchsorted(book_us, fill_us + h * US, side="right") - 1
            horizon_mids[f"exp_mid_{lab}"] = (bid[k] + ask[k]) / 2
        frames.append(
            fills.select(
                exec_id=pl.format("{}-{}", pl.lit(symbol), pl.col("seq")),
                symbol=pl.lit(symbol),
                side=pl.when(pl.col("direction") == -1)
                .then(pl.lit("BUY"))
                .otherwise(pl.lit("SELL")),
                exec_ts=pl.col("ts"),
                qty=pl.col("size").cast(pl.Float64),
                price=pl.col("price"),
                first_in_us=pl.Series(j == fills["seq"].to_numpy() - 1),
                exp_bid=pl.Series(np.where(has, bid[j], np.nan)).fill_nan(None),
                exp_ask=pl.Series(np.where(has, ask[j], np.nan)).fill_nan(None),
                **{c: pl.Series(v) for c, v in horizon_mids.items()},
            )
        )
    fills = pl.concat(frames)
    minute = pl.col("exec_ts").dt.truncate("1m").dt.strftime("%H%M")
    return fills.with_columns(
        order_id=pl.format("{}-{}-{}", "symbol", "side", minute),
        venue=pl.lit("XNAS"),
        liquidity_flag=pl.lit("REMOVE"),
    )


def our_orders(fills: pl.DataFrame) -> pl.DataFrame:
    """One MARKET order per symbol, side and minute, exactly the size of its fills."""
    return fills.group_by("order_id").agg(
        pl.col("symbol", "side").first(),
        order_qty=pl.col("qty").sum(),
        arrival_ts=pl.col("exec_ts").min() - pl.duration(microseconds=1),
        order_type=pl.lit("MARKET"),
        algo=pl.lit("AGGRESSIVE"),
        broker=pl.lit("LOBSTER"),
    )


@pytest.fixture(scope="module")
def scored(
    lobster_days: dict[str, LobsterDay], lobster_landing: tuple[Path, dict[str, int]]
) -> dict[str, pl.DataFrame]:
    landing = lobster_landing[0]
    # Staged rows carry the trade date of their landing folder.
    trade_date = pl.lit(date.fromisoformat(DATE))
    quotes = read_landed(landing, "quotes").with_columns(trade_date=trade_date)
    tape = read_landed(landing, "market_trades").with_columns(trade_date=trade_date)
    instruments = read_landed(landing, "instruments")
    fills = our_fills(lobster_days)
    orders = _contract_frame(our_orders(fills), ORDERS.columns)
    executions = _contract_frame(fills, EXECUTIONS.columns)
    fq = fill_quality(executions.lazy(), quotes.lazy(), orders.lazy()).collect()
    oq = order_quality(
        orders.lazy(), fq.lazy(), quotes.lazy(), tape.lazy(), instruments.lazy()
    ).collect()
    return {
        "fills": fq.join(fills.drop("symbol", "side", "exec_ts", "qty", "price"), on="exec_id"),
        "orders": oq,
        "raw_fills": fills,
        "quotes": quotes,
        "tape": tape,
    }


def test_one_row_per_fill_and_the_readme_counts(scored: dict[str, pl.DataFrame]) -> None:
    fills = scored["fills"]
    assert fills.height == scored["raw_fills"].height == 8_974 + 7_765
    assert fills["exec_id"].n_unique() == fills.height


def test_prevailing_quote_is_the_book_before_the_fills_microsecond(
    scored: dict[str, pl.DataFrame],
) -> None:
    """nbb/nbo are the book row of the last message in an earlier microsecond, for every fill.

    Only GOOG's very first message (a type-4 execution at 09:30:00.015105) has no earlier quote:
    its quote-based metrics are all null and it says why; no other fill has any of them null.
    Mids at t + h are the book at or before t + h (after the last message, the last book).
    """
    fills = scored["fills"]
    no_quote = fills.filter(pl.col("exp_bid").is_null())
    assert no_quote["exec_id"].to_list() == ["GOOG-0"]
    assert no_quote.select(QUOTE_METRICS).null_count().row(0) == (1,) * len(QUOTE_METRICS)
    assert no_quote["null_reason"].to_list() == ["no_prior_quote"]
    quoted = fills.filter(pl.col("exp_bid").is_not_null())
    markouts = [f"markout_{lab}_bps" for lab in LABELS]
    assert quoted.select(*QUOTE_METRICS, *markouts).null_count().sum_horizontal().item() == 0
    assert quoted["null_reason"].null_count() == quoted.height
    assert (quoted["nbb"] == quoted["exp_bid"]).all()
    assert (quoted["nbo"] == quoted["exp_ask"]).all()
    assert (quoted["quote_ts"] < quoted["exec_ts"]).all()
    for lab in LABELS:
        assert (quoted[f"mid_{lab}"] == quoted[f"exp_mid_{lab}"]).all(), lab


def test_first_fill_of_its_microsecond_is_exactly_at_the_quote(
    scored: dict[str, pl.DataFrame],
) -> None:
    """LOBSTER: every type-4 execution is at the resting side's best of the book row before it.

    When that row is the prevailing quote (the fill is the first message of its microsecond),
    the fill is at the quote: a buy pays the ask, a sell gets the bid, price improvement is 0,
    the effective spread equals the quoted spread and spread capture is -1.
    """
    first = scored["fills"].filter(pl.col("first_in_us") & pl.col("mid").is_not_null())
    assert first.height == 6_206 + 5_290
    touch = pl.when(pl.col("side") == "BUY").then(pl.col("nbo")).otherwise(pl.col("nbb"))
    assert (first["price"] == first.select(touch).to_series()).all()
    assert (first["price_improvement_bps"] == 0.0).all()
    assert (first["quote_position"] == "at_quote").all()
    diff = first["effective_spread_bps"] - first["quoted_spread_bps"]
    assert diff.abs().max() < TOL_BPS
    assert (first["spread_capture"] + 1).abs().max() < 1e-9


def test_no_visible_execution_is_improved(scored: dict[str, pl.DataFrame]) -> None:
    """No type-4 fill beats the quote prevailing strictly before it; some fare worse.

    A marketable order that sweeps several price levels within one microsecond produces fills
    after the first whose prevailing quote is still the pre-sweep book: they are 'outside'
    (a buy above the prevailing ask). Holds on both samples; a sign error in price improvement
    or a quote picked at or after exec_ts would break it.
    """
    fills = scored["fills"].filter(pl.col("mid").is_not_null())
    buys, sells = fills.filter(pl.col("side") == "BUY"), fills.filter(pl.col("side") == "SELL")
    assert (buys["price"] >= buys["nbo"]).all()
    assert (sells["price"] <= sells["nbb"]).all()
    assert (fills["price_improvement_bps"] <= 0).all()
    positions = dict(fills.group_by("quote_position").len().rows())
    assert set(positions) == {"at_quote", "outside"}
    assert positions["outside"] == 399 + 249 + 196 + 163
    assert fills.filter(pl.col("first_in_us"))["quote_position"].unique().to_list() == ["at_quote"]


def test_fill_metric_identities(scored: dict[str, pl.DataFrame]) -> None:
    """Spreads positive, effective = quoted - 2 PI = realized + impact at every horizon,
    spread capture = -effective / quoted, markout x P = -realized x M / 2, all finite."""
    f = scored["fills"].filter(pl.col("mid").is_not_null())
    assert (f["nbb"] < f["nbo"]).all()
    assert (f["quoted_spread_bps"] > 0).all()
    assert (f["effective_spread_bps"] >= f["quoted_spread_bps"] - TOL_BPS).all()
    eff = f["effective_spread_bps"]
    assert (eff - (f["quoted_spread_bps"] - 2 * f["price_improvement_bps"])).abs().max() < TOL_BPS
    capture = -eff / f["quoted_spread_bps"]
    assert (f["spread_capture"] - capture).abs().max() < 1e-12
    for lab in LABELS:
        realized, impact = f[f"realized_spread_{lab}_bps"], f[f"price_impact_{lab}_bps"]
        markout = f[f"markout_{lab}_bps"]
        assert (eff - realized - impact).abs().max() < TOL_BPS, lab
        assert (markout * f["price"] + realized * f["mid"] / 2).abs().max() < TOL_BPS * 1e3, lab
        assert realized.is_finite().all() and markout.is_finite().all(), lab


def _interval_expectations(
    orders: pl.DataFrame, quotes: pl.DataFrame, tape: pl.DataFrame
) -> pl.DataFrame:
    """Per order, by direct slicing: tape volume, VWAP, print range, and the mid's TWAP."""
    rows = []
    for symbol in orders["symbol"].unique().sort():
        q = quotes.filter(pl.col("symbol") == symbol)
        q_us = q["ts"].dt.epoch("us").to_numpy()
        mids = ((q["bid_px"] + q["ask_px"]) / 2).to_numpy()
        t = tape.filter(pl.col("symbol") == symbol)
        t_us, px, sz = (
            t["ts"].dt.epoch("us").to_numpy(),
            t["price"].to_numpy(),
            t["size"].to_numpy(),
        )
        mine = orders.filter(pl.col("symbol") == symbol)
        starts = mine["arrival_ts"].dt.epoch("us").to_numpy()
        ends = mine["order_end_ts"].dt.epoch("us").to_numpy()
        for order_id, a, e in zip(mine["order_id"], starts, ends, strict=True):
            lo, hi = np.searchsorted(t_us, a, "left"), np.searchsorted(t_us, e, "right")
            i0, i1 = np.searchsorted(q_us, a, "right") - 1, np.searchsorted(q_us, e, "right")
            twap = None
            if i0 >= 0:
                times = np.concatenate([[a], q_us[i0 + 1 : i1], [e]])
                twap = float(np.sum(mids[i0:i1] * np.diff(times)) / (e - a))
            rows.append(
                (
                    order_id,
                    float(sz[lo:hi].sum()),
                    float(np.sum(px[lo:hi] * sz[lo:hi]) / sz[lo:hi].sum()),
                    float(px[lo:hi].min()),
                    float(px[lo:hi].max()),
                    twap,
                )
            )
    return pl.DataFrame(
        rows,
        schema=["order_id", "exp_volume", "exp_vwap", "print_min", "print_max", "exp_twap"],
        orient="row",
    )


def test_order_level_on_real_fills(scored: dict[str, pl.DataFrame]) -> None:
    """Orders built from their own fills: fully filled, arrival mid = first fill's mid,
    IS = arrival slippage, avg_px inside the fills' range, VWAP / volume / TWAP equal to direct
    sums over the interval, participation in (0, 1]."""
    raw = scored["raw_fills"]
    fq = scored["fills"]
    own = raw.group_by("order_id").agg(
        n=pl.len(),
        px_min=pl.col("price").min(),
        px_max=pl.col("price").max(),
        exp_avg_px=(pl.col("price") * pl.col("qty")).sum() / pl.col("qty").sum(),
    )
    first_mid = (
        fq.sort("exec_ts", "exec_id")
        .group_by("order_id", maintain_order=True)
        .agg(first_mid=pl.col("mid").first())
    )
    eff = fq.group_by("order_id").agg(
        exp_eff=(pl.col("effective_spread_bps") * pl.col("qty")).sum()
        / pl.col("qty").filter(pl.col("effective_spread_bps").is_not_null()).sum()
    )
    oq = scored["orders"]
    assert oq.height == raw["order_id"].n_unique() == oq["order_id"].n_unique()
    o = oq.join(own, on="order_id").join(first_mid, on="order_id").join(eff, on="order_id")
    o = o.join(_interval_expectations(oq, scored["quotes"], scored["tape"]), on="order_id")
    assert o.height == oq.height
    assert (o["fill_rate"] == 1.0).all() and (o["status"] == "filled").all()
    assert (o["fill_count"] == o["n"]).all()
    assert (o["avg_px"] >= o["px_min"] - 1e-9).all() and (o["avg_px"] <= o["px_max"] + 1e-9).all()
    assert ((o["avg_px"] - o["exp_avg_px"]).abs() / o["avg_px"]).max() < 1e-12

    no_arrival = o.filter(pl.col("arrival_mid").is_null())
    assert no_arrival["order_id"].to_list() == ["GOOG-SELL-1330"]
    assert "no_arrival_quote" in no_arrival["null_reason"].item()
    known = o.filter(pl.col("arrival_mid").is_not_null())
    assert (known["arrival_mid"] == known["first_mid"]).all()
    is_gap = known["implementation_shortfall_bps"] - known["arrival_slippage_bps"]
    assert is_gap.abs().max() < TOL_BPS
    assert (known["effective_spread_bps"] - known["exp_eff"]).abs().max() < TOL_BPS

    assert (o["market_volume"] == o["exp_volume"]).all()
    assert ((o["interval_vwap"] - o["exp_vwap"]).abs() / o["exp_vwap"]).max() < 1e-10
    assert (o["interval_vwap"] >= o["print_min"] - 1e-9).all()
    assert (o["interval_vwap"] <= o["print_max"] + 1e-9).all()
    # The TWAP comes from differences of a day-long cumulative integral divided by the duration:
    # its rounding error grows as 1 / duration (about 4e-4 bps for the 1-microsecond orders of a
    # single fill, below 1e-9 bps from one second on).
    twap_err_bps = (known["interval_twap"] - known["exp_twap"]).abs() / known["exp_twap"] * 1e4
    assert twap_err_bps.max() < 1e-3
    assert twap_err_bps.filter(known["duration_s"] >= 1).max() < 1e-6
    assert o["participation_rate"].is_between(0, 1, closed="right").all()

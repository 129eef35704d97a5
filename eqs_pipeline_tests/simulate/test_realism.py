"""Statistical sanity: properties an analyst would check, each of which fails if the
simulator's mechanism is broken (not merely if a number moved)."""

from __future__ import annotations

import numpy as np
import polars as pl

from eqs_pipeline.simulate import ImpactParams, SimulatedData, SimulationConfig, simulate

from .conftest import fills_with_quotes


def _session_bucket(ts: pl.Expr, minutes: int = 30) -> pl.Expr:
    first = ts.min().over("trade_date")
    return ((ts - first).dt.total_seconds() // (minutes * 60)).alias("bucket")


def test_intraday_volume_is_u_shaped(stats: SimulatedData) -> None:
    tape = stats.tables["market_trades"].with_columns(_session_bucket(pl.col("ts")))
    vol = tape.group_by("bucket").agg(pl.col("size").sum()).sort("bucket")["size"].to_numpy()
    assert vol.size == 13
    middle = np.median(vol[3:10])
    assert vol[0] > 1.4 * middle and vol[-1] > 1.4 * middle


def test_spreads_widen_with_volatility_and_narrow_with_liquidity(stats: SimulatedData) -> None:
    q = stats.tables["quotes"].with_columns(
        spread_bps=(pl.col("ask_px") - pl.col("bid_px"))
        / ((pl.col("ask_px") + pl.col("bid_px")) / 2)
        * 1e4
    )
    per = q.group_by("symbol").agg(pl.col("spread_bps").mean()).join(stats.instruments, on="symbol")
    price = np.array([stats.truth["symbols"][s]["price"] for s in per["symbol"]])
    x = np.column_stack(
        [np.ones(per.height), np.log(per["daily_volatility"]), np.log(per["adv_shares"] * price)]
    )
    coef, *_ = np.linalg.lstsq(x, np.log(per["spread_bps"].to_numpy()), rcond=None)
    assert coef[1] > 0.3, coef
    assert coef[2] < -0.1, coef


def test_toxic_venue_markouts_clearly_negative_vs_lit(stats: SimulatedData) -> None:
    f = fills_with_quotes(stats)
    by = f.group_by("venue").agg(
        m=pl.col("markout_60s_bps").mean(),
        se=pl.col("markout_60s_bps").std() / pl.len().sqrt(),
        n=pl.len(),
    )
    row = {r["venue"]: r for r in by.iter_rows(named=True)}
    toxic, lit = row["ELPX"], row["XNAS"]
    assert toxic["n"] > 100
    assert toxic["m"] < -4.0
    gap = lit["m"] - toxic["m"]
    assert gap > 4.0 and gap > 4 * np.hypot(toxic["se"], lit["se"]), (toxic, lit)


def test_dark_pools_fill_at_the_mid(stats: SimulatedData) -> None:
    f = fills_with_quotes(stats).filter(pl.col("venue").is_in(["DKPA", "DKPB"]))
    assert f.height > 50
    assert (f["liquidity_flag"] == "MID").all()
    assert ((f["price"] - f["mid"]).abs() < 1e-9).all()


def test_price_improvement_ranks_like_the_truth(stats: SimulatedData) -> None:
    f = fills_with_quotes(stats).filter(pl.col("liquidity_flag") == "REMOVE")
    pi = f.with_columns(
        pi_bps=pl.when(pl.col("D") > 0)
        .then(pl.col("ask_px") - pl.col("price"))
        .otherwise(pl.col("price") - pl.col("bid_px"))
        / pl.col("mid")
        * 1e4
    )
    got = {
        r["venue"]: r["pi_bps"]
        for r in pi.group_by("venue").agg(pl.col("pi_bps").mean()).iter_rows(named=True)
    }
    true = {v: stats.truth["venues"][v]["pi_frac_mean"] for v in got}
    assert got["ELPX"] > got["IEXG"] > got["XNYS"]
    assert true["ELPX"] > true["IEXG"] > true["XNYS"]
    # The conditional truth of each venue is close to what its fills measured.
    for v, measured in got.items():
        expected = stats.truth["venues"][v]["realized"]["expected_price_improvement_bps_remove"]
        assert abs(measured - expected) < 0.5, (v, measured, expected)


def test_fees_follow_the_venue_schedules(stats: SimulatedData) -> None:
    f = stats.tables["executions"]
    per = f.group_by("venue", "liquidity_flag").agg(rate=(pl.col("fee") / pl.col("qty")).mean())
    rate = {(r["venue"], r["liquidity_flag"]): r["rate"] for r in per.iter_rows(named=True)}
    assert rate[("XNAS", "ADD")] < 0 < rate[("XNAS", "REMOVE")]  # maker-taker
    assert rate[("EDGA", "ADD")] > 0 > rate[("EDGA", "REMOVE")]  # inverted


def test_orders_complete_partially_fill_or_go_unfilled(stats: SimulatedData) -> None:
    filled = stats.tables["executions"].group_by("order_id").agg(pl.col("qty").sum())
    o = (
        stats.tables["orders"]
        .join(filled, on="order_id", how="left")
        .with_columns(rate=pl.col("qty").fill_null(0) / pl.col("order_qty"))
    )
    assert (o["rate"] == 0).sum() > 0
    assert ((o["rate"] > 0) & (o["rate"] < 1)).sum() > 0.05 * o.height
    assert (o["rate"] == 1).mean() > 0.6
    assert (o["rate"] <= 1).all()


def test_temporary_impact_displaces_the_mid_and_reverts() -> None:
    """With exaggerated temporary impact the mid drifts our way during an order and reverts
    after it: the mechanism the Almgren cost truth relies on."""
    cfg = SimulationConfig(
        days=1, symbols=6, orders_per_day=250, seed=3, impact=ImpactParams(eta=3.0)
    )
    data = simulate(cfg)
    q = data.tables["quotes"].with_columns(mid=(pl.col("bid_px") + pl.col("ask_px")) / 2).sort("ts")
    o = data.tables["orders"].join(
        data.truth_orders.select("order_id", "temp_impact_bps"), on="order_id"
    )
    o = o.filter(pl.col("temp_impact_bps") > 20).with_columns(
        D=pl.when(pl.col("side") == "BUY").then(1.0).otherwise(-1.0),
        after=pl.col("end_ts") + pl.duration(minutes=10),
    )
    for key, name in (("arrival_ts", "m0"), ("end_ts", "m1"), ("after", "m2")):
        o = o.sort(key).join_asof(
            q.select("symbol", pl.col("ts").alias(key), pl.col("mid").alias(name)),
            on=key,
            by="symbol",
            check_sortedness=False,
        )
    o = o.drop_nulls(["m0", "m1", "m2"]).filter(pl.col("after") < pl.col("after").max())
    move = o.select(
        during=(pl.col("D") * (pl.col("m1") - pl.col("m0")) / pl.col("m0") * 1e4).mean(),
        reversion=(pl.col("D") * (pl.col("m2") - pl.col("m1")) / pl.col("m1") * 1e4).mean(),
        impact=pl.col("temp_impact_bps").mean(),
    ).row(0, named=True)
    assert o.height > 30
    assert move["during"] > 0.4 * move["impact"], move
    assert move["reversion"] < -0.3 * move["impact"], move

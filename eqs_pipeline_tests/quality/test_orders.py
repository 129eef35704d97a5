"""Hand-computed order metrics of `quality.order_quality` (docs/METRICS.md).

The main scenario (symbol XYZ, t in seconds after 14:30 UTC), written for a BUY; the SELL case
mirrors every price around 100 (p -> 200 - p), which keeps M0 = 100 and so the arrival slippage,
implementation shortfall and opportunity cost, and changes only the denominators of the others.

    quotes  t=0    99.99 / 100.01   M = 100.00  <- arrival quote (ts == arrival_ts counts)
            t=20  100.01 / 100.03   M = 100.02
            t=40  100.13 / 100.15   M = 100.14  \\ same ts: last landed wins
            t=40  100.03 / 100.05   M = 100.04  /
            t=50  100.07 / 100.09   M = 100.08
            t=60  100.05 / 100.07   M = 100.06  <- M_end (end_ts = 60, at or before)
            t=360  99.97 /  99.99   M =  99.98  <- M at end + 300 s
    order   BUY 1000, arrival t=0, end_ts t=60
    fills   F1 t=10 300 @ 100.01 REMOVE fee  0.90   (prevailing M 100.00, A 100.01)
            F2 t=30 200 @ 100.02 ADD    fee -0.40   (prevailing M 100.02, A 100.03)
            F3 t=50 100 @ 100.05 REMOVE fee  0.30   (prevailing M 100.04, A 100.05; the t=50
                                                     quote is not prevailing at t=50)
    tape    t=-5 100 @ 99.00 (before arrival: out), t=0 500 @ 100.00 (= arrival: in),
            t=10 300 @ 100.01, t=30 200 @ 100.02, t=45 1000 @ 100.04,
            t=60 400 @ 100.05 (= end: in), t=61 1000 @ 101.00 (after end: out)
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from eqs_pipeline.core.settings import CostModelSettings, QualitySettings, ScoreSettings
from eqs_pipeline.quality.scoring import quality_grade
from eqs_pipeline_tests.quality.conftest import (
    DAY,
    at,
    fill,
    instrument,
    order,
    quote,
    row,
    run_orders,
    trade,
)


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-9)


def _scenario(side: str) -> tuple[list, list, list, list]:
    def px(p: float) -> float:
        return p if side == "BUY" else round(200.0 - p, 10)

    def q(t: float, bid: float, ask: float) -> dict:
        lo, hi = sorted((px(bid), px(ask)))
        return quote(t, lo, hi)

    quotes = [
        q(0, 99.99, 100.01),
        q(20, 100.01, 100.03),
        q(40, 100.13, 100.15),
        q(40, 100.03, 100.05),
        q(50, 100.07, 100.09),
        q(60, 100.05, 100.07),
        q(360, 99.97, 99.99),
    ]
    fills = [
        fill("F1", "O1", 10, 300, px(100.01), "REMOVE", 0.90, venue="XNAS"),
        fill("F2", "O1", 30, 200, px(100.02), "ADD", -0.40, venue="ARCX"),
        fill("F3", "O1", 50, 100, px(100.05), "REMOVE", 0.30, venue="XNAS"),
    ]
    trades = [
        trade(-5, px(99.00), 100),
        trade(0, px(100.00), 500),
        trade(10, px(100.01), 300),
        trade(30, px(100.02), 200),
        trade(45, px(100.04), 1000),
        trade(60, px(100.05), 400),
        trade(61, px(101.00), 1000),
    ]
    return [order("O1", side, 1000, 0, end=60)], fills, quotes, trades


# side -> expected figures worked out by hand (see the module docstring for the data)
SCENARIO_EXPECTED = {
    "BUY": {
        # notional 300*100.01 + 200*100.02 + 100*100.05 = 60012; avg_px = 60012 / 600 = 100.02
        "avg_px": 100.02,
        "notional": 60012.0,
        # VWAP = (500*100 + 300*100.01 + 200*100.02 + 1000*100.04 + 400*100.05) / 2400
        #      = 240067 / 2400 = 100.0279166667; slip = (100.02 - VWAP) / VWAP = -0.79144572 bps
        "interval_vwap": 240067 / 2400,
        "interval_vwap_slippage_bps": -0.7914457214034759,
        # TWAP = (100*20 + 100.02*20 + 100.04*10 + 100.08*10 + 100.06*0) / 60 = 100.0266667
        # (the t=40 M=100.14 quote is replaced at once: weight 0); slip = -0.66648894 bps
        "interval_twap": 6001.6 / 60,
        "interval_twap_slippage_bps": -0.6664889362844721,
        "end_mid": 100.06,
        # fees 0.8 / notional 60012 = 0.13330667 bps
        "fee_bps": 0.13330667199893356,
        # fill effective spreads 2.0, 0.0, 2*0.01/100.04 = 1.99920032 -> (600 + 199.92) / 600
        "effective_spread_bps": 1.3332000533120085,
        # fill PI 0.0, 0.01/100.02 = 0.99980004, 0.0 -> 200 * 0.9998 / 600
        "price_improvement_bps": 0.33326667999733395,
        # D (M_end - M_end+300) / M_end = (100.06 - 99.98) / 100.06 = 7.99520288 bps
        "reversion_300s_bps": 7.995202878272866,
        # fill captures D (M - P) / half spread: (100 - 100.01) / 0.01 = -1, (100.02 - 100.02)
        # / 0.01 = 0, (100.04 - 100.05) / 0.01 = -1 -> (300 * -1 + 0 + 100 * -1) / 600
        "spread_capture": -2 / 3,
    },
    "SELL": {
        # fills 99.99, 99.98, 99.95: notional 29997 + 19996 + 9995 = 59988; avg 99.98
        "avg_px": 99.98,
        "notional": 59988.0,
        # VWAP = 239933 / 2400 = 99.9720833; slip = -(99.98 - VWAP) / VWAP = -0.79188774 bps
        "interval_vwap": 239933 / 2400,
        "interval_vwap_slippage_bps": -0.7918877353268131,
        # TWAP = (100*20 + 99.98*20 + 99.96*10 + 99.92*10) / 60 = 99.9733333; slip -0.66684449
        "interval_twap": 99.97333333333334,
        "interval_twap_slippage_bps": -0.6668444918638907,
        "end_mid": 99.94,
        "fee_bps": 0.13336000533440023,
        # fill effective 2.0, 0.0, -2*(99.95 - 99.96)/99.96 = 2.00080032 -> (600 + 200.08) / 600
        "effective_spread_bps": 1.333466720021342,
        # fill PI (P - B)/M: 0.0, 0.01/99.98 = 1.00020004, 0.0 -> 200 * 1.0002 / 600
        "price_improvement_bps": 0.3334000133360005,
        # -(99.94 - 100.02) / 99.94 = 8.00480288 bps
        "reversion_300s_bps": 8.004802881728867,
        # mirrored: -(100 - 99.99) / 0.01 = -1, 0, -(99.96 - 99.95) / 0.01 = -1 -> -400 / 600
        "spread_capture": -2 / 3,
    },
}


@pytest.mark.parametrize("side", ["BUY", "SELL", "SELL_SHORT"])
def test_scenario_every_order_metric(side: str) -> None:
    r = row(run_orders(*_scenario(side)), "order_id", "O1")
    exp = SCENARIO_EXPECTED["BUY" if side == "BUY" else "SELL"]
    assert r["side_sign"] == (1 if side == "BUY" else -1)
    assert r["status"] == "partial"
    assert r["filled_qty"] == 600.0
    assert r["fill_count"] == 3
    assert r["venue_count"] == 2
    # 600 / 1000
    assert r["fill_rate"] == approx(0.6)
    assert r["avg_px"] == approx(exp["avg_px"])
    assert r["notional"] == approx(exp["notional"])
    # 0.90 - 0.40 + 0.30
    assert r["fees"] == approx(0.8)
    assert r["arrival_mid"] == approx(100.0)
    # (100.01 - 99.99) / 100 = 2 bps
    assert r["arrival_spread_bps"] == approx(2.0)
    # D (avg_px - M0) / M0 = 0.02 / 100 = 2 bps for both sides
    assert r["arrival_slippage_bps"] == approx(2.0)
    assert r["interval_vwap"] == approx(exp["interval_vwap"])
    assert r["interval_vwap_slippage_bps"] == approx(exp["interval_vwap_slippage_bps"])
    assert r["interval_twap"] == approx(exp["interval_twap"])
    assert r["interval_twap_slippage_bps"] == approx(exp["interval_twap_slippage_bps"])
    # 500 + 300 + 200 + 1000 + 400 = 2400 (both ends in); participation 600 / 2400
    assert r["market_volume"] == approx(2400.0)
    assert r["participation_rate"] == approx(0.25)
    assert r["end_mid"] == approx(exp["end_mid"])
    # Perold: [D sum q (p - M0) = 3 + 4 + 5 = 12] + [fees 0.8]
    #         + [D (1000 - 600)(M_end - M0) = 400 * 0.06 = 24]  = 36.8 / (1000 * 100) = 3.68 bps
    assert r["implementation_shortfall_bps"] == approx(3.68)
    # 24 / 100000 = 2.4 bps
    assert r["opportunity_cost_bps"] == approx(2.4)
    assert r["fee_bps"] == approx(exp["fee_bps"])
    # ADD 200 of 600
    assert r["pct_passive"] == approx(1 / 3)
    assert r["effective_spread_bps"] == approx(exp["effective_spread_bps"])
    assert r["price_improvement_bps"] == approx(exp["price_improvement_bps"])
    assert r["spread_capture"] == approx(exp["spread_capture"])
    assert r["time_to_first_fill_s"] == approx(10.0)
    assert r["duration_s"] == approx(60.0)
    assert r["order_end_ts"] == at(60)
    assert (r["first_fill_ts"], r["last_fill_ts"]) == (at(10), at(50))
    assert r["reversion_300s_bps"] == approx(exp["reversion_300s_bps"])
    assert r["null_reason"] is None


def test_scenario_score() -> None:
    """Expected cost (Almgren, defaults) for the BUY scenario, ADV 1e6, daily vol 2%:
    half spread 2/2 = 1; temporary 0.142 * 200 * 0.25^0.6 (= 0.43527528) = 12.36181800;
    permanent 0.5 * 0.314 * 200 * (1000 / 1e6) = 0.0314; E = 13.39321800 bps.
    cost = 1 / (1 + exp((3.68 - E) / E)) = 0.67375855; fill = 0.6; speed = exp(-10/60) = 0.84648172
    score = 100 * (0.6 * 0.67375855 + 0.25 * 0.6 + 0.15 * 0.84648172) / 1 = 68.12273899 -> good.
    """
    r = row(run_orders(*_scenario("BUY")), "order_id", "O1")
    assert r["adv_shares"] == 1e6
    assert r["size_pct_adv"] == approx(0.001)
    assert r["daily_volatility"] == approx(0.02)
    assert r["expected_cost_bps"] == approx(13.393217998804962)
    assert r["cost_vs_expected_bps"] == approx(3.68 - 13.393217998804962)
    assert r["quality_score"] == approx(68.12273899235423)
    assert r["quality_grade"] == "good"


# Symbol ABC: quotes t=0 49.99/50.01 (M 50), t=20 50.03/50.05 (M 50.04), t=100 50.00/50.02
# (M 50.01); tape t=0 100 @ 50.00, t=20 300 @ 50.02, t=20.000001 1000 @ 60 (after the end).
ABC_QUOTES = [
    quote(0, 49.99, 50.01, symbol="ABC"),
    quote(20, 50.03, 50.05, symbol="ABC"),
    quote(100, 50.00, 50.02, symbol="ABC"),
]
ABC_TAPE = [
    trade(0, 50.00, 100, symbol="ABC"),
    trade(20, 50.02, 300, symbol="ABC"),
    trade(20.000001, 60.0, 1000, symbol="ABC"),
]


def test_order_without_end_ts_ends_at_its_last_fill() -> None:
    """BUY 500 ABC, arrival t=0, no end_ts; fills t=5 200 @ 50.01, t=20 100 @ 50.02.

    The end is the last fill, t=20: M_end is at or before t=20, so the t=20 quote (50.04) counts
    for the order's end although it is not prevailing at the t=20 fill (that one sees M 50).
    avg = (10002 + 5002) / 300 = 50.0133333; arrival slip = 0.0133333 / 50 = 2.66666667 bps
    opportunity = 200 * (50.04 - 50) / (500 * 50) = 8 / 25000 = 3.2 bps
    IS = (200 * 0.01 + 100 * 0.02 + 0 + 8) / 25000 = 4.8 bps
    VWAP over [0, 20] = (5000 + 15006) / 400 = 50.015; slip = -0.33323336 bps; participation 0.75
    TWAP over [0, 20] = 50 (the t=20 quote prevails for 0 s); slip = 2.66666667 bps
    reversion: M at t=320 = 50.01 -> (50.04 - 50.01) / 50.04 = 5.99520384 bps
    """
    df = run_orders(
        [order("O3", "BUY", 500, 0, symbol="ABC")],
        [
            fill("F1", "O3", 5, 200, 50.01, symbol="ABC"),
            fill("F2", "O3", 20, 100, 50.02, symbol="ABC"),
        ],
        ABC_QUOTES,
        ABC_TAPE,
    )
    r = row(df, "order_id", "O3")
    assert r["end_ts"] is None
    assert r["order_end_ts"] == at(20)
    assert r["duration_s"] == approx(20.0)
    assert r["time_to_first_fill_s"] == approx(5.0)
    assert r["end_mid"] == approx(50.04)
    assert r["avg_px"] == approx(15004 / 300)
    assert r["arrival_slippage_bps"] == approx(2.6666666666670835)
    assert r["opportunity_cost_bps"] == approx(3.2)
    assert r["implementation_shortfall_bps"] == approx(4.8)
    assert r["market_volume"] == approx(400.0)
    assert r["interval_vwap"] == approx(50.015)
    assert r["interval_vwap_slippage_bps"] == approx(-0.3332333633240329)
    assert r["participation_rate"] == approx(0.75)
    assert r["interval_twap"] == approx(50.0)
    assert r["interval_twap_slippage_bps"] == approx(2.6666666666670835)
    assert r["reversion_300s_bps"] == approx(5.995203836930683)
    # fill F2 at t=20: prevailing M 50 -> effective 2 * 0.02 / 50 = 8 bps; F1 2*0.01/50 = 4
    # share-weighted (200 * 4 + 100 * 8) / 300 = 5.33333333
    assert r["effective_spread_bps"] == approx(16 / 3)
    assert r["pct_passive"] == approx(0.0)
    assert r["fees"] == 0.0
    assert r["fee_bps"] == approx(0.0)


@pytest.mark.parametrize(
    ("side", "opportunity"),
    [
        # D (S - 0)(M_end - M0) / (S M0) = +1 * 1000 * 0.04 / (1000 * 50) = 8 bps (a cost)
        ("BUY", 8.0),
        # the same move is a gain for a seller that did not sell: -8 bps
        ("SELL", -8.0),
        ("SELL_SHORT", -8.0),
    ],
)
def test_unfilled_order_with_end_ts_is_opportunity_cost_only(side: str, opportunity: float) -> None:
    df = run_orders([order("O4", side, 1000, 0, end=20, symbol="ABC")], [], ABC_QUOTES, ABC_TAPE)
    r = row(df, "order_id", "O4")
    assert r["status"] == "unfilled"
    assert r["fill_rate"] == 0.0
    assert r["filled_qty"] == 0.0
    assert r["fill_count"] == 0
    assert r["implementation_shortfall_bps"] == approx(opportunity)
    assert r["opportunity_cost_bps"] == approx(opportunity)
    assert r["duration_s"] == approx(20.0)
    # the interval [0, 20] has 400 shares of tape, none of them ours
    assert r["market_volume"] == approx(400.0)
    assert r["participation_rate"] == 0.0
    for col in (
        "avg_px",
        "arrival_slippage_bps",
        "interval_vwap_slippage_bps",
        "interval_twap_slippage_bps",
        "fee_bps",
        "pct_passive",
        "effective_spread_bps",
        "price_improvement_bps",
        "time_to_first_fill_s",
        "first_fill_ts",
    ):
        assert r[col] is None, col
    assert r["null_reason"] == "no_fills"
    # no fills: speed 0 and fill 0, the score is the cost part only
    assert r["quality_score"] <= 60.0


def test_unfilled_order_without_end_ts_has_null_cost() -> None:
    df = run_orders([order("O5", "BUY", 1000, 0, symbol="ABC")], [], ABC_QUOTES, ABC_TAPE)
    r = row(df, "order_id", "O5")
    assert r["status"] == "unfilled"
    assert r["fill_rate"] == 0.0
    assert r["order_end_ts"] is None
    for col in (
        "implementation_shortfall_bps",
        "opportunity_cost_bps",
        "duration_s",
        "market_volume",
        "participation_rate",
        "interval_vwap",
        "interval_twap",
        "end_mid",
        "reversion_300s_bps",
        "cost_vs_expected_bps",
    ):
        assert r[col] is None, col
    assert r["arrival_mid"] == approx(50.0)
    assert r["null_reason"] == "no_fills;no_end_time;not_graded"
    # no IS, so no cost part: not graded (fill 0 and speed 0 alone would have said poor)
    assert r["quality_score"] is None
    assert r["quality_grade"] is None


def test_order_with_no_arrival_quote() -> None:
    """BUY 100 NEW arrives at t=5; NEW's first quote is at t=10 (19.99/20.01, M 20).
    The fill at t=15 100 @ 20.01 has its quote (effective 2 * 0.01 / 20 = 10 bps) but every
    arrival-based figure is null; the tape-based VWAP is still known (20.01: slip 0).
    Without the cost part the order is not graded: fill rate and speed alone (100 * (0.25 * 1
    + 0.15 * exp(-10/60)) / 0.4 = 94.24) would call it excellent.
    """
    df = run_orders(
        [order("O6", "BUY", 100, 5, symbol="NEW")],
        [fill("F1", "O6", 15, 100, 20.01, symbol="NEW")],
        [quote(10, 19.99, 20.01, symbol="NEW")],
        [trade(15, 20.01, 100, symbol="NEW")],
    )
    r = row(df, "order_id", "O6")
    for col in (
        "arrival_bid",
        "arrival_ask",
        "arrival_mid",
        "arrival_spread_bps",
        "arrival_slippage_bps",
        "implementation_shortfall_bps",
        "opportunity_cost_bps",
        "interval_twap",
        "interval_twap_slippage_bps",
        "expected_cost_bps",
        "cost_vs_expected_bps",
    ):
        assert r[col] is None, col
    assert r["status"] == "filled"
    assert r["effective_spread_bps"] == approx(10.0)
    assert r["interval_vwap_slippage_bps"] == approx(0.0)
    assert r["participation_rate"] == approx(1.0)
    assert r["null_reason"] == "no_arrival_quote;not_graded"
    assert r["quality_score"] is None
    assert r["quality_grade"] is None


def test_a_symbol_without_quotes_or_tape_is_not_graded() -> None:
    """The main BUY scenario (XYZ) beside a symbol whose quotes and tape did not land (NOQ).

    NOQ's order (BUY 1000 over [0, 60], 400 filled at t=50) has no arrival quote, so no IS and
    no expected cost: it is not graded, and its null_reason says why. Fill rate and speed
    alone would have scored it 100 * (0.25 * 0.4 + 0.15 * exp(-50/60)) / 0.4 = 41.30
    ('average'). XYZ's order keeps its grade (68.12, 'good', see test_scenario_score).
    """
    orders, fills, quotes, trades = _scenario("BUY")
    orders = [*orders, order("O2", "BUY", 1000, 0, end=60, symbol="NOQ")]
    fills = [*fills, fill("F9", "O2", 50, 400, 20.01, symbol="NOQ")]
    df = run_orders(orders, fills, quotes, trades)

    noq = row(df, "order_id", "O2")
    assert noq["quality_score"] is None and noq["quality_grade"] is None
    assert noq["null_reason"] == "no_arrival_quote;no_tape_in_interval;not_graded"
    assert noq["fill_rate"] == approx(0.4) and noq["time_to_first_fill_s"] == approx(50.0)
    xyz = row(df, "order_id", "O1")
    assert xyz["quality_score"] == approx(68.12273899235423)
    assert xyz["quality_grade"] == "good"
    assert xyz["null_reason"] is None


def test_interval_with_no_tape() -> None:
    """BUY 1000 QQQ, arrival t=0, end_ts t=234, fully filled at t=10 @ 10.01; no tape at all.

    VWAP and participation are null (never zero); market volume is 0.
    IS = 1000 * 0.01 / (1000 * 10) = 10 bps. Expected cost: half spread 20/2 = 10; the
    participation falls back to size/ADV over the duration's share of the day:
    0.001 / (234 / 23400) = 0.1; temporary 0.142 * 200 (default vol) * 0.1^0.6 = 7.13375747;
    permanent 0.0314 -> E = 17.16515747; cost = 1 / (1 + exp((10 - E) / E)) = 0.60286679;
    score = 100 * (0.6 * 0.60286679 + 0.25 + 0.15 * exp(-10/60)) = 73.86923352 -> good.
    """
    df = run_orders(
        [order("O7", "BUY", 1000, 0, end=234, symbol="QQQ")],
        [fill("F1", "O7", 10, 1000, 10.01, symbol="QQQ")],
        [quote(0, 9.99, 10.01, symbol="QQQ")],
        [trade(5, 10.0, 100, symbol="ZZZ")],
        instruments=[instrument("QQQ", vol=None)],
    )
    r = row(df, "order_id", "O7")
    assert r["market_volume"] == 0.0
    assert r["interval_vwap"] is None
    assert r["interval_vwap_slippage_bps"] is None
    assert r["participation_rate"] is None
    assert r["null_reason"] == "no_tape_in_interval"
    assert r["implementation_shortfall_bps"] == approx(10.0)
    assert r["opportunity_cost_bps"] == approx(0.0)
    assert r["daily_volatility"] == approx(0.02)
    assert r["expected_cost_bps"] == approx(17.16515746548721)
    assert r["quality_score"] == approx(73.86923351751989)
    assert r["quality_grade"] == "good"


def test_unknown_instrument() -> None:
    df = run_orders(
        [order("O8", "BUY", 100, 0, symbol="ABC")],
        [fill("F1", "O8", 5, 100, 50.01, symbol="ABC")],
        ABC_QUOTES,
        ABC_TAPE,
        instruments=[instrument("OTHER")],
    )
    r = row(df, "order_id", "O8")
    assert r["adv_shares"] is None and r["size_pct_adv"] is None
    assert r["expected_cost_bps"] is None
    assert r["null_reason"] == "unknown_instrument;not_graded"
    # IS 100 * 0.01 / (100 * 50) = 2 bps is still known, but nothing to compare it with
    assert r["implementation_shortfall_bps"] == approx(2.0)
    assert r["quality_score"] is None and r["quality_grade"] is None


@pytest.mark.parametrize(
    ("qty", "status", "fill_rate", "opportunity"),
    [
        # exactly filled: no opportunity term
        (300.0, "filled", 1.0, 0.0),
        # overfilled by 60 (shares bought that were not asked for): D (300 - 360)(50.04 - 50)
        # / (300 * 50) = -2.4 / 15000 = -1.6 bps
        (360.0, "filled", 1.2, -1.6),
        (150.0, "partial", 0.5, 150 * 0.04 / (300 * 50) * 1e4),
    ],
)
def test_status_and_fill_rate(
    qty: float, status: str, fill_rate: float, opportunity: float
) -> None:
    half = qty / 2
    df = run_orders(
        [order("O9", "BUY", 300, 0, end=20, symbol="ABC")],
        [
            fill("F1", "O9", 5, half, 50.01, symbol="ABC"),
            fill("F2", "O9", 6, qty - half, 50.01, symbol="ABC"),
        ],
        ABC_QUOTES,
        ABC_TAPE,
    )
    r = row(df, "order_id", "O9")
    assert r["status"] == status
    assert r["fill_rate"] == approx(fill_rate)
    assert r["opportunity_cost_bps"] == approx(opportunity)
    # avg 50.01: executed D q (p - M0) = qty * 0.01
    assert r["implementation_shortfall_bps"] == approx(
        (qty * 0.01 + opportunity * 300 * 50 / 1e4) / (300 * 50) * 1e4
    )


def test_arrival_quote_ties_and_at_ts() -> None:
    """Two quotes land at the arrival instant: the later one is M0 (at or before arrival)."""
    quotes = [
        quote(-1, 49.0, 49.1, symbol="ABC"),
        quote(0, 49.5, 49.7, symbol="ABC"),
        quote(0, 49.99, 50.01, symbol="ABC"),
    ]
    df = run_orders([order("OA", "BUY", 100, 0, end=10, symbol="ABC")], [], quotes, ABC_TAPE)
    r = row(df, "order_id", "OA")
    assert (r["arrival_bid"], r["arrival_ask"]) == (49.99, 50.01)
    assert r["arrival_mid"] == approx(50.0)
    # TWAP over [0, 10] is the last landed t=0 mid for the whole interval
    assert r["interval_twap"] == approx(50.0)


def test_every_order_has_one_row() -> None:
    orders = [
        order("B", "BUY", 100, 0, symbol="ABC"),
        order("A", "SELL", 100, 0, end=5, symbol="ABC"),
        order("C", "BUY", 100, 0, symbol="ABC"),
    ]
    df = run_orders(orders, [fill("F1", "C", 1, 10, 50.0, symbol="ABC")], ABC_QUOTES, ABC_TAPE)
    assert df["order_id"].to_list() == ["A", "B", "C"]


def test_share_weighted_aggregate_skips_fills_without_a_quote() -> None:
    """Fills at t=-1 (no quote yet) and t=5 (M 50): the order's effective spread is the t=5
    fill's alone, 2 * 0.01 / 50 = 4 bps, not diluted by the unknown one."""
    df = run_orders(
        [order("OB", "BUY", 300, -2, end=10, symbol="ABC")],
        [
            fill("F1", "OB", -1, 200, 50.10, symbol="ABC"),
            fill("F2", "OB", 5, 100, 50.01, symbol="ABC"),
        ],
        ABC_QUOTES,
        ABC_TAPE,
    )
    r = row(df, "order_id", "OB")
    assert r["effective_spread_bps"] == approx(4.0)
    assert r["price_improvement_bps"] == approx(0.0)
    # (50 - 50.01) / 0.01 = -1, the t=5 fill's alone
    assert r["spread_capture"] == approx(-1.0)


def test_spread_capture_skips_fills_on_a_locked_quote() -> None:
    """BUY 400 ABC: F1 t=5 100 @ 49.99 at the bid (capture (50 - 49.99) / 0.01 = +1), F2 t=15
    300 @ 50.00 on the locked quote 50.00 / 50.00 of t=10 (no capture: no half spread). The
    order's capture is F1's, +1, not (100 * 1) / 400 = 0.25; an order with F2 alone has none,
    while its effective spread is known (0 bps)."""
    quotes = [*ABC_QUOTES[:1], quote(10, 50.00, 50.00, symbol="ABC"), *ABC_QUOTES[1:]]
    df = run_orders(
        [
            order("OL", "BUY", 400, 0, end=20, symbol="ABC"),
            order("OK", "BUY", 300, 0, symbol="ABC"),
        ],
        [
            fill("F1", "OL", 5, 100, 49.99, "ADD", symbol="ABC"),
            fill("F2", "OL", 15, 300, 50.00, symbol="ABC"),
            fill("F3", "OK", 15, 300, 50.00, symbol="ABC"),
        ],
        quotes,
        ABC_TAPE,
    )
    assert row(df, "order_id", "OL")["spread_capture"] == approx(1.0)
    locked = row(df, "order_id", "OK")
    assert locked["spread_capture"] is None
    assert locked["effective_spread_bps"] == approx(0.0)


def test_the_allocation_is_carried_from_the_order() -> None:
    df = run_orders(
        [
            order("W", "BUY", 100, 0, symbol="ABC", allocation="wheel", allocation_prob=0.4),
            order("D", "BUY", 100, 0, symbol="ABC", allocation="discretionary"),
            order("N", "BUY", 100, 0, symbol="ABC"),
        ],
        [],
        ABC_QUOTES,
        ABC_TAPE,
    )
    got = df.select("order_id", "allocation", "allocation_prob").rows()
    assert got == [("D", "discretionary", None), ("N", None, None), ("W", "wheel", 0.4)]


def test_order_whose_fills_all_lack_a_quote_has_null_spread_aggregates() -> None:
    """A quote lands exactly at the arrival instant t=0 (so M0 = 50 exists) and the only fill
    is at t=0 too: the fill has no quote strictly before it, so its effective spread is null
    and the order's share-weighted effective spread / price improvement must be null too
    (DESIGN: quote-based metrics are null, never zero; a NaN is neither)."""
    df = run_orders(
        [order("OC", "BUY", 100, 0, symbol="ABC")],
        [fill("F1", "OC", 0, 100, 50.01, symbol="ABC")],
        ABC_QUOTES,
        ABC_TAPE,
    )
    r = row(df, "order_id", "OC")
    assert r["arrival_mid"] == approx(50.0)
    assert r["effective_spread_bps"] is None
    assert r["price_improvement_bps"] is None
    assert r["spread_capture"] is None


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        (100.0, "excellent"),
        (80.0, "excellent"),
        (79.999, "good"),
        (60.0, "good"),
        (59.999, "average"),
        (40.0, "average"),
        (39.999, "poor"),
        (0.0, "poor"),
    ],
)
def test_grade_thresholds(score: float, grade: str) -> None:
    import polars as pl

    got = pl.DataFrame({"quality_score": [score]}).select(quality_grade(ScoreSettings()))
    assert got.item() == grade


def test_settings_are_honoured() -> None:
    """Zero cost weight, no fill weight: the score is the speed part only,
    100 * exp(-10 / 10) = 36.78794412 with speed_tau_s = 10; thresholds moved so it is 'good'."""
    settings = QualitySettings(
        score=ScoreSettings(w_cost=0.0, w_fill=0.0, w_speed=1.0, speed_tau_s=10.0, good=30.0),
        cost_model=CostModelSettings(eta=0.0, gamma=0.0),
        reversion_horizon_s=60,
    )
    r = row(run_orders(*_scenario("BUY"), settings=settings), "order_id", "O1")
    assert r["quality_score"] == approx(100 * math.exp(-1))
    assert r["quality_grade"] == "good"
    # eta = gamma = 0: the expected cost is the half spread, 1 bp
    assert r["expected_cost_bps"] == approx(1.0)
    # reversion at 60 s: M at t=120 is the t=60 quote itself -> 0
    assert r["reversion_60s_bps"] == approx(0.0)
    assert "reversion_300s_bps" not in r


def test_arrival_quote_of_the_previous_trade_date_does_not_serve() -> None:
    """A day-2 order arriving at 14:30:05, before day 2's first quote (14:30:10), has no arrival
    quote; day 1's last quote (ABC t=100, M 50.01) must not become its M0."""
    day2 = DAY + dt.timedelta(days=1)
    quotes = [*ABC_QUOTES, quote(10, 50.0, 50.02, symbol="ABC", ts=at(10, day2), trade_date=day2)]
    orders = [order("OD", "BUY", 100, 0, symbol="ABC", arrival_ts=at(5, day2), trade_date=day2)]
    r = row(run_orders(orders, [], quotes, ABC_TAPE), "order_id", "OD")
    assert r["arrival_mid"] is None
    assert "no_arrival_quote" in r["null_reason"]

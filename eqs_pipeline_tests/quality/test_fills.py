"""Hand-computed fill metrics of `quality.fill_quality` (docs/METRICS.md).

One quote tape serves most cases (symbol XYZ, t in seconds after 14:30 UTC):

    t=0    99.98 / 100.02   M = 100.00   <- prevailing at a fill at t=10 (strictly before)
    t=10  100.08 / 100.12   M = 100.10   <- same ts as the fill: NOT prevailing at the fill
    t=11  100.00 / 100.04   M = 100.02   <- M_1s of a fill at t=10 (at or before t+1)
    t=14  100.02 / 100.06   M = 100.04   <- M_5s (t+5 = 15)
    t=25  100.10 / 100.14   M = 100.12   \\ two quotes at t=25: the last landed wins,
    t=25  100.04 / 100.08   M = 100.06   /  so M_15s = 100.06
    t=69   99.96 / 100.00   M =  99.98   <- M_60s (t+60 = 70)
    t=100  99.90 /  99.94   M =  99.92   <- the session's last quote: M_300s (t+300 = 310)
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline_tests.quality.conftest import DAY, at, fill, order, quote, row, run_fills

QUOTES = [
    quote(0, 99.98, 100.02),
    quote(10, 100.08, 100.12),
    quote(11, 100.00, 100.04),
    quote(14, 100.02, 100.06),
    quote(25, 100.10, 100.14),
    quote(25, 100.04, 100.08),
    quote(69, 99.96, 100.00),
    quote(100, 99.90, 99.94),
]
HORIZONS = ("1s", "5s", "15s", "60s", "300s")
QUOTE_METRICS = (
    "quoted_spread_bps",
    "effective_spread_bps",
    "price_improvement_bps",
    "quote_position",
    "spread_capture",
    *[f"{m}_{h}_bps" for h in HORIZONS for m in ("realized_spread", "price_impact", "markout")],
)


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-9)


def one_fill(side: str, price: float, t: float = 10, fee: float | None = None, quotes=QUOTES):
    return row(
        run_fills([fill("E1", "O1", t, 100, price, fee=fee)], quotes, [order("O1", side, 100, 0)]),
        "exec_id",
        "E1",
    )


def test_buy_fill_every_metric() -> None:
    """BUY 100 @ 100.01 at t=10 against B=99.98, A=100.02, M=100.00 (the t=0 quote)."""
    r = one_fill("BUY", 100.01, fee=0.30)
    assert (r["nbb"], r["nbo"], r["mid"]) == (99.98, 100.02, 100.00)
    assert (r["nbb_size"], r["nbo_size"]) == (100.0, 200.0)
    assert r["side_sign"] == 1
    assert r["notional"] == approx(10_001.0)
    # (A - B) / M = 0.04 / 100 = 4 bps
    assert r["quoted_spread_bps"] == approx(4.0)
    # 2 D (P - M) / M = 2 * 0.01 / 100 = 2 bps
    assert r["effective_spread_bps"] == approx(2.0)
    # buy: (A - P) / M = 0.01 / 100 = 1 bp, > 0 -> improved
    assert r["price_improvement_bps"] == approx(1.0)
    assert r["quote_position"] == "improved"
    # D (M - P) / ((A - B) / 2) = (100 - 100.01) / 0.02 = -0.5
    assert r["spread_capture"] == approx(-0.5)
    # fee / notional = 0.30 / 10001 = 0.29997000... bps
    assert r["fee_bps"] == approx(0.30 / 10_001 * 1e4)
    assert r["fee_bps"] == approx(0.2999700029997)
    assert r["null_reason"] is None
    # M_h: 100.02, 100.04, 100.06 (last landed at t=25), 99.98, 99.92 (last quote of session)
    # realized 2D(P - M_h)/M, impact 2D(M_h - M)/M, markout D(M_h - P)/P, all in bps
    expected = {
        "1s": (100.02, -2.0, 4.0, 0.01 / 100.01 * 1e4),  # markout 0.99990001
        "5s": (100.04, -6.0, 8.0, 0.03 / 100.01 * 1e4),  # 2.99970003
        "15s": (100.06, -10.0, 12.0, 0.05 / 100.01 * 1e4),  # 4.99950005
        "60s": (99.98, 6.0, -4.0, -0.03 / 100.01 * 1e4),  # -2.99970003
        "300s": (99.92, 18.0, -16.0, -0.09 / 100.01 * 1e4),  # -8.99910009
    }
    for h, (m_h, realized, impact, markout) in expected.items():
        assert r[f"mid_{h}"] == approx(m_h), h
        assert r[f"realized_spread_{h}_bps"] == approx(realized), h
        assert r[f"price_impact_{h}_bps"] == approx(impact), h
        assert r[f"markout_{h}_bps"] == approx(markout), h
    assert r["markout_1s_bps"] == approx(0.9999000099990001)
    assert r["markout_300s_bps"] == approx(-8.999100089991)


@pytest.mark.parametrize("side", ["SELL", "SELL_SHORT"])
def test_sell_fill_every_metric(side: str) -> None:
    """SELL 100 @ 99.99 at t=10 against B=99.98, A=100.02, M=100.00; D = -1."""
    r = one_fill(side, 99.99, fee=-0.20)
    assert r["side_sign"] == -1
    assert r["quoted_spread_bps"] == approx(4.0)
    # 2 D (P - M) / M = -2 * (-0.01) / 100 = 2 bps (a cost, as for the buy)
    assert r["effective_spread_bps"] == approx(2.0)
    # sell: (P - B) / M = 0.01 / 100 = 1 bp
    assert r["price_improvement_bps"] == approx(1.0)
    assert r["quote_position"] == "improved"
    # D (M - P) / ((A - B) / 2) = -(0.01) / 0.02 = -0.5
    assert r["spread_capture"] == approx(-0.5)
    # a rebate: -0.20 / 9999 = -0.20002 bps
    assert r["fee_bps"] == approx(-0.20002000200020004)
    expected = {
        "1s": (6.0, -4.0, -0.03 / 99.99 * 1e4),  # markout -3.00030003
        "5s": (10.0, -8.0, -0.05 / 99.99 * 1e4),  # -5.00050005
        "15s": (14.0, -12.0, -0.07 / 99.99 * 1e4),  # -7.00070007
        "60s": (-2.0, 4.0, 0.01 / 99.99 * 1e4),  # 1.00010001
        "300s": (-14.0, 16.0, 0.07 / 99.99 * 1e4),  # 7.00070007
    }
    for h, (realized, impact, markout) in expected.items():
        assert r[f"realized_spread_{h}_bps"] == approx(realized), h
        assert r[f"price_impact_{h}_bps"] == approx(impact), h
        assert r[f"markout_{h}_bps"] == approx(markout), h


@pytest.mark.parametrize(
    ("side", "price", "pi_bps", "position", "effective", "capture"),
    [
        # buy at the ask 100.02: PI = 0, effective = 2 * 0.02 / 100 = 4 bps, capture -1
        ("BUY", 100.02, 0.0, "at_quote", 4.0, -1.0),
        # buy through the ask at 100.03: PI = -0.01 / 100 = -1 bp, effective 6, capture -1.5
        ("BUY", 100.03, -1.0, "outside", 6.0, -1.5),
        # passive buy at the bid 99.98: PI = 0.04 / 100 = 4 bps, effective -4, capture +1
        ("BUY", 99.98, 4.0, "improved", -4.0, 1.0),
        # buy at the mid: PI = 2 bps, effective 0, capture 0
        ("BUY", 100.00, 2.0, "improved", 0.0, 0.0),
        # sell at the bid 99.98: PI = 0, effective 4, capture -1
        ("SELL", 99.98, 0.0, "at_quote", 4.0, -1.0),
        # sell through the bid at 99.97: PI = -1 bp, effective 6, capture -1.5
        ("SELL_SHORT", 99.97, -1.0, "outside", 6.0, -1.5),
        # passive sell at the ask 100.02: PI = 4 bps, effective -4, capture +1
        ("SELL", 100.02, 4.0, "improved", -4.0, 1.0),
    ],
)
def test_quote_position(
    side: str, price: float, pi_bps: float, position: str, effective: float, capture: float
) -> None:
    r = one_fill(side, price)
    assert r["price_improvement_bps"] == approx(pi_bps)
    assert r["quote_position"] == position
    assert r["effective_spread_bps"] == approx(effective)
    assert r["spread_capture"] == approx(capture)


def test_quote_at_exec_ts_is_not_prevailing_but_counts_at_horizon() -> None:
    """A fill at t=11 sees the t=10 quote (M=100.10), not the t=11 one (M=100.02);
    its M_1s is at or before t=12, i.e. the t=11 quote... and its M_5s (t=16) is the t=14 quote.
    A fill at t=24 has M_1s at t=25: the last landed of the two t=25 quotes (100.06)."""
    df = run_fills(
        [fill("E1", "O1", 11, 100, 100.11), fill("E2", "O1", 24, 100, 100.05)],
        QUOTES,
        [order("O1", "BUY", 200, 0)],
    )
    e1, e2 = row(df, "exec_id", "E1"), row(df, "exec_id", "E2")
    assert (e1["nbb"], e1["nbo"], e1["mid"]) == (100.08, 100.12, pytest.approx(100.10))
    assert e1["quote_ts"].second == 10
    assert e1["mid_1s"] == approx(100.02)
    assert e1["mid_5s"] == approx(100.04)
    # E2 at t=24: prevailing is the t=14 quote; t+1 = 25 sees the last landed t=25 quote.
    assert e2["mid"] == approx(100.04)
    assert e2["mid_1s"] == approx(100.06)
    # effective 2 (100.05 - 100.04) / 100.04 = 1.99920032 bps
    assert e2["effective_spread_bps"] == approx(0.02 / 100.04 * 1e4)


def test_ties_at_the_prevailing_quote_last_landed_wins() -> None:
    """Three quotes at t=5 (landing order 1, 2, 3); a fill at t=6 sees the third."""
    quotes = [
        quote(0, 99.0, 101.0),
        quote(5, 99.50, 99.60),
        quote(5, 99.90, 100.10),
        quote(5, 99.97, 100.03),  # M = 100, spread 0.06 -> 6 bps
    ]
    r = one_fill("BUY", 100.03, t=6, quotes=quotes)
    assert (r["nbb"], r["nbo"]) == (99.97, 100.03)
    assert r["quoted_spread_bps"] == approx(6.0)
    assert r["quote_position"] == "at_quote"


def test_ties_landed_out_of_time_order() -> None:
    """Landing order, not any other order, breaks ties: a late-landed earlier quote does not
    override, and of the two t=5 quotes the one landed last wins even when an older quote
    landed between them."""
    quotes = [
        quote(5, 99.50, 99.60),
        quote(0, 99.0, 101.0),
        quote(5, 99.97, 100.03),
    ]
    r = one_fill("BUY", 100.00, t=6, quotes=quotes)
    assert (r["nbb"], r["nbo"]) == (99.97, 100.03)


def test_after_the_sessions_last_quote_horizons_use_it() -> None:
    """A fill at t=200 (after the last quote at t=100): every M_h is the last quote, 99.92."""
    r = one_fill("BUY", 99.94, t=200)
    for h in HORIZONS:
        assert r[f"mid_{h}"] == approx(99.92)
        # impact 0, realized = effective = 2 * 0.02 / 99.92 bps
        assert r[f"price_impact_{h}_bps"] == approx(0.0)
        assert r[f"realized_spread_{h}_bps"] == approx(0.04 / 99.92 * 1e4)


def test_fill_with_no_prior_quote_is_null_never_zero() -> None:
    """The first quote lands at the fill's own ts: nothing strictly before it.

    Every metric that needs the prevailing quote is null. Markouts need only the fill price and
    M_{t+h}, which exist (the t=0 quote is at or before t+1), so they are kept:
    markout_1s = (100.00 - 100.01) / 100.01 = -0.99990001 bps.
    """
    r = one_fill("BUY", 100.01, t=0, fee=0.1)
    needs_prevailing = [c for c in QUOTE_METRICS if not c.startswith("markout_")]
    for col in ("quote_ts", "nbb", "nbo", "mid", "nbb_size", "nbo_size", *needs_prevailing):
        assert r[col] is None, col
    assert r["null_reason"] == "no_prior_quote"
    assert r["mid_1s"] == approx(100.0)
    assert r["markout_1s_bps"] == approx(-0.01 / 100.01 * 1e4)
    # the fill's own figures stay
    assert r["fee_bps"] == approx(0.1 / 10_001 * 1e4)


def test_quotes_of_another_symbol_do_not_serve() -> None:
    quotes = [quote(0, 9.99, 10.01, symbol="ABC"), *QUOTES[1:]]
    r = one_fill("BUY", 100.01, t=5, quotes=quotes)
    assert r["mid"] is None
    assert r["null_reason"] == "no_prior_quote"


def test_locked_quote_gives_null_spread_capture() -> None:
    """B = A = 100: quoted spread 0, spread capture undefined (null, not inf or NaN)."""
    r = one_fill("BUY", 100.01, t=1, quotes=[quote(0, 100.0, 100.0)])
    assert r["quoted_spread_bps"] == 0.0
    assert r["spread_capture"] is None
    # effective 2 * 0.01 / 100 = 2 bps, PI (100 - 100.01) / 100 = -1 bp -> outside
    assert r["effective_spread_bps"] == approx(2.0)
    assert r["quote_position"] == "outside"


def test_missing_fee_gives_null_fee_bps() -> None:
    assert one_fill("BUY", 100.01, fee=None)["fee_bps"] is None


def test_order_attributes_are_carried() -> None:
    df = run_fills(
        [fill("E1", "O1", 10, 100, 100.0)],
        QUOTES,
        [order("O1", "SELL_SHORT", 100, 0, algo="TWAP", broker="B9", trader="T9", urgency="HIGH")],
    )
    r = row(df, "exec_id", "E1")
    assert (r["side"], r["algo"], r["broker"], r["trader"], r["urgency"]) == (
        "SELL_SHORT",
        "TWAP",
        "B9",
        "T9",
        "HIGH",
    )


def test_an_order_landed_twice_is_an_error_not_doubled_fills() -> None:
    twice = [order("O1", "BUY", 100, 0), order("O1", "BUY", 100, 0)]
    with pytest.raises(ValueError, match="order_id more than once"):
        run_fills([fill("E1", "O1", 10, 100, 100.0)], QUOTES, twice)


def test_one_row_per_exec_id_and_custom_horizons() -> None:
    settings = QualitySettings(horizons_s=(2, 30))
    df = run_fills(
        [fill("E1", "O1", 10, 100, 100.01), fill("E2", "O1", 10, 50, 100.02)],
        QUOTES,
        [order("O1", "BUY", 150, 0)],
        settings,
    )
    assert df["exec_id"].to_list() == ["E1", "E2"]
    assert "markout_2s_bps" in df.columns and "markout_30s_bps" in df.columns
    assert "markout_1s_bps" not in df.columns
    # t+2 = 12 -> the t=11 quote (100.02); t+30 = 40 -> the last landed t=25 quote (100.06)
    assert df["mid_2s"].to_list() == [approx(100.02)] * 2
    assert df["mid_30s"].to_list() == [approx(100.06)] * 2


def test_quote_metrics_never_nan() -> None:
    df = run_fills(
        [fill("E1", "O1", 0, 100, 100.0), fill("E2", "O1", 10, 100, 100.0)],
        QUOTES,
        [order("O1", "BUY", 200, 0)],
    )
    for col in QUOTE_METRICS:
        if df[col].dtype.is_float():
            assert not any(isinstance(v, float) and math.isnan(v) for v in df[col].to_list()), col


def test_quotes_of_the_previous_trade_date_do_not_serve() -> None:
    """Two trade dates in one call. DESIGN: "quotes and tape of that date serve them". A fill
    on day 2 at 14:30:05, before day 2's first quote (14:30:10), has no prior quote; the
    previous day's last quote (14:31:40 on day 1) must not be used."""
    day2 = DAY + dt.timedelta(days=1)
    quotes = [
        *QUOTES,
        quote(10, 50.0, 50.02, ts=at(10, day2), trade_date=day2),
    ]
    fills = [fill("E1", "O2", 5, 100, 50.01, exec_ts=at(5, day2), trade_date=day2)]
    orders = [order("O2", "BUY", 100, 0, arrival_ts=at(0, day2), trade_date=day2)]
    r = row(run_fills(fills, quotes, orders), "exec_id", "E1")
    assert r["mid"] is None
    assert r["null_reason"] == "no_prior_quote"

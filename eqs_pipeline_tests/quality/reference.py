"""An independent reference of the fill and order metrics, written from the conventions of docs/METRICS.md alone.

Plain Python over lists of row dicts (the rows the `conftest` builders take): no Polars, no
as-of joins, no cumulative sums; every look-up scans the quotes in landing order. It is slow
and obviously correct, which is the point: the randomized tests compare the engine with it.

Conventions (docs/METRICS.md):
- the quote prevailing at a fill is the last with ts strictly before exec_ts; at an arrival, at
  an order's end and at t + h, the last with ts at or before the instant; among equal ts the
  last landed wins; only quotes (and tape) of the row's own trade date and symbol serve it;
- D = +1 for BUY, -1 for SELL and SELL_SHORT;
- quote-based metrics are null (None) where their quote is missing, never zero.
Conventions the engine fixes where the metric definitions leave them open (docs/METRICS.md): markouts need only
M_{t+h} and P; a fill's fee_bps is null when its fee is; an order's fees sum the known fees;
pct_passive counts ADD fills; reversion is D (M_end - M_{end+h}) / M_end; the TWAP needs M0;
the quality score follows settings.ScoreSettings / CostModelSettings as documented there.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

from eqs_pipeline.core.settings import QualitySettings

Row = dict[str, Any]
BPS = 1e4


def sign(side: str) -> int:
    return 1 if side == "BUY" else -1


def prevailing(
    quotes: list[Row], symbol: str, trade_date: dt.date, t: dt.datetime, *, strict: bool
) -> Row | None:
    """The last quote of (symbol, trade_date) with ts < t (strict) or ts <= t; ties: last landed."""
    best: Row | None = None
    for q in quotes:
        if q["symbol"] != symbol or q["trade_date"] != trade_date:
            continue
        before = q["ts"] < t if strict else q["ts"] <= t
        if before and (best is None or q["ts"] >= best["ts"]):
            best = q
    return best


def mid_of(q: Row | None) -> float | None:
    return None if q is None else (q["bid_px"] + q["ask_px"]) / 2


def ref_fill(e: Row, side: str, quotes: list[Row], settings: QualitySettings) -> Row:
    """Every fill metric of one execution."""
    d = sign(side)
    p = e["price"]
    q = prevailing(quotes, e["symbol"], e["trade_date"], e["exec_ts"], strict=True)
    out: Row = {
        "side_sign": d,
        "notional": e["qty"] * p,
        "fee_bps": None if e["fee"] is None else e["fee"] / (e["qty"] * p) * BPS,
        "null_reason": "no_prior_quote" if q is None else None,
        "quote_ts": None if q is None else q["ts"],
        "nbb": None if q is None else q["bid_px"],
        "nbo": None if q is None else q["ask_px"],
        "nbb_size": None if q is None else q["bid_sz"],
        "nbo_size": None if q is None else q["ask_sz"],
        "mid": mid_of(q),
    }
    m = out["mid"]
    for col in ("quoted_spread_bps", "effective_spread_bps", "price_improvement_bps"):
        out[col] = None
    out["quote_position"] = None
    out["spread_capture"] = None
    if q is not None:
        b, a = q["bid_px"], q["ask_px"]
        out["quoted_spread_bps"] = (a - b) / m * BPS
        out["effective_spread_bps"] = 2 * d * (p - m) / m * BPS
        pi = ((a - p) if d == 1 else (p - b)) / m * BPS
        out["price_improvement_bps"] = pi
        out["quote_position"] = "improved" if pi > 0 else "at_quote" if pi == 0 else "outside"
        out["spread_capture"] = None if a == b else d * (m - p) / ((a - b) / 2)
    for h in settings.horizons_s:
        lab = f"{h}s"
        t_h = e["exec_ts"] + dt.timedelta(seconds=h)
        m_h = mid_of(prevailing(quotes, e["symbol"], e["trade_date"], t_h, strict=False))
        out[f"mid_{lab}"] = m_h
        both = m is not None and m_h is not None
        out[f"realized_spread_{lab}_bps"] = 2 * d * (p - m_h) / m * BPS if both else None
        out[f"price_impact_{lab}_bps"] = 2 * d * (m_h - m) / m * BPS if both else None
        out[f"markout_{lab}_bps"] = d * (m_h - p) / p * BPS if m_h is not None else None
    return out


def ref_fill_quality(
    executions: list[Row], quotes: list[Row], orders: list[Row], settings: QualitySettings
) -> dict[str, Row]:
    side = {o["order_id"]: o["side"] for o in orders}
    return {e["exec_id"]: ref_fill(e, side[e["order_id"]], quotes, settings) for e in executions}


def _twap(quotes: list[Row], o: Row, start: dt.datetime, end: dt.datetime) -> float | None:
    """Time average over [start, end] of the prevailing (at or before) mid.

    The mid is a step function: it changes at each distinct quote ts inside the interval, to
    the mid of the last quote landed at that ts, and starts at the arrival's prevailing mid.
    """
    sym, day = o["symbol"], o["trade_date"]
    m0 = mid_of(prevailing(quotes, sym, day, start, strict=False))
    if m0 is None or end < start:
        return None
    if end == start:
        return m0
    last_landed_at: dict[dt.datetime, Row] = {}
    for q in quotes:
        if q["symbol"] == sym and q["trade_date"] == day and start < q["ts"] < end:
            last_landed_at[q["ts"]] = q
    changes = sorted(last_landed_at)
    times = [start, *changes, end]
    mids = [m0, *[mid_of(last_landed_at[t]) for t in changes]]
    area = 0.0
    for (t0, t1), m in zip(itertools.pairwise(times), mids, strict=True):
        area += m * (t1 - t0).total_seconds()
    return area / (end - start).total_seconds()


def ref_order(
    o: Row,
    fills: list[Row],
    fill_rows: dict[str, Row],
    quotes: list[Row],
    trades: list[Row],
    instruments: dict[str, Row],
    settings: QualitySettings,
) -> Row:
    """Every order metric of one order, from its fills and the day's quotes and tape."""
    d = sign(o["side"])
    s = o["order_qty"]
    sym, day, arrival = o["symbol"], o["trade_date"], o["arrival_ts"]
    filled = sum(f["qty"] for f in fills)
    notional = sum(f["qty"] * f["price"] for f in fills)
    fees = sum(f["fee"] for f in fills if f["fee"] is not None)
    has_fills = filled > 0
    first = min((f["exec_ts"] for f in fills), default=None)
    last = max((f["exec_ts"] for f in fills), default=None)
    end = o["end_ts"] if o["end_ts"] is not None else last

    q0 = prevailing(quotes, sym, day, arrival, strict=False)
    m0 = mid_of(q0)
    m_end = None if end is None else mid_of(prevailing(quotes, sym, day, end, strict=False))
    avg = notional / filled if has_fills else None

    volume = pv = 0.0
    if end is not None:
        for t in trades:
            if t["symbol"] == sym and t["trade_date"] == day and arrival <= t["ts"] <= end:
                volume += t["size"]
                pv += t["price"] * t["size"]
    vwap = pv / volume if end is not None and volume > 0 else None
    twap = None if end is None else _twap(quotes, o, arrival, end)

    def slip(bench: float | None) -> float | None:
        return None if avg is None or bench is None else d * (avg - bench) / bench * BPS

    def weighted(metric: str) -> float | None:
        known = [(fill_rows[f["exec_id"]][metric], f["qty"]) for f in fills]
        known = [(v, q) for v, q in known if v is not None]
        if not known:
            return None
        return sum(v * q for v, q in known) / sum(q for _, q in known)

    cost_known = m0 is not None and m_end is not None
    out: Row = {
        "side_sign": d,
        "filled_qty": filled,
        "fill_count": len(fills),
        "venue_count": len({f["venue"] for f in fills}),
        "notional": notional if fills else None,
        "fees": fees,
        "first_fill_ts": first,
        "last_fill_ts": last,
        "order_end_ts": end,
        "fill_rate": filled / s,
        "avg_px": avg,
        "arrival_bid": None if q0 is None else q0["bid_px"],
        "arrival_ask": None if q0 is None else q0["ask_px"],
        "arrival_mid": m0,
        "arrival_spread_bps": None if q0 is None else (q0["ask_px"] - q0["bid_px"]) / m0 * BPS,
        "end_mid": m_end,
        "interval_vwap": vwap,
        "interval_twap": twap,
        "market_volume": volume if end is not None else None,
        "arrival_slippage_bps": slip(m0),
        "interval_vwap_slippage_bps": slip(vwap),
        "interval_twap_slippage_bps": slip(twap),
        "participation_rate": filled / volume if end is not None and volume > 0 else None,
        "implementation_shortfall_bps": (
            (d * (notional - filled * m0) + fees + d * (s - filled) * (m_end - m0)) / (s * m0) * BPS
            if cost_known
            else None
        ),
        "opportunity_cost_bps": (
            d * (s - filled) * (m_end - m0) / (s * m0) * BPS if cost_known else None
        ),
        "fee_bps": fees / notional * BPS if has_fills else None,
        "pct_passive": (
            sum(f["qty"] for f in fills if f["liquidity_flag"] == "ADD") / filled
            if has_fills
            else None
        ),
        "effective_spread_bps": weighted("effective_spread_bps"),
        "price_improvement_bps": weighted("price_improvement_bps"),
        "spread_capture": weighted("spread_capture"),
        "time_to_first_fill_s": None if first is None else (first - arrival).total_seconds(),
        "duration_s": None if end is None else (end - arrival).total_seconds(),
        "status": (
            "unfilled" if filled <= 0 else "filled" if filled >= s * (1 - 1e-9) else "partial"
        ),
    }
    h = settings.reversion_horizon_s
    m_after = (
        None
        if end is None
        else mid_of(prevailing(quotes, sym, day, end + dt.timedelta(seconds=h), strict=False))
    )
    out[f"reversion_{h}s_bps"] = (
        d * (m_end - m_after) / m_end * BPS if m_end is not None and m_after is not None else None
    )
    inst = instruments.get(sym)
    out["adv_shares"] = None if inst is None else inst["adv_shares"]
    out["size_pct_adv"] = None if inst is None else s / inst["adv_shares"]
    vol = None if inst is None else inst["daily_volatility"]
    out["daily_volatility"] = settings.cost_model.default_daily_volatility if vol is None else vol
    out.update(_score(out, settings))
    reasons = [
        ("no_arrival_quote", m0 is None),
        ("no_fills", not has_fills),
        ("no_end_time", end is None),
        ("no_tape_in_interval", end is not None and volume <= 0),
        ("unknown_instrument", inst is None),
        ("not_graded", out["quality_score"] is None),
    ]
    out["null_reason"] = ";".join(name for name, why in reasons if why) or None
    return out


def _score(r: Row, settings: QualitySettings) -> Row:
    """Expected cost (settings.CostModelSettings) and quality score (settings.ScoreSettings);
    no score and no grade when the cost part is unknown."""
    cm, sc = settings.cost_model, settings.score
    expected = None
    if r["arrival_spread_bps"] is not None and r["size_pct_adv"] is not None:
        sigma = r["daily_volatility"] * BPS
        part = r["participation_rate"]
        if part is None:
            frac = max(r["duration_s"] or 0.0, cm.min_duration_s) / cm.session_seconds
            part = r["size_pct_adv"] / frac
        part = min(max(part, 0.0), 1.0)
        expected = (
            r["arrival_spread_bps"] / 2
            + cm.eta * sigma * part**cm.beta
            + 0.5 * cm.gamma * sigma * r["size_pct_adv"]
        )
    is_bps = r["implementation_shortfall_bps"]
    cost = None
    if expected is not None and is_bps is not None:
        z = (is_bps - expected) / max(abs(expected), sc.cost_scale_floor_bps)
        cost = 0.0 if z > 700 else 1.0 / (1.0 + math.exp(z))
    fill = min(max(r["fill_rate"], 0.0), 1.0)
    speed = math.exp(-r["time_to_first_fill_s"] / sc.speed_tau_s) if r["filled_qty"] > 0 else 0.0
    score = grade = None
    if cost is not None:
        total = (sc.w_cost * cost + sc.w_fill * fill + sc.w_speed * speed) / (
            sc.w_cost + sc.w_fill + sc.w_speed
        )
        score = min(max(100.0 * total, 0.0), 100.0)
        grade = (
            "excellent"
            if score >= sc.excellent
            else "good"
            if score >= sc.good
            else "average"
            if score >= sc.average
            else "poor"
        )
    return {
        "expected_cost_bps": expected,
        "cost_vs_expected_bps": None if expected is None or is_bps is None else is_bps - expected,
        "quality_score": score,
        "quality_grade": grade,
    }


def ref_order_quality(
    orders: list[Row],
    executions: list[Row],
    quotes: list[Row],
    trades: list[Row],
    instruments: list[Row],
    settings: QualitySettings,
) -> dict[str, Row]:
    fill_rows = ref_fill_quality(executions, quotes, orders, settings)
    inst = {i["symbol"]: i for i in instruments}
    return {
        o["order_id"]: ref_order(
            o,
            [e for e in executions if e["order_id"] == o["order_id"]],
            fill_rows,
            quotes,
            trades,
            inst,
            settings,
        )
        for o in orders
    }


def same(expected: Any, got: Any) -> bool:
    """A reference value and the engine's agree: both null, floats to 1e-9 (never NaN), else
    equal."""
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(expected, float) or isinstance(got, float):
        if isinstance(got, float) and math.isnan(got):
            return False
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9)
    return expected == got


def mismatches(expected: dict[str, Row], got: list[Row], key: str) -> list[tuple]:
    """(key, column, expected, got) of every reference value the engine's rows (`got`, as
    dicts) do not match; the keys must be the same."""
    rows = {r[key]: r for r in got}
    assert set(rows) == set(expected), f"{key}s differ"
    bad = []
    for k, exp in expected.items():
        for col, v in exp.items():
            g = rows[k][col]
            if not same(v, g):
                bad.append((k, col, v, g))
    return bad

"""Parent orders, their child orders and which children fill: the price-free half of a day.

Everything here is vectorized over all orders of a day. Times are float seconds since the
open. Prices come later (`market.py`), from the quotes that this day's impact shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .algos import assign
from .config import SimulationConfig
from .curves import SESSION_S, segment_cumsum, segment_starts, volume_cdf, volume_cdf_inv
from .universe import Universe

ALGO_P = np.array([0.34, 0.16, 0.15, 0.20, 0.15])  # VWAP TWAP POV IS DARK
URGENCY_P = np.array(
    [[0.3, 0.5, 0.2], [0.35, 0.5, 0.15], [0.3, 0.45, 0.25], [0.15, 0.45, 0.4], [0.6, 0.35, 0.05]]
)
# Child style mix (passive, marketable, midpoint) per algo; urgency shifts passive <-> marketable.
STYLE_P = np.array(
    [[0.5, 0.25, 0.25], [0.5, 0.25, 0.25], [0.4, 0.4, 0.2], [0.3, 0.55, 0.15], [0.05, 0.1, 0.85]]
)
URGENCY_SHIFT = np.array([0.1, 0.0, -0.15])
COMPLETE_P = np.array([0.93, 0.93, 0.8, 0.97, 0.45])
IS_FRONT_K = np.array([1.5, 3.0, 6.0])


@dataclass
class DayFlow:
    """One day's orders, children and fills (fills not yet priced), as aligned numpy arrays.

    orders: symbol (index into the universe), side, sign (+1 buy, -1 sell), qty, algo,
        urgency, allocation (index into contract.ALLOCATIONS, -1 none) and allocation_prob
        (NaN none), arrival / end / decision (s since the open), target, trader, broker, account,
        is_limit, limit_offset (of the limit price, in volatility units), cancelled, complete,
        impact_mult, pct_adv, day_volume.
    children: order (index of the parent), sent / end (s), qty, style (of `STYLES`), venue,
        order_type (0 LIMIT, 1 MARKET, 2 MIDPEG), ioc, cleanup.
    fills: child (index of the child order), time (s), qty.
    """

    orders: dict[str, np.ndarray]
    children: dict[str, np.ndarray]
    fills: dict[str, np.ndarray]


def _pick(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw from cumulative probabilities (rows of `cum`)."""
    u = rng.random(cum.shape[0])
    return np.minimum((u[:, None] > cum).sum(axis=1), cum.shape[1] - 1)


def _split_lots(rng, total: np.ndarray, group_of_part: np.ndarray, lot: float = 100.0):
    """Split each group's `total` (multiple of lot) into random lot-sized parts summing to it.

    `group_of_part` is sorted; parts may come out zero (the caller drops them).
    """
    if group_of_part.size == 0:
        return np.zeros(0)
    w = np.exp(rng.normal(0.0, 0.35, group_of_part.size))
    cumw = segment_cumsum(w, group_of_part)
    last = np.concatenate([group_of_part[1:] != group_of_part[:-1], [True]])
    group_total = np.ones(int(group_of_part.max()) + 1)
    group_total[group_of_part[last]] = cumw[last]
    frac = cumw / group_total[group_of_part]
    cum_q = np.round(total[group_of_part] * frac / lot) * lot
    cum_q[last] = total[group_of_part[last]]
    starts = segment_starts(group_of_part)
    prev = np.where(np.arange(cum_q.size) > starts, np.concatenate([[0.0], cum_q[:-1]]), 0.0)
    return cum_q - prev


def make_orders(cfg, uni: Universe, rng, volume_factor: np.ndarray) -> dict[str, np.ndarray]:
    """Parent orders: symbol, side, size (% of ADV), algo, urgency, timing, desk, latent impact."""
    n = cfg.orders_per_day
    sym = rng.choice(uni.symbols.size, size=n, p=uni.order_weight)
    side = np.minimum((rng.random(n)[:, None] > np.array([0.5, 0.9])).sum(axis=1), 2)
    d = np.where(side == 0, 1.0, -1.0)
    algo = _pick(rng, np.tile(np.cumsum(ALGO_P), (n, 1)))
    urg = _pick(rng, np.cumsum(URGENCY_P, axis=1)[algo])
    pct_adv = np.clip(np.exp(rng.normal(np.log(0.003), 1.3, n)), 2e-5, 0.3)
    adv = uni.adv[sym]
    qty = np.maximum(np.round(pct_adv * adv / 100.0) * 100.0, 100.0)
    # Index into contract.ALLOCATIONS (0 wheel, 1 discretionary); -1: the desk does not say.
    allocation = np.full(n, -1, np.int64)
    allocation_prob = np.full(n, np.nan)
    if cfg.algos is not None:
        # The algo by the order's size, or the wheel's (`algos.py`), and an urgency to go with
        # it. Only in this mode: the default draws nothing more, so its files stay the same.
        alloc = assign(cfg.algos, rng, qty / adv)
        algo = alloc.algo
        urg = _pick(rng, np.cumsum(URGENCY_P, axis=1)[algo])
        allocation = np.where(alloc.wheel, 0, 1)
        allocation_prob = alloc.prob
    arrival = (rng.beta(1.3, 2.0, n) * 0.93 + 0.003) * SESSION_S
    urg_f = np.array([1.8, 1.0, 0.45])[urg]
    base_dur = np.array([5400.0, 3600.0, 0.0, 1200.0, 7200.0])[algo] * urg_f
    base_dur = np.where(algo == 3, 1200.0 * np.array([2.5, 1.0, 0.35])[urg], base_dur)
    dur = base_dur * np.exp(rng.normal(0.0, 0.5, n))
    to_close = ((algo == 0) & (rng.random(n) < 0.35)) | ((algo == 4) & (rng.random(n) < 0.6))
    dur = np.where(to_close, SESSION_S, dur)
    lo = np.array([0.03, 0.08, 0.15])[urg]
    hi = np.array([0.08, 0.15, 0.30])[urg]
    pov_target = np.round(rng.uniform(lo, hi), 2)
    day_volume = adv * volume_factor[sym]
    tau_a = arrival / SESSION_S
    pov_end = volume_cdf_inv(np.minimum(volume_cdf(tau_a) + qty / (pov_target * day_volume), 1.0))
    dur = np.where(algo == 2, pov_end * SESSION_S - arrival, dur)
    end = np.minimum(arrival + np.maximum(dur, 60.0), SESSION_S - 1.0)
    target = np.where(
        algo == 2, pov_target, np.where(algo == 3, np.array([0.05, 0.1, 0.2])[urg], np.nan)
    )
    trader = rng.integers(0, uni.traders.size, n)
    broker = np.where(
        rng.random(n) < 0.7, uni.trader_broker[trader], rng.integers(0, uni.brokers.size, n)
    )
    is_limit = rng.random(n) < cfg.limit_order_share
    cancelled = rng.random(n) < cfg.cancel_share
    quick = rng.random(n) < 0.35
    cancel_t = arrival + np.where(
        quick, rng.uniform(0.5, 3.0, n), rng.uniform(0.1, 0.6, n) * (end - arrival)
    )
    end = np.where(cancelled, np.minimum(cancel_t, end), end)
    return {
        "symbol": sym,
        "side": side,
        "sign": d,
        "qty": qty,
        "algo": algo,
        "urgency": urg,
        "allocation": allocation,
        "allocation_prob": allocation_prob,
        "arrival": arrival,
        "end": end,
        "decision": arrival - rng.exponential(90.0, n) - 1.0,
        "target": target,
        "trader": trader,
        "broker": broker,
        "account": rng.integers(0, uni.accounts.size, n),
        "is_limit": is_limit,
        # With designed costs every order is to fill (`costs.py`): limits sit 1.5-3 sigma
        # away, where the price seldom reaches them.
        "limit_offset": rng.uniform(-0.3, 1.0, n)
        if cfg.costs is None
        else rng.uniform(1.5, 3.0, n),
        "cancelled": cancelled,
        # Designed costs need orders that fill (`costs.py`): there, every uncancelled order
        # is meant to complete.
        "complete": ((rng.random(n) < COMPLETE_P[algo]) | (cfg.costs is not None)) & ~cancelled,
        "impact_mult": np.exp(uni.broker_skill[broker] + uni.trader_skill[trader]),
        "pct_adv": qty / adv,
        "day_volume": day_volume,
    }


def _schedule(algo, urg, u, arrival, end):
    """Child send times: each algo's own cumulative schedule, inverted at quantiles u."""
    tau_a, tau_e = arrival / SESSION_S, end / SESSION_S
    ca, ce = volume_cdf(tau_a), volume_cdf(tau_e)
    vol_t = volume_cdf_inv(ca + u * (ce - ca)) * SESSION_S
    k = IS_FRONT_K[urg]
    front = -np.log1p(-u * (1.0 - np.exp(-k))) / k
    lin = arrival + u * (end - arrival)
    is_t = arrival + front * (end - arrival)
    return np.select([(algo == 0) | (algo == 2), algo == 3], [vol_t, is_t], lin)


def _route_tables(cfg: SimulationConfig, uni: Universe) -> np.ndarray:
    """Cumulative routing probabilities [broker, style, venue]."""
    nv = len(cfg.venues)
    w = np.zeros((uni.brokers.size, 3, nv))
    for j, v in enumerate(cfg.venues):
        for s in range(3):
            if s in v.styles:
                w[:, s, j] = v.route_weight[s] * np.where(
                    v.kappa_bps >= 5.0, uni.broker_toxic_tilt, 1.0
                )
    total = w.sum(axis=2, keepdims=True)  # 0 for a style this routing never sends
    return np.cumsum(w / np.where(total > 0, total, 1.0), axis=2)


def make_day_flow(cfg: SimulationConfig, uni: Universe, rng, volume_factor) -> DayFlow:
    """Orders, their children (schedule, routing, order type) and the fills (qty, time)."""
    o = make_orders(cfg, uni, rng, volume_factor)
    n = o["qty"].size
    adv = uni.adv[o["symbol"]]
    child_size = np.clip(cfg.child_median_shares * (adv / 1.5e6) ** 0.25, 100.0, 5000.0)
    child_size *= np.where(o["algo"] == 4, 3.0, 1.0)
    span = o["end"] - o["arrival"]
    max_c = np.minimum(cfg.max_children_per_order, np.floor(span / 10.0) + 1)
    n_c = np.clip(np.ceil(o["qty"] / child_size), 1, max_c).astype(np.int64)
    n_c = np.minimum(n_c, (o["qty"] / 100.0).astype(np.int64))
    oi = np.repeat(np.arange(n), n_c)
    k = np.arange(oi.size) - np.repeat(np.cumsum(n_c) - n_c, n_c)
    u = (k + rng.uniform(0.05, 0.95, oi.size)) / n_c[oi]
    sent = _schedule(o["algo"][oi], o["urgency"][oi], u, o["arrival"][oi], o["end"][oi])
    sent = np.maximum(sent, o["arrival"][oi] + 0.05)
    cqty = _split_lots(rng, o["qty"], oi)
    keep = (cqty > 0) & (sent < o["end"][oi] - 0.5)
    oi, sent, cqty = oi[keep], sent[keep], cqty[keep]
    m = oi.size
    # Style, venue, order type, time in force.
    algo, urg = o["algo"][oi], o["urgency"][oi]
    sp = STYLE_P[algo].copy()
    sp[:, 0] += URGENCY_SHIFT[urg]
    sp[:, 1] -= URGENCY_SHIFT[urg]
    sp = np.clip(sp, 0.02, None)
    sp[:, [s for s in range(3) if s not in cfg.styles()]] = 0.0
    style = _pick(rng, np.cumsum(sp / sp.sum(axis=1, keepdims=True), axis=1))
    route = _route_tables(cfg, uni)
    venue = _pick(rng, route[o["broker"][oi], style])
    ctype = np.where(style == 0, 0, np.where(style == 2, 2, np.where(rng.random(m) < 0.3, 1, 0)))
    ctype = np.where(o["is_limit"][oi] & (ctype == 1), 0, ctype)  # 0 LIMIT 1 MARKET 2 MIDPEG
    ioc = (style == 1) | ((style == 2) & (rng.random(m) < 0.25))
    same_next = np.concatenate([oi[1:] == oi[:-1], [False]])
    next_sent = np.where(same_next, np.concatenate([sent[1:], [0.0]]), o["end"][oi])
    window_end = np.where(ioc, sent, np.maximum(np.minimum(next_sent, o["end"][oi]), sent + 1.0))
    window_end = np.minimum(window_end, SESSION_S - 0.5)
    c = {"order": oi, "sent": sent, "qty": cqty, "style": style, "venue": venue, "order_type": ctype,
         "ioc": ioc, "end": np.where(ioc, np.nan, window_end), "cleanup": np.zeros(m, bool)}  # fmt: skip
    f_ci, f_t, f_q = _fills(cfg, rng, c, window_end)
    # Clean-up: the unfilled rest of a child is re-sent marketable to a lit venue when the
    # order is to complete.
    filled = np.bincount(f_ci, weights=f_q, minlength=m)
    rest = cqty - filled
    cl_sent = np.where(ioc, sent + 0.002, window_end) + rng.uniform(0.001, 0.05, m)
    cl_sent = np.minimum(cl_sent, o["end"][oi] - rng.uniform(0.5, 3.0, m))
    todo = (rest > 0) & o["complete"][oi] & (cl_sent > sent + 0.001)
    lit_w = np.array([v.route_weight[1] if v.kind == "lit" else 0.0 for v in cfg.venues])
    t_idx = np.flatnonzero(todo)
    mc = t_idx.size
    cl_venue = rng.choice(len(cfg.venues), size=mc, p=lit_w / lit_w.sum())
    lat = _latency(cfg, rng, cl_venue)
    cl = {"order": oi[t_idx], "sent": cl_sent[t_idx], "qty": rest[t_idx], "style": np.ones(mc, np.int64),
          "venue": cl_venue, "order_type": np.zeros(mc, np.int64), "ioc": np.ones(mc, bool),
          "end": np.full(mc, np.nan), "cleanup": np.ones(mc, bool)}  # fmt: skip
    children = {key: np.concatenate([c[key], cl[key]]) for key in c}
    f_ci = np.concatenate([f_ci, m + np.arange(mc)])
    f_t = np.concatenate([f_t, cl["sent"] + lat])
    f_q = np.concatenate([f_q, rest[t_idx]])
    # Order children by (order, sent) and fills by (order, time); re-point fills to children.
    c_order = np.lexsort((children["sent"], children["order"]))
    children = {key: v[c_order] for key, v in children.items()}
    new_pos = np.empty_like(c_order)
    new_pos[c_order] = np.arange(c_order.size)
    f_ci = new_pos[f_ci]
    ok = f_t <= o["end"][children["order"][f_ci]]
    f_ci, f_t, f_q = f_ci[ok], f_t[ok], f_q[ok]
    f_order = np.lexsort((f_t, children["order"][f_ci]))
    fills = {"child": f_ci[f_order], "time": f_t[f_order], "qty": f_q[f_order]}
    return DayFlow(orders=o, children=children, fills=fills)


def _latency(cfg: SimulationConfig, rng, venue: np.ndarray) -> np.ndarray:
    """One-way latency in seconds: log-normal around the venue's mean."""
    mean_ms = np.array([v.latency_ms for v in cfg.venues])[venue]
    return mean_ms * np.exp(rng.normal(-0.125, 0.5, venue.size)) / 1e3


def _fills(cfg: SimulationConfig, rng, c: dict, window_end: np.ndarray):
    """Which children fill, how much, in how many pieces and when (child index, time, qty)."""
    style, venue, qty = c["style"], c["venue"], c["qty"]
    m = style.size
    vs = cfg.venues
    p_fill = np.choose(style, [np.array([v.fill_prob_passive for v in vs])[venue],
                               np.array([v.fill_prob_marketable for v in vs])[venue],
                               np.array([v.fill_prob_midpoint for v in vs])[venue]])  # fmt: skip
    wait_mean = np.where(style == 0, np.array([v.wait_s_passive for v in vs])[venue],
                         np.array([v.wait_s_midpoint for v in vs])[venue])  # fmt: skip
    lat = _latency(cfg, rng, venue)
    resting = ~c["ioc"]
    p_fill = np.where((style == 2) & c["ioc"], p_fill * 0.6, p_fill)
    wait = np.where(resting, rng.exponential(1.0, m) * wait_mean, 0.0)
    first = c["sent"] + lat + wait
    hit = (rng.random(m) < p_fill) & (first < np.where(resting, window_end, np.inf))
    full = rng.random(m) < np.where(resting, 0.6, 0.85)
    frac = np.where(full, 1.0, rng.uniform(0.2, 0.9, m))
    fq = np.minimum(np.maximum(np.round(qty * frac / 100.0) * 100.0, 100.0), qty)
    fq = np.where(hit, fq, 0.0)
    n_p = np.where(resting, rng.integers(1, 4, m), np.where(rng.random(m) < 0.25, 2, 1))
    n_p = np.minimum(n_p, np.maximum(fq / 100.0, 1)).astype(np.int64)
    idx = np.flatnonzero(hit)
    ci = np.repeat(idx, n_p[idx])
    pieces = _split_lots(rng, fq, ci)
    gap = np.where(resting[ci], rng.exponential(2.0, ci.size), rng.uniform(1e-6, 3e-4, ci.size))
    starts = segment_starts(ci)
    gap = np.where(np.arange(ci.size) == starts, 0.0, gap)
    t = first[ci] + segment_cumsum(gap, ci)
    ok = (pieces > 0) & ((t < window_end[ci]) | ~resting[ci]) & (t < SESSION_S - 0.01)
    return ci[ok], t[ok], pieces[ok]

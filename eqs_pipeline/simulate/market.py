"""The priced half of a day, one symbol at a time: the latent mid path (random walk with
U-shaped variance and jumps, plus our temporary and permanent impact and each venue's adverse
selection), the NBBO on the tick grid, the prices of our fills and child limits, and the tape.

Inside a symbol everything is vectorized; times are integer microseconds since the open.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import ALGOS, URGENCIES, ImpactParams, SimulationConfig
from .costs import ArrivalState, CostDesign, FilledOrders, expected_cost, price_offsets
from .curves import (
    SESSION_S,
    kernel_sum,
    make_unique_increasing,
    segment_cumsum,
    segment_starts,
    spread_multiplier,
    variance_cdf,
    volume_cdf,
    volume_cdf_inv,
)
from .orders import DayFlow
from .universe import Universe

SESSION_US = int(SESSION_S * 1e6)
JUMPS_PER_DAY = 0.3


def _groups(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable order of rows by key and the [start, end) bounds of each key 0..n-1."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n + 1))
    return order, bounds


def _quote_times(rng, n_bg: int, fill_us: np.ndarray) -> np.ndarray:
    """Bursty background updates (clusters around U-shaped centres, sub-second gaps inside a
    burst), one reaction quote shortly after each of our fills, and one quote at the open."""
    n_clu = max(n_bg // 3, 1)
    centres = volume_cdf_inv(rng.random(n_clu)) * SESSION_S
    sizes = rng.geometric(1.0 / 3.0, n_clu)
    grp = np.repeat(np.arange(n_clu), sizes)
    gaps = rng.exponential(0.12, grp.size)
    gaps[segment_starts(grp) == np.arange(grp.size)] = 0.0
    bg = centres[grp] + segment_cumsum(gaps, grp)
    react = fill_us / 1e6 + rng.exponential(0.2, fill_us.size) + 1e-6
    t = np.concatenate([[0.0], bg, react])
    t_us = np.sort(np.round(t * 1e6).astype(np.int64))
    t_us = make_unique_increasing(t_us)
    return t_us[t_us < SESSION_US]


@dataclass(frozen=True)
class OrderTruth:
    """Per parent order: the latent mid at arrival, the participation its impact is computed
    from, its temporary and permanent impact in bps and the quantity it filled; with designed
    costs (`costs.py`) its true expected cost, dispersion and drawn z, and its true expected
    cost under every algo (columns in `ALGOS` order) and under every urgency with its own algo
    (columns LOW, MEDIUM, HIGH), all else equal (NaN otherwise)."""

    arrival_mid: np.ndarray
    participation: np.ndarray
    temp_bps: np.ndarray
    perm_bps: np.ndarray
    filled: np.ndarray
    expected_cost_bps: np.ndarray
    cost_sd_bps: np.ndarray
    cost_z: np.ndarray
    cost_by_algo_bps: np.ndarray
    cost_by_urgency_bps: np.ndarray


@dataclass(frozen=True)
class PricedDay:
    """A priced day. quotes: (symbol, ts_us, bid, bid_size, ask, ask_size) arrays; tape:
    (symbol, ts_us, price, size, venue) arrays (times in microseconds since the open). Per fill
    of the flow: its price, whether it is kept (a fill that would trade through a limit is
    dropped), its exec time, the expected price improvement and the half spread in bps at the
    quote it met. Per child and parent order: the limit price (NaN: none). close_logp: each
    symbol's closing latent log mid."""

    quotes: list[np.ndarray]
    tape: list[np.ndarray]
    fill_price: np.ndarray
    fill_keep: np.ndarray
    fill_us: np.ndarray
    fill_expected_pi_bps: np.ndarray
    fill_half_spread_bps: np.ndarray
    child_limit: np.ndarray
    order_limit: np.ndarray
    order_truth: OrderTruth
    close_logp: np.ndarray


@dataclass(frozen=True)
class _Symbol:
    """One symbol's rows of the day (indices into the flow's orders, children and fills), its
    fills' times and sizes, and its volatility, tick and ADV."""

    index: int
    orders: np.ndarray
    children: np.ndarray
    fills: np.ndarray
    fill_us: np.ndarray
    sigma: float
    tick: float
    adv: float


@dataclass(frozen=True)
class _Quotes:
    """A symbol's quote updates: times (us and s), the latent log mid and the NBBO."""

    t_us: np.ndarray
    t: np.ndarray
    log_mid: np.ndarray
    bid: np.ndarray
    ask: np.ndarray


def _impact(
    flow: DayFlow, sym: _Symbol, fill_order: np.ndarray, imp: ImpactParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latent impact of each of the symbol's orders from what it actually filled (fill_order:
    the order of each of the symbol's fills): its filled quantity, participation and temporary
    impact level (fraction of the price)."""
    o = flow.orders
    oi = sym.orders
    fq = flow.fills["qty"][sym.fills]
    filled = np.bincount(fill_order, weights=fq, minlength=o["qty"].size)[oi]
    a, e = o["arrival"][oi], o["end"][oi]
    window_vol = o["day_volume"][oi] * (volume_cdf(e / SESSION_S) - volume_cdf(a / SESSION_S))
    part = np.clip(filled / np.maximum(window_vol, 1.0), 0.0, imp.max_participation)
    level = imp.eta * o["impact_mult"][oi] * sym.sigma * part**imp.beta
    return filled, part, level


def _log_mid(
    rng: np.random.Generator,
    flow: DayFlow,
    sym: _Symbol,
    level: np.ndarray,
    kappa_f: np.ndarray,
    n_background: int,
    open_logp: float,
    imp: ImpactParams,
) -> tuple[np.ndarray, np.ndarray]:
    """The quote times (us) and the latent log mid at each: the random walk with U-shaped
    variance, jumps, our orders' temporary and our fills' permanent impact, and each fill's
    adverse move (kappa_f, signed, per fill)."""
    o, f = flow.orders, flow.fills
    oi, fi = sym.orders, sym.fills
    sig = sym.sigma
    ft = sym.fill_us / 1e6
    fq = f["qty"][fi]
    fd = o["sign"][flow.children["order"][f["child"][fi]]]
    a, e, d = o["arrival"][oi], o["end"][oi], o["sign"][oi]
    lvl = d * level
    ramp_end = np.exp(-(e - a) / imp.ramp_s)
    tq_us = _quote_times(rng, n_background, sym.fill_us)
    tq = tq_us / 1e6
    var_inc = np.diff(variance_cdf(tq / SESSION_S), prepend=0.0)
    walk = np.cumsum(rng.normal(0.0, 1.0, tq.size) * sig * np.sqrt(np.maximum(var_inc, 0.0)))
    nj = rng.poisson(JUMPS_PER_DAY)
    jumps = kernel_sum(rng.uniform(0, SESSION_S, nj), rng.normal(0, 0.5 * sig, nj), None, tq)
    ae = np.concatenate([a, e])
    temp = (
        kernel_sum(ae, np.concatenate([lvl, -lvl]), None, tq)
        + kernel_sum(ae, np.concatenate([-lvl, lvl * ramp_end]), imp.ramp_s, tq)
        + kernel_sum(e, lvl * (1.0 - ramp_end), imp.temp_decay_s, tq)
    )
    perm = kernel_sum(ft, fd * imp.gamma * sig * fq / sym.adv, None, tq)
    ft_h = ft + imp.adverse_hold_s
    adverse = kernel_sum(np.concatenate([ft, ft_h]), np.concatenate([-kappa_f, kappa_f]), None, tq)
    adverse += kernel_sum(ft_h, -kappa_f, imp.adverse_decay_s, tq)
    return tq_us, open_logp + walk + jumps + temp + perm + adverse


def _nbbo(
    rng: np.random.Generator,
    uni: Universe,
    sym: _Symbol,
    tq_us: np.ndarray,
    x: np.ndarray,
    vol_factor: float,
) -> tuple[_Quotes, tuple[np.ndarray, ...]]:
    """The NBBO on the tick grid around the latent mid (spread in ticks: 1 + Poisson, wider
    at the open and with volatility) and its sizes; returns the quotes and the quote table's
    arrays (symbol, ts_us, bid, bid_size, ask, ask_size)."""
    s, tick = sym.index, sym.tick
    tq = tq_us / 1e6
    mid = np.exp(x)
    nbar = uni.spread_ticks[s] * np.sqrt(vol_factor) * spread_multiplier(tq / SESSION_S)
    n_t = 1 + rng.poisson(np.maximum(nbar - 1.0, 0.0))
    bid_t = np.maximum(np.floor(mid / tick - n_t / 2.0 + 0.5), 1.0)
    bid = np.round(bid_t * tick, 6)
    ask = np.round((bid_t + n_t) * tick, 6)
    depth = uni.depth_lots[s]
    bsz = 100.0 * np.maximum(np.round(depth * np.exp(rng.normal(0, 0.7, tq.size))), 1.0)
    asz = 100.0 * np.maximum(np.round(depth * np.exp(rng.normal(0, 0.7, tq.size))), 1.0)
    return _Quotes(tq_us, tq, x, bid, ask), (np.full(tq.size, s), tq_us, bid, bsz, ask, asz)


def _order_limits(flow: DayFlow, sym: _Symbol, q: _Quotes) -> np.ndarray:
    """The parent LIMIT orders' limit prices (NaN for market orders): the arrival mid moved
    in the order's favour by its offset, scaled with volatility and duration, on the tick."""
    o, oi, tick = flow.orders, sym.orders, sym.tick
    a, e, d = o["arrival"][oi], o["end"][oi], o["sign"][oi]
    qa = np.searchsorted(q.t_us, np.round(a * 1e6).astype(np.int64), side="right") - 1
    m0 = (q.bid[qa] + q.ask[qa]) / 2.0
    off = o["limit_offset"][oi] * sym.sigma * np.sqrt(np.maximum(e - a, 60.0) / SESSION_S)
    raw = m0 * (1.0 + d * off) / tick
    plim = np.round(np.where(d > 0, np.floor(raw), np.ceil(raw)) * tick, 6)
    return np.where(o["is_limit"][oi], plim, np.nan)


def _fill_prices(
    rng: np.random.Generator, flow: DayFlow, sym: _Symbol, q: _Quotes, pi_mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each fill's price from the quote prevailing strictly before exec_ts: passive at its
    touch, marketable at the far touch improved by a Beta fraction of the half spread (mean:
    the venue's pi_frac_mean), midpoint at the mid. Returns the prices, the expected price
    improvement in bps, the half spread and the mid of the quote each fill met."""
    f, c = flow.fills, flow.children
    fi = sym.fills
    fc = f["child"][fi]
    fd = flow.orders["sign"][c["order"][fc]]
    qi = np.searchsorted(q.t_us, sym.fill_us, side="left") - 1
    fa, fb = q.ask[qi], q.bid[qi]
    half = (fa - fb) / 2.0
    mid = (fa + fb) / 2.0
    style = c["style"][fc]
    mu = pi_mean[c["venue"][fc]]
    frac = np.where(
        (style == 1) & (mu > 0),
        rng.beta(np.maximum(mu, 1e-9) * 2.0, np.maximum(1.0 - mu, 1e-9) * 2.0, fi.size),
        0.0,
    )
    take = np.where(fd > 0, fa - frac * half, fb + frac * half)
    price = np.select(
        [style == 0, style == 1], [np.where(fd > 0, fb, fa), np.round(take, 4)], (fa + fb) / 2.0
    )
    exp_pi = np.select([style == 0, style == 1], [2.0 * half, mu * half], half) / mid * 1e4
    return price, exp_pi, half, mid


def _child_limits(
    rng: np.random.Generator, flow: DayFlow, sym: _Symbol, q: _Quotes, order_limit: np.ndarray
) -> np.ndarray:
    """The symbol's child orders' limits: marketable LIMIT at the touch plus a collar, passive
    at the touch, never through the parent's limit (NaN: none)."""
    c, ci = flow.children, sym.children
    cs = c["sent"][ci]
    qs = np.searchsorted(q.t_us, np.round(cs * 1e6).astype(np.int64), side="right") - 1
    cd = flow.orders["sign"][c["order"][ci]]
    collar = rng.integers(0, 3, ci.size) * sym.tick
    mkt_lim = np.where(cd > 0, q.ask[qs] + collar, q.bid[qs] - collar)
    pas_lim = np.where(cd > 0, q.bid[qs], q.ask[qs])
    cstyle, ctype = c["style"][ci], c["order_type"][ci]
    clim = np.select([(cstyle == 1) & (ctype == 0), cstyle == 0], [mkt_lim, pas_lim], np.nan)
    pl_c = order_limit[c["order"][ci]]
    has_pl = ~np.isnan(pl_c)
    clim = np.where(has_pl & np.isnan(clim), pl_c, clim)
    clim = np.where(has_pl, np.where(cd > 0, np.fmin(clim, pl_c), np.fmax(clim, pl_c)), clim)
    return np.round(clim, 6)


def _rejected(
    flow: DayFlow,
    sym: _Symbol,
    q_ask: np.ndarray,
    q_bid: np.ndarray,
    price: np.ndarray,
    child_limit: np.ndarray,
    order_limit: np.ndarray,
) -> np.ndarray:
    """The fills that do not happen: a marketable child whose limit is no longer marketable
    when it arrives does not fill, and no fill trades through its parent's limit."""
    f, c = flow.fills, flow.children
    fc = f["child"][sym.fills]
    fo = c["order"][fc]
    fd = flow.orders["sign"][fo]
    style = c["style"][fc]
    lim_f = child_limit[fc]
    stale = (
        (style == 1)
        & ~np.isnan(lim_f)
        & np.where(fd > 0, lim_f < q_ask - 1e-9, lim_f > q_bid + 1e-9)
    )
    plf = order_limit[fo]
    return stale | (~np.isnan(plf) & np.where(fd > 0, price > plf + 1e-9, price < plf - 1e-9))


def _tape(
    rng: np.random.Generator,
    sym: _Symbol,
    q: _Quotes,
    n_trades: int,
    background_volume: float,
    venue_share: np.ndarray,
    ours: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, ...]:
    """The symbol's tape: background prints at the prevailing quote (45% at the ask, 45% at
    the bid, the rest at the mid; log-normal sizes summing to about the day's background
    volume, venues by market share), then our own prints `ours` (ts_us, price, size, venue)."""
    tt_us = np.sort(
        np.round(volume_cdf_inv(rng.random(n_trades)) * SESSION_S * 1e6).astype(np.int64)
    )
    tt_us = np.minimum(tt_us, SESSION_US - 1)
    qt = np.searchsorted(q.t_us, tt_us, side="right") - 1
    pick = rng.random(n_trades)
    tp = np.where(
        pick < 0.45,
        q.ask[qt],
        np.where(pick < 0.9, q.bid[qt], np.round((q.ask[qt] + q.bid[qt]) / 2, 4)),
    )
    w = np.exp(rng.normal(0.0, 1.0, n_trades))
    tsz = np.maximum(np.round(background_volume * w / w.sum()), 1.0)
    tv = rng.choice(venue_share.size, size=n_trades, p=venue_share)
    us, price, size, venue = ours
    return (np.full(n_trades + us.size, sym.index), np.concatenate([tt_us, us]),
            np.concatenate([tp, price]), np.concatenate([tsz, size]),
            np.concatenate([tv, venue]))  # fmt: skip


def _passive_child_limits(flow: DayFlow, fill_price: np.ndarray, keep: np.ndarray, limit):
    """A passive child's limit is the price its fills got (buys: the highest), in place."""
    f, c = flow.fills, flow.children
    pas = (c["style"][f["child"]] == 0) & keep
    if pas.any():
        pci = f["child"][pas]
        signed = fill_price[pas] * flow.orders["sign"][c["order"][pci]]
        best = np.full(limit.size, -np.inf)
        np.maximum.at(best, pci, signed)
        got = np.isfinite(best)
        limit[got] = np.round(np.abs(best[got]), 6)


def _background_counts(
    cfg: SimulationConfig, uni: Universe, fills_per_symbol: np.ndarray, n_fills: int
) -> tuple[np.ndarray, np.ndarray]:
    """Background quote updates and tape prints per symbol: per fill of ours, half from the
    symbol's own fills and half from its share of the order flow, at least the minimum."""
    liq = uni.order_weight * max(n_fills, 1)
    n_quotes = np.maximum(
        cfg.min_quotes_per_symbol,
        np.round((cfg.quotes_per_fill - 1) * (0.5 * fills_per_symbol + 0.5 * liq)),
    )
    n_trades = np.maximum(
        cfg.min_trades_per_symbol,
        np.round(cfg.trades_per_fill * (0.5 * fills_per_symbol + 0.5 * liq)),
    )
    return n_quotes, n_trades


@dataclass
class _DayPrices:
    """What `price_day` fills in symbol by symbol (the fields of `PricedDay`)."""

    fill_price: np.ndarray
    fill_keep: np.ndarray
    fill_us: np.ndarray
    fill_expected_pi_bps: np.ndarray
    fill_half_spread_bps: np.ndarray
    child_limit: np.ndarray
    order_limit: np.ndarray
    order_truth: OrderTruth
    close_logp: np.ndarray
    quotes: list[tuple[np.ndarray, ...]]
    tape: list[tuple[np.ndarray, ...]]

    @staticmethod
    def empty(flow: DayFlow, open_logp: np.ndarray) -> _DayPrices:
        nf, nc, no = flow.fills["time"].size, flow.children["sent"].size, flow.orders["qty"].size
        return _DayPrices(
            fill_price=np.zeros(nf),
            fill_keep=np.ones(nf, bool),
            fill_us=np.zeros(nf, np.int64),
            fill_expected_pi_bps=np.zeros(nf),
            fill_half_spread_bps=np.zeros(nf),
            child_limit=np.full(nc, np.nan),
            order_limit=np.full(no, np.nan),
            order_truth=OrderTruth(
                *(np.zeros(no) for _ in range(5)),
                *(np.full(no, np.nan) for _ in range(3)),
                np.full((no, len(ALGOS)), np.nan),
                np.full((no, len(URGENCIES)), np.nan),
            ),
            close_logp=open_logp.copy(),
            quotes=[],
            tape=[],
        )

    def priced(self) -> PricedDay:
        return PricedDay(
            quotes=[np.concatenate(col) for col in zip(*self.quotes, strict=True)],
            tape=[np.concatenate(col) for col in zip(*self.tape, strict=True)],
            fill_price=self.fill_price,
            fill_keep=self.fill_keep,
            fill_us=self.fill_us,
            fill_expected_pi_bps=self.fill_expected_pi_bps,
            fill_half_spread_bps=self.fill_half_spread_bps,
            child_limit=self.child_limit,
            order_limit=self.order_limit,
            order_truth=self.order_truth,
            close_logp=self.close_logp,
        )


@dataclass(frozen=True)
class _DayInputs:
    """What every symbol of a day needs besides its own rows: per venue its adverse move
    (fraction of the price), mean price improvement (fraction of the half spread), fee rates
    (maker, taker, midpoint) and share of the tape; per fill its parent order; per child its filled quantity; per symbol the volatility
    and volume factors of the day and the opening log mid."""

    kappa: np.ndarray
    pi_mean: np.ndarray
    fee_rates: np.ndarray
    tape_share: np.ndarray
    fill_order: np.ndarray
    child_filled: np.ndarray
    vol_factor: np.ndarray
    volume_factor: np.ndarray
    open_logp: np.ndarray
    # The injected degradation of the day (`config.Degradation`): venue index, onset in
    # seconds after the open, ticks worse, adverse move (fraction of the price); None: none.
    degraded: tuple[int, float, float, float] | None = None


def _price_symbol(
    cfg: SimulationConfig,
    uni: Universe,
    rng: np.random.Generator,
    flow: DayFlow,
    sym: _Symbol,
    day: _DayInputs,
    counts: tuple[int, int],
    out: _DayPrices,
) -> None:
    """Price one symbol's day into `out`; counts: its background quote updates and prints."""
    o, c, f = flow.orders, flow.children, flow.fills
    imp, s, oi, fi = cfg.impact, sym.index, sym.orders, sym.fills
    fc = f["child"][fi]
    fq = f["qty"][fi]
    fv = c["venue"][fc]
    filled, part, level = _impact(flow, sym, day.fill_order[fi], imp)
    sign_f = o["sign"][day.fill_order[fi]]
    kappa_v, worse, ticks = day.kappa[fv], None, 0.0
    if day.degraded is not None:
        venue, onset_s, ticks, kappa = day.degraded
        worse = (fv == venue) & (f["time"][fi] >= onset_s)
        kappa_v = np.where(worse, kappa, kappa_v)
    kappa_f = sign_f * kappa_v * fq / day.child_filled[fc]
    open_logp = day.open_logp[s]
    tq_us, x = _log_mid(rng, flow, sym, level, kappa_f, counts[0], open_logp, imp)
    q, quote_table = _nbbo(rng, uni, sym, tq_us, x, day.vol_factor[s])
    out.quotes.append(quote_table)
    out.close_logp[s] = x[-1]
    out.order_limit[oi] = _order_limits(flow, sym, q)
    truth = out.order_truth
    truth.arrival_mid[oi] = np.exp(open_logp + np.interp(o["arrival"][oi], q.t, x - open_logp))
    truth.participation[oi] = part
    truth.temp_bps[oi] = level * 1e4
    truth.perm_bps[oi] = imp.gamma * sym.sigma * filled / sym.adv * 1e4
    truth.filled[oi] = filled
    price, exp_pi, half, mid = _fill_prices(rng, flow, sym, q, day.pi_mean)
    if worse is not None:  # the degraded venue fills `ticks` ticks worse for us
        price = np.round(price + sign_f * worse * ticks * sym.tick, 6)
    out.child_limit[sym.children] = _child_limits(rng, flow, sym, q, out.order_limit)
    qi = np.searchsorted(q.t_us, sym.fill_us, side="left") - 1
    bad = _rejected(flow, sym, q.ask[qi], q.bid[qi], price, out.child_limit, out.order_limit)
    if cfg.costs is not None:
        price = _designed_prices(cfg.costs, uni, rng, flow, sym, q, day, price, ~bad, truth)
    out.fill_keep[fi] = ~bad
    out.fill_price[fi] = price
    out.fill_expected_pi_bps[fi] = exp_pi
    out.fill_half_spread_bps[fi] = half / mid * 1e4
    out.fill_us[fi] = sym.fill_us
    keep = ~bad
    ours = (sym.fill_us[keep], price[keep], fq[keep], fv[keep])
    background = uni.adv[s] * day.volume_factor[s]
    out.tape.append(_tape(rng, sym, q, counts[1], background, day.tape_share, ours))


def _designed_prices(
    design: CostDesign,
    uni: Universe,
    rng: np.random.Generator,
    flow: DayFlow,
    sym: _Symbol,
    q: _Quotes,
    day: _DayInputs,
    price: np.ndarray,
    keep: np.ndarray,
    truth: OrderTruth,
) -> np.ndarray:
    """The symbol's fill prices moved so that each designed order's shortfall is its draw from
    the designed distribution (`costs.py`); records the truth of the designed orders."""
    o, c, f = flow.orders, flow.children, flow.fills
    oi, fi, s = sym.orders, sym.fills, sym.index
    n = oi.size
    a_us = np.round(o["arrival"][oi] * 1e6).astype(np.int64)
    e_us = np.round(o["end"][oi] * 1e6).astype(np.int64)
    # As the pipeline looks them up: the last quote at or before the instant.
    qa = np.searchsorted(q.t_us, a_us, side="right") - 1
    qe = np.searchsorted(q.t_us, e_us, side="right") - 1
    m0 = (q.bid[qa] + q.ask[qa]) / 2.0
    sigma = np.round(uni.daily_vol[s], 6) * 1e4
    state = ArrivalState(
        algo=o["algo"][oi],
        urgency=o["urgency"][oi],
        is_limit=o["is_limit"][oi],
        is_short=o["side"][oi] == 2,
        tau=o["arrival"][oi] / SESSION_S,
        spread_bps=(q.ask[qa] - q.bid[qa]) / m0 * 1e4,
        sigma_bps=np.full(n, sigma),
        size_adv=o["qty"][oi] / uni.adv[s],
        broker_multiplier=np.exp(uni.broker_skill[o["broker"][oi]]),
    )
    mu, sd = expected_cost(design, state)
    # The same order under every algo and every urgency: what an algo comparison estimates.
    by_algo = [
        expected_cost(design, replace(state, algo=np.full(n, a)))[0] for a in range(len(ALGOS))
    ]
    by_urgency = [
        expected_cost(design, replace(state, urgency=np.full(n, u)))[0]
        for u in range(len(URGENCIES))
    ]
    z = rng.standard_normal(n)
    local = np.full(o["qty"].size, -1, np.int64)
    local[oi] = np.arange(n)
    fo = local[day.fill_order[fi]]
    fc = f["child"][fi]
    fq = np.where(keep, f["qty"][fi], 0.0)
    # The fee as the landed executions carry it (engine._KeptFills).
    rates = day.fee_rates[c["venue"][fc], c["style"][fc]]
    fees = np.where(keep, np.round(rates * f["qty"][fi], 4), 0.0)
    filled = FilledOrders(
        sign=o["sign"][oi],
        qty=o["qty"][oi],
        m0=m0,
        m_end=(q.bid[qe] + q.ask[qe]) / 2.0,
        filled=np.bincount(fo, weights=fq, minlength=n),
        notional=np.bincount(fo, weights=fq * price, minlength=n),
        fees=np.bincount(fo, weights=fees, minlength=n),
    )
    delta, designed = price_offsets(design, filled, mu + sd * z)
    truth.expected_cost_bps[oi] = np.where(designed, mu, np.nan)
    truth.cost_sd_bps[oi] = np.where(designed, sd, np.nan)
    truth.cost_z[oi] = np.where(designed, z, np.nan)
    truth.cost_by_algo_bps[oi] = np.where(designed[:, None], np.column_stack(by_algo), np.nan)
    truth.cost_by_urgency_bps[oi] = np.where(designed[:, None], np.column_stack(by_urgency), np.nan)
    return price + np.where(keep, delta[fo], 0.0)


def price_day(
    cfg: SimulationConfig,
    uni: Universe,
    rng: np.random.Generator,
    flow: DayFlow,
    open_logp: np.ndarray,
    vol_factor: np.ndarray,
    volume_factor: np.ndarray,
    onset_s: float | None = None,
) -> PricedDay:
    """Price one day, one symbol at a time: the quotes, the tape, the fills' and child and
    parent orders' prices and the per-order truth. onset_s: seconds after the open from which
    `cfg.degradation` applies on this day (None: not on this day)."""
    o, c, f = flow.orders, flow.children, flow.fills
    n_sym = uni.symbols.size
    share = np.array([v.market_share for v in cfg.venues])
    fill_order = c["order"][f["child"]]
    day = _DayInputs(
        kappa=np.array([v.kappa_bps for v in cfg.venues]) * 1e-4,
        pi_mean=np.array([v.pi_frac_mean for v in cfg.venues]),
        fee_rates=np.array([[v.maker_fee, v.taker_fee, v.mid_fee] for v in cfg.venues]),
        tape_share=share / share.sum(),
        fill_order=fill_order,
        # Adverse selection is one move per child, spread over its fills by quantity.
        child_filled=np.bincount(f["child"], weights=f["qty"], minlength=c["sent"].size),
        vol_factor=vol_factor,
        volume_factor=volume_factor,
        open_logp=open_logp,
        degraded=None
        if onset_s is None or cfg.degradation is None
        else (
            [v.mic for v in cfg.venues].index(cfg.degradation.venue),
            onset_s,
            cfg.degradation.ticks,
            cfg.degradation.kappa_bps * 1e-4,
        ),
    )
    o_ord, o_b = _groups(o["symbol"], n_sym)
    c_ord, c_b = _groups(o["symbol"][c["order"]], n_sym)
    f_ord, f_b = _groups(o["symbol"][fill_order], n_sym)
    n_quotes, n_trades = _background_counts(cfg, uni, np.diff(f_b), f["time"].size)
    out = _DayPrices.empty(flow, open_logp)
    for s in range(n_sym):
        fi = f_ord[f_b[s] : f_b[s + 1]]
        sym = _Symbol(
            s,
            o_ord[o_b[s] : o_b[s + 1]],
            c_ord[c_b[s] : c_b[s + 1]],
            fi,
            np.round(f["time"][fi] * 1e6).astype(np.int64),
            uni.daily_vol[s] * vol_factor[s],
            uni.tick[s],
            uni.adv[s],
        )
        counts = (int(n_quotes[s]), int(n_trades[s]))
        _price_symbol(cfg, uni, rng, flow, sym, day, counts, out)
    _passive_child_limits(flow, out.fill_price, out.fill_keep, out.child_limit)
    return out.priced()

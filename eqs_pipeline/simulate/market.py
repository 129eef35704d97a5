"""The priced half of a day, one symbol at a time: the latent mid path (random walk with
U-shaped variance and jumps, plus our temporary and permanent impact and each venue's adverse
selection), the NBBO on the tick grid, the prices of our fills and child limits, and the tape.

Inside a symbol everything is vectorized; times are integer microseconds since the open.
"""

from __future__ import annotations

import numpy as np

from .config import SimulationConfig
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


def price_day(
    cfg: SimulationConfig,
    uni: Universe,
    rng: np.random.Generator,
    flow: DayFlow,
    open_logp: np.ndarray,
    vol_factor: np.ndarray,
    volume_factor: np.ndarray,
) -> dict:
    """Price one day. Returns quote, tape, fill and child price arrays and the per-order truth."""
    o, c, f = flow.orders, flow.children, flow.fills
    n_sym, imp = uni.symbols.size, cfg.impact
    vs = cfg.venues
    kappa = np.array([v.kappa_bps for v in vs]) * 1e-4
    pi_mean = np.array([v.pi_frac_mean for v in vs])
    share = np.array([v.market_share for v in vs])
    share = share / share.sum()
    f_oi = c["oi"][f["ci"]]
    # Adverse selection is one move per child, spread over its fills by quantity.
    child_filled = np.bincount(f["ci"], weights=f["qty"], minlength=c["sent"].size)
    f_sym = o["sym"][f_oi]
    o_ord, o_b = _groups(o["sym"], n_sym)
    c_ord, c_b = _groups(o["sym"][c["oi"]], n_sym)
    f_ord, f_b = _groups(f_sym, n_sym)
    nf_sym = np.diff(f_b)
    liq = uni.order_weight * max(f["t"].size, 1)
    n_bg = np.maximum(
        cfg.min_quotes_per_symbol, np.round((cfg.quotes_per_fill - 1) * (0.5 * nf_sym + 0.5 * liq))
    )
    n_tr = np.maximum(
        cfg.min_trades_per_symbol, np.round(cfg.trades_per_fill * (0.5 * nf_sym + 0.5 * liq))
    )

    nf, nc, no = f["t"].size, c["sent"].size, o["qty"].size
    f_price = np.zeros(nf)
    f_keep = np.ones(nf, bool)
    f_exp_pi = np.zeros(nf)
    f_half_bps = np.zeros(nf)
    f_us = np.zeros(nf, np.int64)
    c_limit = np.full(nc, np.nan)
    o_limit = np.full(no, np.nan)
    o_truth = {
        k: np.zeros(no) for k in ("arrival_mid", "participation", "temp_bps", "perm_bps", "filled")
    }
    quotes, tape = [], []
    close_logp = open_logp.copy()
    for s in range(n_sym):
        oi = o_ord[o_b[s] : o_b[s + 1]]
        ci = c_ord[c_b[s] : c_b[s + 1]]
        fi = f_ord[f_b[s] : f_b[s + 1]]
        sig = uni.daily_vol[s] * vol_factor[s]
        tick, adv = uni.tick[s], uni.adv[s]
        ft_us = np.round(f["t"][fi] * 1e6).astype(np.int64)
        ft = ft_us / 1e6
        fq = f["qty"][fi]
        fo = f_oi[fi]
        fd = o["d"][fo]
        fc = f["ci"][fi]
        fv = c["venue"][fc]
        # Latent impact of each order from what it actually filled.
        filled = np.bincount(fo, weights=fq, minlength=no)[oi]
        a, e, d = o["arrival"][oi], o["end"][oi], o["d"][oi]
        window_vol = o["day_volume"][oi] * (volume_cdf(e / SESSION_S) - volume_cdf(a / SESSION_S))
        part = np.clip(filled / np.maximum(window_vol, 1.0), 0.0, imp.max_participation)
        level = imp.eta * o["impact_mult"][oi] * sig * part**imp.beta
        lvl = d * level
        ramp_end = np.exp(-(e - a) / imp.ramp_s)
        tq_us = _quote_times(rng, int(n_bg[s]), ft_us)
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
        perm = kernel_sum(ft, fd * imp.gamma * sig * fq / adv, None, tq)
        k_f = fd * kappa[fv] * fq / child_filled[fc]
        ft_h = ft + imp.adverse_hold_s
        adverse = kernel_sum(np.concatenate([ft, ft_h]), np.concatenate([-k_f, k_f]), None, tq)
        adverse += kernel_sum(ft_h, -k_f, imp.adverse_decay_s, tq)
        x = open_logp[s] + walk + jumps + temp + perm + adverse
        mid = np.exp(x)
        nbar = uni.spread_ticks[s] * np.sqrt(vol_factor[s]) * spread_multiplier(tq / SESSION_S)
        n_t = 1 + rng.poisson(np.maximum(nbar - 1.0, 0.0))
        bid_t = np.maximum(np.floor(mid / tick - n_t / 2.0 + 0.5), 1.0)
        bid = np.round(bid_t * tick, 6)
        ask = np.round((bid_t + n_t) * tick, 6)
        depth = uni.depth_lots[s]
        bsz = 100.0 * np.maximum(np.round(depth * np.exp(rng.normal(0, 0.7, tq.size))), 1.0)
        asz = 100.0 * np.maximum(np.round(depth * np.exp(rng.normal(0, 0.7, tq.size))), 1.0)
        quotes.append((np.full(tq.size, s), tq_us, bid, bsz, ask, asz))
        close_logp[s] = x[-1]
        # Arrival quote and parent limit prices.
        qa = np.searchsorted(tq_us, np.round(a * 1e6).astype(np.int64), side="right") - 1
        m0 = (bid[qa] + ask[qa]) / 2.0
        off = o["limit_off"][oi] * sig * np.sqrt(np.maximum(e - a, 60.0) / SESSION_S)
        raw = m0 * (1.0 + d * off) / tick
        plim = np.round(np.where(d > 0, np.floor(raw), np.ceil(raw)) * tick, 6)
        plim = np.where(o["is_limit"][oi], plim, np.nan)
        o_limit[oi] = plim
        o_truth["arrival_mid"][oi] = np.exp(open_logp[s] + np.interp(a, tq, x - open_logp[s]))
        o_truth["participation"][oi] = part
        o_truth["temp_bps"][oi] = level * 1e4
        o_truth["perm_bps"][oi] = imp.gamma * sig * filled / adv * 1e4
        o_truth["filled"][oi] = filled
        # Fill prices from the quote prevailing strictly before exec_ts.
        qi = np.searchsorted(tq_us, ft_us, side="left") - 1
        fa, fb = ask[qi], bid[qi]
        half = (fa - fb) / 2.0
        style = c["style"][fc]
        mu = pi_mean[fv]
        frac = np.where(
            (style == 1) & (mu > 0),
            rng.beta(np.maximum(mu, 1e-9) * 2.0, np.maximum(1.0 - mu, 1e-9) * 2.0, fi.size),
            0.0,
        )
        take = np.where(fd > 0, fa - frac * half, fb + frac * half)
        price = np.select(
            [style == 0, style == 1], [np.where(fd > 0, fb, fa), np.round(take, 4)], (fa + fb) / 2.0
        )
        exp_pi = (
            np.select([style == 0, style == 1], [2.0 * half, mu * half], half)
            / ((fa + fb) / 2.0)
            * 1e4
        )
        # Child limits: marketable LIMIT at the touch plus a collar, passive at the touch.
        cs = c["sent"][ci]
        qs = np.searchsorted(tq_us, np.round(cs * 1e6).astype(np.int64), side="right") - 1
        cd = o["d"][c["oi"][ci]]
        collar = rng.integers(0, 3, ci.size) * tick
        mkt_lim = np.where(cd > 0, ask[qs] + collar, bid[qs] - collar)
        pas_lim = np.where(cd > 0, bid[qs], ask[qs])
        cstyle, ctype = c["style"][ci], c["ctype"][ci]
        clim = np.select([(cstyle == 1) & (ctype == 0), cstyle == 0], [mkt_lim, pas_lim], np.nan)
        pl_c = o_limit[c["oi"][ci]]
        has_pl = ~np.isnan(pl_c)
        clim = np.where(has_pl & np.isnan(clim), pl_c, clim)
        clim = np.where(has_pl, np.where(cd > 0, np.fmin(clim, pl_c), np.fmax(clim, pl_c)), clim)
        c_limit[ci] = np.round(clim, 6)
        # A marketable child whose limit is no longer marketable when it arrives does not
        # fill; no fill trades through its parent's limit.
        lim_f = c_limit[fc]
        stale = (
            (style == 1) & ~np.isnan(lim_f) & np.where(fd > 0, lim_f < fa - 1e-9, lim_f > fb + 1e-9)
        )
        plf = o_limit[fo]
        bad = stale | (~np.isnan(plf) & np.where(fd > 0, price > plf + 1e-9, price < plf - 1e-9))
        f_keep[fi] = ~bad
        f_price[fi] = price
        f_exp_pi[fi] = exp_pi
        f_half_bps[fi] = half / ((fa + fb) / 2.0) * 1e4
        f_us[fi] = ft_us
        # Background tape at the prevailing quote, then our own prints.
        ntr = int(n_tr[s])
        tt_us = np.sort(
            np.round(volume_cdf_inv(rng.random(ntr)) * SESSION_S * 1e6).astype(np.int64)
        )
        tt_us = np.minimum(tt_us, SESSION_US - 1)
        qt = np.searchsorted(tq_us, tt_us, side="right") - 1
        pick = rng.random(ntr)
        tp = np.where(
            pick < 0.45,
            ask[qt],
            np.where(pick < 0.9, bid[qt], np.round((ask[qt] + bid[qt]) / 2, 4)),
        )
        w = np.exp(rng.normal(0.0, 1.0, ntr))
        tsz = np.maximum(np.round(uni.adv[s] * volume_factor[s] * w / w.sum()), 1.0)
        tv = rng.choice(len(vs), size=ntr, p=share)
        keep = ~bad
        tape.append((np.full(ntr + keep.sum(), s), np.concatenate([tt_us, ft_us[keep]]),
                     np.concatenate([tp, price[keep]]), np.concatenate([tsz, fq[keep]]),
                     np.concatenate([tv, fv[keep]])))  # fmt: skip
    # Passive children's limit is the price their fills got (buys: the highest).
    pas = (c["style"][f["ci"]] == 0) & f_keep
    if pas.any():
        pci = f["ci"][pas]
        signed = f_price[pas] * o["d"][c["oi"][pci]]
        best = np.full(nc, -np.inf)
        np.maximum.at(best, pci, signed)
        got = np.isfinite(best)
        c_limit[got] = np.round(np.abs(best[got]), 6)
    return {
        "quotes": [np.concatenate(col) for col in zip(*quotes, strict=True)],
        "tape": [np.concatenate(col) for col in zip(*tape, strict=True)],
        "fill_price": f_price,
        "fill_keep": f_keep,
        "fill_us": f_us,
        "fill_expected_pi_bps": f_exp_pi,
        "fill_half_spread_bps": f_half_bps,
        "child_limit": c_limit,
        "order_limit": o_limit,
        "order_truth": o_truth,
        "close_logp": close_logp,
    }

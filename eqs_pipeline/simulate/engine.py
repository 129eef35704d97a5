"""Day loop of the simulator: draw a day's flow, price it, and shape contract tables.

`iter_days` yields one `SimulatedDay` at a time (bounded memory: the streaming writer uses it);
`simulate` concatenates them into a `SimulatedData`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from eqs_pipeline.core.contract import CONTRACT

from .config import ALGOS, URGENCIES, SimulationConfig
from .market import price_day
from .orders import make_day_flow
from .universe import Universe, build_universe

SIDE_NAMES = ("BUY", "SELL", "SELL_SHORT")
CHILD_TYPES = ("LIMIT", "MARKET", "MIDPEG")
FLAGS = ("ADD", "REMOVE", "MID")


@dataclass
class SimulatedDay:
    """One trade date: the five dated contract tables and the per-order / per-fill truth."""

    trade_date: date
    tables: dict[str, pl.DataFrame]
    truth_orders: pl.DataFrame
    truth_fills: pl.DataFrame
    truth_symbol_days: pl.DataFrame


@dataclass
class SimulatedData:
    """A whole run. Dated tables hold all days with a `trade_date` column (not a contract
    column: the landing writer drops it and uses it for the date folder)."""

    instruments: pl.DataFrame
    tables: dict[str, pl.DataFrame]
    truth: dict
    truth_orders: pl.DataFrame
    truth_fills: pl.DataFrame
    truth_symbol_days: pl.DataFrame
    trade_dates: list[date] = field(default_factory=list)

    def day(self, table: str, trade_date: date) -> pl.DataFrame:
        """One table's rows of one date, contract columns only."""
        frame = self.tables[table].filter(pl.col("trade_date") == trade_date)
        return frame.drop("trade_date")


def trading_dates(start: date, days: int) -> list[date]:
    """`days` weekdays from `start` (inclusive)."""
    out, d = [], start
    while len(out) < days:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def session_open_us(d: date, tz: str) -> int:
    """09:30 local on date d as microseconds since the epoch (UTC)."""
    local = datetime.combine(d, time(9, 30), tzinfo=ZoneInfo(tz))
    return int(local.astimezone(UTC).timestamp()) * 1_000_000


def _ts(open_us: int, seconds: np.ndarray) -> pl.Series:
    us = (
        np.where(np.isnan(seconds), 0, np.round(np.nan_to_num(seconds) * 1e6)).astype(np.int64)
        + open_us
    )
    s = pl.Series(us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if np.isnan(seconds).any():
        s = pl.select(pl.when(pl.Series(~np.isnan(seconds))).then(s)).to_series()
    return s


def _ids(prefix: str, n: int, width: int) -> pl.Series:
    return (
        pl.select(
            pl.concat_str(
                pl.lit(prefix), pl.int_range(n, eager=False).cast(pl.String).str.zfill(width)
            )
        ).to_series()
        if n
        else pl.Series([], dtype=pl.String)
    )


def _names(values, idx: np.ndarray) -> pl.Series:
    return pl.Series(list(values), dtype=pl.String).gather(pl.Series(idx.astype(np.int64)))


def _nullable(x: np.ndarray) -> pl.Series:
    return pl.Series(x).fill_nan(None)


def _conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    schema = CONTRACT[table].polars_schema
    return frame.select(pl.col(c).cast(t) for c, t in schema.items())


def simulate_day(
    cfg: SimulationConfig, uni: Universe, rng: np.random.Generator, d: date, open_logp: np.ndarray
) -> tuple[SimulatedDay, np.ndarray]:
    """Simulate one trade date; returns it and the closing log prices (next day's start)."""
    n_sym = uni.symbols.size
    vol_factor = np.exp(rng.normal(0.0, 0.25, n_sym))
    volume_factor = np.exp(rng.normal(0.0, 0.3, n_sym)) * vol_factor**0.5
    flow = make_day_flow(cfg, uni, rng, volume_factor)
    priced = price_day(cfg, uni, rng, flow, open_logp, vol_factor, volume_factor)
    o, c, f = flow.orders, flow.children, flow.fills
    open_us = session_open_us(d, cfg.timezone)
    tag = d.strftime("%Y%m%d")
    vs = cfg.venues
    mics = [v.mic for v in vs]

    # Orders numbered by arrival, children by send time, fills by execution time.
    o_rank = np.empty(o["qty"].size, np.int64)
    o_rank[np.argsort(o["arrival"], kind="stable")] = np.arange(o["qty"].size)
    order_ids = _ids(f"O{tag}-", o["qty"].size, 6)
    oid = order_ids.gather(pl.Series(o_rank))
    orders = pl.DataFrame({
        "order_id": oid, "symbol": _names(uni.symbols, o["sym"]), "side": _names(SIDE_NAMES, o["side"]),
        "order_qty": o["qty"], "order_type": _names(("MARKET", "LIMIT"), o["is_limit"].astype(np.int64)),
        "limit_price": _nullable(priced["order_limit"]), "arrival_ts": _ts(open_us, o["arrival"]),
        "end_ts": _ts(open_us, o["end"]), "algo": _names(ALGOS, o["algo"]),
        "urgency": _names(URGENCIES, o["urgency"]), "target_participation": _nullable(o["target"]),
        "broker": _names(uni.brokers, o["broker"]), "trader": _names(uni.traders, o["trader"]),
        "account": _names(uni.accounts, o["account"]), "decision_ts": _ts(open_us, o["decision"]),
    }).sort("arrival_ts", "order_id")  # fmt: skip

    nc = c["sent"].size
    c_rank = np.empty(nc, np.int64)
    c_rank[np.lexsort((o_rank[c["oi"]], c["sent"]))] = np.arange(nc)
    cid = _ids(f"C{tag}-", nc, 7).gather(pl.Series(c_rank))
    children = pl.DataFrame({
        "child_id": cid, "order_id": oid.gather(pl.Series(c["oi"])), "venue": _names(mics, c["venue"]),
        "sent_ts": _ts(open_us, c["sent"]), "qty": c["qty"], "order_type": _names(CHILD_TYPES, c["ctype"]),
        "limit_price": _nullable(priced["child_limit"]), "tif": _names(("DAY", "IOC"), c["ioc"].astype(np.int64)),
        "end_ts": _ts(open_us, c["end"]),
    }).sort("sent_ts", "child_id")  # fmt: skip

    keep = priced["fill_keep"]
    fci = f["ci"][keep]
    f_us = priced["fill_us"][keep]
    fq = f["qty"][keep]
    fv = c["venue"][fci]
    flag = c["style"][fci]
    f_oi = c["oi"][fci]
    rates = np.array([[v.maker_fee, v.taker_fee, v.mid_fee] for v in vs])
    fee = np.round(rates[fv, flag] * fq, 4)
    nf = fci.size
    f_rank = np.empty(nf, np.int64)
    f_rank[np.lexsort((np.arange(nf), f_us))] = np.arange(nf)
    eid = _ids(f"E{tag}-", nf, 8).gather(pl.Series(f_rank))
    fills = pl.DataFrame({
        "exec_id": eid, "order_id": oid.gather(pl.Series(f_oi)), "child_id": cid.gather(pl.Series(fci)),
        "symbol": _names(uni.symbols, o["sym"][f_oi]), "venue": _names(mics, fv),
        "exec_ts": pl.Series(f_us + open_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "qty": fq, "price": priced["fill_price"][keep], "liquidity_flag": _names(FLAGS, flag), "fee": fee,
    }).sort("exec_ts", "exec_id")  # fmt: skip

    q_sym, q_us, bid, bsz, ask, asz = priced["quotes"]
    quotes = pl.DataFrame({
        "symbol": _names(uni.symbols, q_sym),
        "ts": pl.Series(q_us + open_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "bid_px": bid, "bid_sz": bsz, "ask_px": ask, "ask_sz": asz,
    })  # fmt: skip
    t_sym, t_us, t_px, t_sz, t_v = priced["tape"]
    tape = pl.DataFrame({
        "symbol": _names(uni.symbols, t_sym),
        "ts": pl.Series(t_us + open_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "price": t_px, "size": t_sz, "venue": _names(mics, t_v),
    }).sort("symbol", "ts", maintain_order=True)  # fmt: skip

    ot = priced["order_truth"]
    truth_orders = pl.DataFrame({
        "order_id": oid, "trade_date": [d] * o["qty"].size, "symbol": _names(uni.symbols, o["sym"]),
        "daily_volatility": uni.daily_vol[o["sym"]] * vol_factor[o["sym"]], "pct_adv": o["pct_adv"],
        "impact_multiplier": o["impact_mult"], "latent_arrival_mid": ot["arrival_mid"],
        "participation": ot["participation"], "temp_impact_bps": ot["temp_bps"],
        "perm_impact_bps": ot["perm_bps"], "expected_impact_cost_bps": ot["temp_bps"] + 0.5 * ot["perm_bps"],
        "planned_to_complete": o["complete"], "cancelled": o["cancelled"],
    }).sort("order_id")  # fmt: skip
    kappa = np.array([v.kappa_bps for v in vs])
    exp_pi = priced["fill_expected_pi_bps"][keep]
    # The expected all-in cost given the quote: fee + half spread - expected improvement
    # (= the expected effective half spread) + the venue's adverse move, held at 60 s.
    fee_bps = fee / (fq * priced["fill_price"][keep]) * 1e4
    truth_fills = pl.DataFrame({
        "exec_id": eid, "trade_date": [d] * nf, "venue": _names(mics, fv), "liquidity_flag": _names(FLAGS, flag),
        "qty": fq, "expected_price_improvement_bps": exp_pi, "kappa_bps": kappa[fv],
        "expected_all_in_cost_bps": fee_bps + priced["fill_half_spread_bps"][keep] - exp_pi + kappa[fv],
    }).sort("exec_id")  # fmt: skip
    tables = {
        "orders": _conform("orders", orders),
        "child_orders": _conform("child_orders", children),
        "executions": _conform("executions", fills),
        "quotes": _conform("quotes", quotes),
        "market_trades": _conform("market_trades", tape),
    }
    symbol_days = pl.DataFrame(
        {
            "symbol": uni.symbols.tolist(),
            "trade_date": [d] * n_sym,
            "open_price": np.exp(open_logp),
            "close_latent_mid": np.exp(priced["close_logp"]),
            "vol_factor": vol_factor,
            "daily_volatility": uni.daily_vol * vol_factor,
            "volume_factor": volume_factor,
            "background_volume": uni.adv * volume_factor,
        }
    )
    day = SimulatedDay(d, tables, truth_orders, truth_fills, symbol_days)
    return day, priced["close_logp"]


def iter_days(
    cfg: SimulationConfig, progress: Callable[[int, int], None] | None = None
) -> tuple[Universe, Iterator[SimulatedDay]]:
    """The universe and a generator of days; all randomness from one seeded Generator."""
    rng = np.random.default_rng(cfg.seed)
    uni = build_universe(cfg, rng)
    dates = trading_dates(cfg.start_date, cfg.days)

    def gen() -> Iterator[SimulatedDay]:
        logp = np.log(uni.price)
        for k, d in enumerate(dates):
            day, close = simulate_day(cfg, uni, rng, d, logp)
            # Overnight: a gap of about a quarter of a day's volatility.
            logp = close + rng.normal(0.0, 0.25 * uni.daily_vol)
            if progress is not None:
                progress(k + 1, len(dates))
            yield day

    return uni, gen()

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

from eqs_pipeline.core.contract import ALLOCATIONS, CONTRACT

from .config import ALGOS, URGENCIES, SimulationConfig
from .market import PricedDay, price_day
from .orders import DayFlow, make_day_flow
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


def _optional_names(values, idx: np.ndarray) -> pl.Series:
    """`_names`, null where the index is -1."""
    return _names(values, np.maximum(idx, 0)).scatter(np.flatnonzero(idx < 0), None)


# The orders' columns of the algo wheel (`SimulationConfig.algos`): every order of a run that
# assigns algos has an `allocation`; a run that does not lands neither column (`landed`).
ALLOCATION_COLUMNS: tuple[str, ...] = ("allocation", "allocation_prob")


def _conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Every contract column in its contract type, an optional one the day lacks as nulls (as
    the ingester reads a file without it)."""
    schema = CONTRACT[table].polars_schema
    return frame.select(
        (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in schema.items()
    )


def landed(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """A day's table as the landing files hold it: the orders of a run without algo
    assignment (no `allocation` at all) land without the allocation columns, as a desk
    without an algo wheel would."""
    if table == "orders" and frame.get_column("allocation").null_count() == frame.height:
        return frame.drop(ALLOCATION_COLUMNS)
    return frame


def _utc(us: np.ndarray) -> pl.Series:
    return pl.Series(us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


@dataclass(frozen=True)
class _DayIds:
    """A day's ids: orders numbered by arrival, children by send time, fills by execution
    time (each id series aligned with the flow's arrays; fills: the kept ones)."""

    order: pl.Series
    child: pl.Series
    fill: pl.Series


def _ids_of_day(tag: str, flow: DayFlow, fill_us: np.ndarray) -> _DayIds:
    o, c = flow.orders, flow.children
    o_rank = np.empty(o["qty"].size, np.int64)
    o_rank[np.argsort(o["arrival"], kind="stable")] = np.arange(o["qty"].size)
    oid = _ids(f"O{tag}-", o["qty"].size, 6).gather(pl.Series(o_rank))
    nc = c["sent"].size
    c_rank = np.empty(nc, np.int64)
    c_rank[np.lexsort((o_rank[c["order"]], c["sent"]))] = np.arange(nc)
    cid = _ids(f"C{tag}-", nc, 7).gather(pl.Series(c_rank))
    nf = fill_us.size
    f_rank = np.empty(nf, np.int64)
    f_rank[np.lexsort((np.arange(nf), fill_us))] = np.arange(nf)
    eid = _ids(f"E{tag}-", nf, 8).gather(pl.Series(f_rank))
    return _DayIds(oid, cid, eid)


def _orders_table(
    uni: Universe, flow: DayFlow, priced: PricedDay, ids: _DayIds, open_us: int
) -> pl.DataFrame:
    o = flow.orders
    return pl.DataFrame({
        "order_id": ids.order, "symbol": _names(uni.symbols, o["symbol"]), "side": _names(SIDE_NAMES, o["side"]),
        "order_qty": o["qty"], "order_type": _names(("MARKET", "LIMIT"), o["is_limit"].astype(np.int64)),
        "limit_price": _nullable(priced.order_limit), "arrival_ts": _ts(open_us, o["arrival"]),
        "end_ts": _ts(open_us, o["end"]), "algo": _names(ALGOS, o["algo"]),
        "urgency": _names(URGENCIES, o["urgency"]), "target_participation": _nullable(o["target"]),
        "allocation": _optional_names(ALLOCATIONS, o["allocation"]),
        "allocation_prob": _nullable(o["allocation_prob"]),
        "broker": _names(uni.brokers, o["broker"]), "trader": _names(uni.traders, o["trader"]),
        "account": _names(uni.accounts, o["account"]), "decision_ts": _ts(open_us, o["decision"]),
    }).sort("arrival_ts", "order_id")  # fmt: skip


def _children_table(
    mics: list[str], flow: DayFlow, priced: PricedDay, ids: _DayIds, open_us: int
) -> pl.DataFrame:
    c = flow.children
    return pl.DataFrame({
        "child_id": ids.child, "order_id": ids.order.gather(pl.Series(c["order"])), "venue": _names(mics, c["venue"]),
        "sent_ts": _ts(open_us, c["sent"]), "qty": c["qty"], "order_type": _names(CHILD_TYPES, c["order_type"]),
        "limit_price": _nullable(priced.child_limit), "tif": _names(("DAY", "IOC"), c["ioc"].astype(np.int64)),
        "end_ts": _ts(open_us, c["end"]),
    }).sort("sent_ts", "child_id")  # fmt: skip


@dataclass(frozen=True)
class _KeptFills:
    """The fills that happened (`PricedDay.fill_keep`): child, exec time (us since the open),
    quantity, venue, flag (the child's style), parent order, symbol, price and fee."""

    child: np.ndarray
    us: np.ndarray
    qty: np.ndarray
    venue: np.ndarray
    flag: np.ndarray
    order: np.ndarray
    symbol: np.ndarray
    price: np.ndarray
    fee: np.ndarray

    @staticmethod
    def of(cfg: SimulationConfig, flow: DayFlow, priced: PricedDay) -> _KeptFills:
        c, f = flow.children, flow.fills
        keep = priced.fill_keep
        child = f["child"][keep]
        qty = f["qty"][keep]
        venue = c["venue"][child]
        flag = c["style"][child]
        rates = np.array([[v.maker_fee, v.taker_fee, v.mid_fee] for v in cfg.venues])
        fee = np.round(rates[venue, flag] * qty, 4)
        order = c["order"][child]
        return _KeptFills(
            child, priced.fill_us[keep], qty, venue, flag, order, flow.orders["symbol"][order],
            priced.fill_price[keep], fee,
        )  # fmt: skip


def _fills_table(
    uni: Universe, mics: list[str], fills: _KeptFills, ids: _DayIds, open_us: int
) -> pl.DataFrame:
    return pl.DataFrame({
        "exec_id": ids.fill, "order_id": ids.order.gather(pl.Series(fills.order)),
        "child_id": ids.child.gather(pl.Series(fills.child)),
        "symbol": _names(uni.symbols, fills.symbol), "venue": _names(mics, fills.venue),
        "exec_ts": _utc(fills.us + open_us),
        "qty": fills.qty, "price": fills.price, "liquidity_flag": _names(FLAGS, fills.flag), "fee": fills.fee,
    }).sort("exec_ts", "exec_id")  # fmt: skip


def _market_tables(
    uni: Universe, mics: list[str], priced: PricedDay, open_us: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The NBBO quotes and the tape."""
    q_sym, q_us, bid, bsz, ask, asz = priced.quotes
    quotes = pl.DataFrame({
        "symbol": _names(uni.symbols, q_sym), "ts": _utc(q_us + open_us),
        "bid_px": bid, "bid_sz": bsz, "ask_px": ask, "ask_sz": asz,
    })  # fmt: skip
    t_sym, t_us, t_px, t_sz, t_v = priced.tape
    tape = pl.DataFrame({
        "symbol": _names(uni.symbols, t_sym), "ts": _utc(t_us + open_us),
        "price": t_px, "size": t_sz, "venue": _names(mics, t_v),
    }).sort("symbol", "ts", maintain_order=True)  # fmt: skip
    return quotes, tape


def _truth_orders(
    uni: Universe, flow: DayFlow, priced: PricedDay, ids: _DayIds, d: date, vol_factor
) -> pl.DataFrame:
    o, ot = flow.orders, priced.order_truth
    return pl.DataFrame({
        "order_id": ids.order, "trade_date": [d] * o["qty"].size, "symbol": _names(uni.symbols, o["symbol"]),
        "daily_volatility": uni.daily_vol[o["symbol"]] * vol_factor[o["symbol"]], "pct_adv": o["pct_adv"],
        "impact_multiplier": o["impact_mult"], "latent_arrival_mid": ot.arrival_mid,
        "participation": ot.participation, "temp_impact_bps": ot.temp_bps,
        "perm_impact_bps": ot.perm_bps, "expected_impact_cost_bps": ot.temp_bps + 0.5 * ot.perm_bps,
        "planned_to_complete": o["complete"], "cancelled": o["cancelled"],
        "true_expected_cost_bps": _nullable(ot.expected_cost_bps),
        "true_cost_sd_bps": _nullable(ot.cost_sd_bps), "true_cost_z": _nullable(ot.cost_z),
        **{f"true_cost_{a}_bps": _nullable(ot.cost_by_algo_bps[:, k]) for k, a in enumerate(ALGOS)},
        **{
            f"true_cost_urgency_{u}_bps": _nullable(ot.cost_by_urgency_bps[:, k])
            for k, u in enumerate(URGENCIES)
        },
        "allocation": _optional_names(ALLOCATIONS, o["allocation"]),
        "allocation_prob": _nullable(o["allocation_prob"]),
    }).sort("order_id")  # fmt: skip


def _truth_fills(
    cfg: SimulationConfig, mics: list[str], priced: PricedDay, fills: _KeptFills, ids: _DayIds,
    d: date,
) -> pl.DataFrame:  # fmt: skip
    keep = priced.fill_keep
    kappa = np.array([v.kappa_bps for v in cfg.venues])
    exp_pi = priced.fill_expected_pi_bps[keep]
    # The expected all-in cost given the quote: fee + half spread - expected improvement
    # (= the expected effective half spread) + the venue's adverse move, held at 60 s.
    fee_bps = fills.fee / (fills.qty * fills.price) * 1e4
    return pl.DataFrame({
        "exec_id": ids.fill, "trade_date": [d] * fills.qty.size, "venue": _names(mics, fills.venue),
        "liquidity_flag": _names(FLAGS, fills.flag),
        "qty": fills.qty, "expected_price_improvement_bps": exp_pi, "kappa_bps": kappa[fills.venue],
        "expected_all_in_cost_bps": fee_bps + priced.fill_half_spread_bps[keep] - exp_pi + kappa[fills.venue],
    }).sort("exec_id")  # fmt: skip


def simulate_day(
    cfg: SimulationConfig, uni: Universe, rng: np.random.Generator, d: date, open_logp: np.ndarray
) -> tuple[SimulatedDay, np.ndarray]:
    """Simulate one trade date; returns it and the closing log prices (next day's start)."""
    n_sym = uni.symbols.size
    vol_factor = np.exp(rng.normal(0.0, 0.25, n_sym))
    volume_factor = np.exp(rng.normal(0.0, 0.3, n_sym)) * vol_factor**0.5
    flow = make_day_flow(cfg, uni, rng, volume_factor)
    onset_s = None if cfg.degradation is None else cfg.degradation.onset_s(d)
    priced = price_day(cfg, uni, rng, flow, open_logp, vol_factor, volume_factor, onset_s)
    open_us = session_open_us(d, cfg.timezone)
    mics = [v.mic for v in cfg.venues]
    fills = _KeptFills.of(cfg, flow, priced)
    ids = _ids_of_day(d.strftime("%Y%m%d"), flow, fills.us)
    quotes, tape = _market_tables(uni, mics, priced, open_us)
    tables = {
        "orders": _orders_table(uni, flow, priced, ids, open_us),
        "child_orders": _children_table(mics, flow, priced, ids, open_us),
        "executions": _fills_table(uni, mics, fills, ids, open_us),
        "quotes": quotes,
        "market_trades": tape,
    }
    symbol_days = pl.DataFrame(
        {
            "symbol": uni.symbols.tolist(),
            "trade_date": [d] * n_sym,
            "open_price": np.exp(open_logp),
            "close_latent_mid": np.exp(priced.close_logp),
            "vol_factor": vol_factor,
            "daily_volatility": uni.daily_vol * vol_factor,
            "volume_factor": volume_factor,
            "background_volume": uni.adv * volume_factor,
        }
    )
    day = SimulatedDay(
        d,
        {name: _conform(name, frame) for name, frame in tables.items()},
        _truth_orders(uni, flow, priced, ids, d, vol_factor),
        _truth_fills(cfg, mics, priced, fills, ids, d),
        symbol_days,
    )
    return day, priced.close_logp


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

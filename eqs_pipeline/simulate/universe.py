"""The static world of a run: instruments with their latent market parameters, and the desk
(brokers, traders, accounts) with its latent skill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from eqs_pipeline.core.contract import INSTRUMENTS

from .config import SimulationConfig

SECTORS = (
    "Technology",
    "Health Care",
    "Financials",
    "Consumer Discretionary",
    "Industrials",
    "Communication Services",
    "Consumer Staples",
    "Energy",
    "Utilities",
    "Materials",
    "Real Estate",
)
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


@dataclass
class Universe:
    """Per-symbol latent parameters (numpy arrays aligned with `symbols`) and the desk."""

    symbols: np.ndarray
    price: np.ndarray
    daily_vol: np.ndarray
    adv: np.ndarray
    tick: np.ndarray
    spread_bps: np.ndarray
    spread_ticks: np.ndarray
    depth_lots: np.ndarray
    sector: np.ndarray
    order_weight: np.ndarray
    brokers: np.ndarray
    broker_skill: np.ndarray
    broker_toxic_tilt: np.ndarray
    traders: np.ndarray
    trader_skill: np.ndarray
    trader_broker: np.ndarray
    accounts: np.ndarray

    def instruments_frame(self, currency: str) -> pl.DataFrame:
        frame = pl.DataFrame(
            {
                "symbol": self.symbols.tolist(),
                "currency": [currency] * len(self.symbols),
                "tick_size": self.tick,
                "adv_shares": self.adv,
                "market": ["US"] * len(self.symbols),
                "sector": self.sector.tolist(),
                "daily_volatility": np.round(self.daily_vol, 6),
                "lot_size": np.full(len(self.symbols), 100, dtype=np.int64),
            }
        )
        return frame.select(pl.col(c).cast(t) for c, t in INSTRUMENTS.polars_schema.items())


def _tickers(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 2-4 letter tickers."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        m = 2 * (n - len(out)) + 8
        lengths = rng.choice([2, 3, 4], size=m, p=[0.08, 0.42, 0.5])
        letters = _LETTERS[rng.integers(0, 26, size=(m, 4))]
        for row, k in zip(letters, lengths, strict=True):
            t = "".join(row[:k])
            if t not in seen:
                seen.add(t)
                out.append(t)
                if len(out) == n:
                    break
    return np.array(out, dtype=object)


def build_universe(cfg: SimulationConfig, rng: np.random.Generator) -> Universe:
    """Draw the instruments and the desk.

    Price is log-normal across names; ADV is heavy-tailed (log-normal, sigma 1.4); daily
    volatility is higher for small, illiquid names; the mean quoted spread in bps widens with
    volatility and narrows with dollar liquidity, floored at one tick (low-priced liquid names
    are tick-constrained).
    """
    n = cfg.symbols
    symbols = _tickers(rng, n)
    price = np.clip(np.exp(rng.normal(np.log(45.0), 0.9, n)), 2.0, 1500.0)
    price = np.round(price, 2)
    adv = np.clip(np.exp(rng.normal(np.log(1.5e6), 1.4, n)), 2e4, 1.5e8)
    adv = np.round(adv / 100.0) * 100.0
    dollar_adv = adv * price
    vol = np.exp(rng.normal(np.log(0.017), 0.3, n)) * (dollar_adv / 1e8) ** -0.08
    vol = np.clip(vol, 0.006, 0.09)
    tick = np.where(price < 1.0, 0.0001, 0.01)
    spread_bps = (0.5 + 6.0 * (vol / 0.02) * (dollar_adv / 1e8) ** -0.4) * np.exp(
        rng.normal(0.0, 0.15, n)
    )
    spread_ticks = np.maximum(spread_bps * price / 1e4 / tick, 1.0)
    spread_bps = spread_ticks * tick / price * 1e4
    depth_lots = np.clip(
        3.0 * (adv / 1e6) ** 0.4 * np.where(spread_ticks < 1.5, 4.0, 1.0), 1.0, 400.0
    )
    sector = np.array(SECTORS, dtype=object)[rng.integers(0, len(SECTORS), n)]
    order_weight = dollar_adv**0.5
    order_weight = order_weight / order_weight.sum()

    nb = cfg.brokers
    brokers = np.array(
        ["ALDER", "BIRCH", "CEDAR", "DOGWOOD", "ELM", "FIR", "GINKGO", "HAZEL"][:nb]
        + [f"BRK{i:02d}" for i in range(8, nb)],
        dtype=object,
    )[:nb]
    broker_skill = rng.normal(0.0, 0.2, nb)
    # One broker's router leans heavily on the toxic pool: its costs show it.
    toxic_tilt = np.ones(nb)
    toxic_tilt[rng.integers(0, nb)] = 4.0
    nt = cfg.traders
    traders = np.array([f"TR{i + 1:02d}" for i in range(nt)], dtype=object)
    trader_skill = rng.normal(0.0, 0.15, nt)
    trader_broker = rng.integers(0, nb, nt)
    accounts = np.array([f"ACCT-{i + 1:03d}" for i in range(cfg.accounts)], dtype=object)
    return Universe(
        symbols=symbols,
        price=price,
        daily_vol=vol,
        adv=adv,
        tick=tick,
        spread_bps=spread_bps,
        spread_ticks=spread_ticks,
        depth_lots=depth_lots,
        sector=sector,
        order_weight=order_weight,
        brokers=brokers,
        broker_skill=broker_skill,
        broker_toxic_tilt=toxic_tilt,
        traders=traders,
        trader_skill=trader_skill,
        trader_broker=trader_broker,
        accounts=accounts,
    )

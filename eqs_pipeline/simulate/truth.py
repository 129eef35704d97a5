"""The truth file: every latent parameter of a run, as a JSON-able dict.

Per-order and per-fill truth are Polars frames (written next to truth.json as Parquet);
`VenueTally` accumulates, day by day, what the per-venue expected values came to over the
fills actually generated (the conditional truth a scorecard's estimates should cover).
"""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import polars as pl

from . import curves
from .config import STYLES, SimulationConfig
from .universe import Universe

TRUTH_VERSION = 1


class VenueTally:
    """Share-weighted sums of per-fill expected price improvement, per venue and flag."""

    def __init__(self) -> None:
        self.frames: list[pl.DataFrame] = []

    def add(self, truth_fills: pl.DataFrame) -> None:
        self.frames.append(
            truth_fills.group_by("venue").agg(
                fills=pl.len(),
                shares=pl.col("qty").sum(),
                pi_x_shares=(pl.col("expected_price_improvement_bps") * pl.col("qty")).sum(),
                cost_x_shares=(pl.col("expected_all_in_cost_bps") * pl.col("qty")).sum(),
                remove_shares=pl.col("qty").filter(pl.col("liquidity_flag") == "REMOVE").sum(),
                remove_pi_x_shares=(pl.col("expected_price_improvement_bps") * pl.col("qty"))
                .filter(pl.col("liquidity_flag") == "REMOVE")
                .sum(),
            )
        )

    def summary(self) -> dict[str, dict]:
        if not self.frames:
            return {}
        total = pl.concat(self.frames).group_by("venue").sum().sort("venue")
        out = {}
        for row in total.iter_rows(named=True):
            out[row["venue"]] = {
                "fills": int(row["fills"]),
                "shares": float(row["shares"]),
                "expected_price_improvement_bps": row["pi_x_shares"] / row["shares"]
                if row["shares"]
                else None,
                "expected_all_in_cost_bps": row["cost_x_shares"] / row["shares"]
                if row["shares"]
                else None,
                "expected_price_improvement_bps_remove": (
                    row["remove_pi_x_shares"] / row["remove_shares"]
                    if row["remove_shares"]
                    else None
                ),
            }
        return out


def _adverse_kernel(cfg: SimulationConfig, h: float) -> float:
    imp = cfg.impact
    if h <= imp.adverse_hold_s:
        return 1.0
    return float(np.exp(-(h - imp.adverse_hold_s) / imp.adverse_decay_s))


def _universe_truth(uni: Universe) -> tuple[dict, dict, dict]:
    """The latent parameters of the symbols, brokers and traders."""
    symbols = {
        str(s): {
            "price": float(uni.price[i]),
            "daily_volatility": float(uni.daily_vol[i]),
            "tick_size": float(uni.tick[i]),
            "mean_spread_bps": float(uni.spread_bps[i]),
            "mean_spread_ticks": float(uni.spread_ticks[i]),
            "adv_shares": float(uni.adv[i]),
            "depth_lots": float(uni.depth_lots[i]),
            "order_weight": float(uni.order_weight[i]),
            "sector": str(uni.sector[i]),
        }
        for i, s in enumerate(uni.symbols)
    }
    brokers = {
        str(b): {
            "skill": float(uni.broker_skill[i]),
            "impact_multiplier": float(np.exp(uni.broker_skill[i])),
            "toxic_venue_tilt": float(uni.broker_toxic_tilt[i]),
        }
        for i, b in enumerate(uni.brokers)
    }
    traders = {
        str(t): {
            "skill": float(uni.trader_skill[i]),
            "impact_multiplier": float(np.exp(uni.trader_skill[i])),
            "main_broker": str(uni.brokers[uni.trader_broker[i]]),
        }
        for i, t in enumerate(uni.traders)
    }
    return symbols, brokers, traders


def build_truth(
    cfg: SimulationConfig,
    uni: Universe,
    dates: list[date],
    tally: VenueTally,
    counts: dict[str, int],
) -> dict:
    """Everything latent about the run. Keys are documented in docs/SIMULATOR.md."""
    realized = tally.summary()
    horizons = (1, 5, 15, 60, 300)
    venues = {}
    for v in cfg.venues:
        row = dataclasses.asdict(v)
        row["styles"] = [STYLES[s] for s in v.styles]
        row["route_weight"] = dict(zip(STYLES, v.route_weight, strict=True))
        row["adverse_move_bps"] = {f"{h}s": v.kappa_bps * _adverse_kernel(cfg, h) for h in horizons}
        row["realized"] = realized.get(v.mic, {"fills": 0, "shares": 0.0})
        venues[v.mic] = row
    symbols, brokers, traders = _universe_truth(uni)
    config = dataclasses.asdict(cfg)
    config["start_date"] = cfg.start_date.isoformat()
    config.pop("venues")
    costs = {
        mic: row["realized"]["expected_all_in_cost_bps"]
        for mic, row in venues.items()
        if row["realized"].get("expected_all_in_cost_bps") is not None
    }
    return {
        "version": TRUTH_VERSION,
        "config": config,
        "trade_dates": [d.isoformat() for d in dates],
        "session": {
            "open": "09:30",
            "close": "16:00",
            "timezone": cfg.timezone,
            "seconds": curves.SESSION_S,
        },
        "impact": dataclasses.asdict(cfg.impact)
        | {
            "temporary": "D * eta * m * sigma * participation**beta, ramp-in ramp_s, decay temp_decay_s after end",
            "permanent": "D * gamma * sigma * q / ADV per fill",
            "adverse": "-D * kappa_v, held adverse_hold_s, then exp decay adverse_decay_s",
        },
        "intraday": {
            "volume": "1 + 2.2 exp(-tau/0.05) + 2.8 exp(-(1-tau)/0.045)",
            "variance": "1 + 4 exp(-tau/0.06) + exp(-(1-tau)/0.05)",
            "spread_multiplier": "1 + 1.6 exp(-tau/0.03)",
            "jumps_per_symbol_day": 0.3,
        },
        "venues": venues,
        # By the share-weighted expected all-in cost of the fills each venue got (lowest first).
        "venue_cost_ranking": sorted(costs, key=costs.get),
        "best_venue_all_in_cost": min(costs, key=costs.get) if costs else None,
        "worst_venue_all_in_cost": max(costs, key=costs.get) if costs else None,
        "symbols": symbols,
        "brokers": brokers,
        "traders": traders,
        "row_counts": counts,
        "files": {
            "orders": "orders/date=YYYY-MM-DD/part-0.parquet",
            "fills": "fills/date=YYYY-MM-DD/part-0.parquet",
            "symbol_days": "symbol_days/date=YYYY-MM-DD/part-0.parquet",
            "relative_to": "the folder holding truth.json (default <landing>/_truth)",
        },
    }

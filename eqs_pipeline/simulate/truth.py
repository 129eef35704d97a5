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
from .algos import SIZE_BUCKETS, AlgoAssignment, dominated, size_bucket
from .config import ALGOS, STYLES, SimulationConfig
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


class AlgoTally:
    """Per size bucket, over the designed orders (those with a true cost under every algo):
    how many orders, how often each algo is the cheapest and the sum of each algo's true
    expected cost; summed day by day, so that the truth can say which algo is cheapest for
    small and for large orders and which costs most on average."""

    def __init__(self, design: AlgoAssignment | None) -> None:
        self.design = design or AlgoAssignment()
        self.frames: list[pl.DataFrame] = []

    def add(self, truth_orders: pl.DataFrame) -> None:
        costs = [f"true_cost_{a}_bps" for a in ALGOS]
        designed = truth_orders.filter(pl.all_horizontal(pl.col(costs).is_not_null()))
        if designed.height == 0:
            return
        matrix = designed.select(costs).to_numpy()
        bucket = size_bucket(self.design, designed.get_column("pct_adv").to_numpy())
        cheapest = matrix.argmin(axis=1)
        frame = {"bucket": bucket, "cheapest": cheapest}
        frame |= {a: matrix[:, k] for k, a in enumerate(ALGOS)}
        self.frames.append(
            pl.DataFrame(frame).group_by("bucket", "cheapest").agg(pl.len(), pl.col(ALGOS).sum())
        )

    def summary(self) -> dict[str, dict]:
        """Per bucket and for all orders: orders, the share each algo is the cheapest, each
        algo's mean true expected cost in bps."""
        if not self.frames:
            return {}
        total = pl.concat(self.frames)
        out = {}
        for name, rows in [
            *((b, total.filter(pl.col("bucket") == k)) for k, b in enumerate(SIZE_BUCKETS)),
            ("all", total),
        ]:
            n = int(rows.get_column("len").sum())
            if n == 0:
                continue
            wins = dict(rows.group_by("cheapest").agg(pl.col("len").sum()).iter_rows())
            out[name] = {
                "orders": n,
                "cheapest_share": {a: wins.get(k, 0) / n for k, a in enumerate(ALGOS)},
                "mean_true_cost_bps": {a: float(rows.get_column(a).sum()) / n for a in ALGOS},
            }
        return out


def algo_design_truth(cfg: SimulationConfig, tally: AlgoTally | None) -> dict | None:
    """The truth of the algo scenario (docs/SIMULATOR.md, "The algo scenario"); None when the
    run does not assign algos."""
    design = cfg.algos
    if design is None:
        return None
    edges = [0.0, *design.size_edges, None]
    realized = tally.summary() if tally is not None else {}

    def modal(bucket: str) -> str | None:
        shares = realized.get(bucket, {}).get("cheapest_share")
        return max(shares, key=shares.get) if shares else None

    means = realized.get("all", {}).get("mean_true_cost_bps")
    return {
        "size_buckets": {
            b: {"min_size_adv": edges[k], "max_size_adv": edges[k + 1]}
            for k, b in enumerate(SIZE_BUCKETS)
        },
        "assignment": {
            b: dict(zip(ALGOS, design.probs[k], strict=True)) for k, b in enumerate(SIZE_BUCKETS)
        },
        "wheel_share": design.wheel_share,
        "wheel_probs": {a: p for a, p in zip(ALGOS, design.wheel_probs, strict=True) if p > 0},
        "dominated": (
            {ALGOS[a]: [ALGOS[b] for b in by] for a, by in dominated(cfg.costs).items()}
            if cfg.costs is not None
            else {}
        ),
        "cheapest_small": modal("small"),
        "cheapest_large": modal("large"),
        "worst_on_average": max(means, key=means.get) if means else None,
        "realized": realized,
    }


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
    algo_tally: AlgoTally | None = None,
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
    if cfg.degradation is not None:
        config["degradation"]["start"] = cfg.degradation.start.isoformat()
    config.pop("venues")
    costs = {
        mic: row["realized"]["expected_all_in_cost_bps"]
        for mic, row in venues.items()
        if row["realized"].get("expected_all_in_cost_bps") is not None
    }
    algo_design = algo_design_truth(cfg, algo_tally)
    return {
        **({"algo_design": algo_design} if algo_design is not None else {}),
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

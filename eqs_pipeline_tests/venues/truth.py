"""Simulated desks with their truth, run through the pure fill/order metrics and venue frames.

The true per-fill all-in cost is built from the simulator's latent parameters:
    fee_bps + (quoted_spread_bps / 2 - expected_price_improvement_bps) + kappa_bps
i.e. the fee, the expected effective half spread given the quote (docs/METRICS.md: D (P - M) / M =
half spread - PI), and the venue's adverse move, which is fully held at 60 s (docs/SIMULATOR.md,
K(60) = 1). Our own impact drift is common to the venues an order uses and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline.simulate import SimulationConfig, simulate
from eqs_pipeline.venues.frames import venue_frames
from eqs_pipeline.venues.routing import DelayInputs, delay_inputs
from eqs_pipeline.venues.settings import VenueSettings


@dataclass
class Desk:
    fills: pl.DataFrame
    children: pl.DataFrame
    tape: pl.DataFrame
    window: tuple
    truth: dict
    delays: DelayInputs


def simulated_desk(cfg: SimulationConfig, settings: VenueSettings | None = None) -> Desk:
    data = simulate(cfg)
    t = {k: v.lazy() for k, v in data.tables.items()}
    fq = fill_quality(t["executions"], t["quotes"], t["orders"]).collect().lazy()
    oq = order_quality(
        t["orders"], fq, t["quotes"], t["market_trades"], data.instruments.lazy()
    ).collect()
    fills, children = venue_frames(fq, t["child_orders"], oq, settings)
    fills = fills.join(
        data.truth_fills.select("exec_id", "expected_price_improvement_bps", "kappa_bps"),
        on="exec_id",
    ).with_columns(
        true_all_in_cost_bps=pl.col("fee_bps").fill_null(0.0)
        + pl.col("quoted_spread_bps") / 2
        - pl.col("expected_price_improvement_bps")
        + pl.col("kappa_bps")
    )
    tape = (
        data.tables["market_trades"]
        .group_by("trade_date", "symbol", "venue")
        .agg(volume=pl.col("size").sum())
    )
    dates = data.trade_dates
    delays = delay_inputs(children, oq, settings)
    return Desk(fills, children, tape, (dates[0], dates[-1], len(dates)), data.truth, delays)

"""The Almgren et al. (2005) expected cost, the default `CostModel`."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from eqs_pipeline.core.settings import CostModelSettings


def almgren_expected_cost_bps(cm: CostModelSettings) -> pl.Expr:
    """Almgren-style expected cost in bps from columns of the order row.

    Needs arrival_spread_bps, daily_volatility, size_pct_adv, participation_rate, duration_s.
    Participation is the realized one where the interval has tape, else the order's size over
    the ADV traded in its duration; it is capped at 1.
    """
    sigma_bps = pl.col("daily_volatility") * 1e4
    duration_frac = pl.max_horizontal(pl.col("duration_s").fill_null(0.0), cm.min_duration_s) / (
        cm.session_seconds
    )
    participation = pl.coalesce(
        pl.col("participation_rate"), pl.col("size_pct_adv") / duration_frac
    ).clip(0.0, 1.0)
    half_spread = pl.col("arrival_spread_bps") / 2
    temporary = cm.eta * sigma_bps * participation.pow(cm.beta)
    permanent = 0.5 * cm.gamma * sigma_bps * pl.col("size_pct_adv")
    return half_spread + temporary + permanent


@dataclass(frozen=True)
class AlmgrenCostModel:
    """`almgren_expected_cost_bps` with the given coefficients."""

    settings: CostModelSettings = field(default_factory=CostModelSettings)
    name: str = "almgren"

    def with_expected_cost(self, orders: pl.LazyFrame) -> pl.LazyFrame:
        return orders.with_columns(expected_cost_bps=almgren_expected_cost_bps(self.settings))

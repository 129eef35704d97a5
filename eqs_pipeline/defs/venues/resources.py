"""Configuration of the venue assets: a `dg.Config` whose defaults come from
`eqs_pipeline.venues.settings.VenueSettings` (one default, documented there and in
docs/VENUES.md). Set it per run in the launchpad (`ops.<asset>.config`)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from eqs_pipeline.stats import Method
from eqs_pipeline.venues.settings import Cluster, VenueSettings

_D = VenueSettings()


class VenueConfig(dg.Config):
    """Window, buckets, intervals, score weights and optimizer bounds of the venue analysis."""

    window_days: int = Field(_D.window_days, description="Trailing trade dates of the window.")
    size_edges_pct_adv: list[float] = Field(
        list(_D.size_edges_pct_adv), description="Order size / ADV (%) edges: small|medium|large."
    )
    liquidity_edges_usd: list[float] = Field(
        list(_D.liquidity_edges_usd), description="Symbol dollar ADV edges: low|mid|high."
    )
    controls: list[str] = Field(
        list(_D.controls),
        description="Conditions held equal besides liquidity x size (additive): spread_bucket, "
        "urgency, time_bucket, child_size_bucket.",
    )
    spread_edges_bps: list[float] = Field(
        list(_D.spread_edges_bps), description="Arrival spread edges (bps): tight|normal|wide."
    )
    session_timezone: str = Field(_D.session_timezone, description="Session clock (IANA zone).")
    time_edges: list[str] = Field(
        list(_D.time_edges), description="Child send time edges (HH:MM): open|midday|close."
    )
    child_size_edges: list[float] = Field(
        list(_D.child_size_edges), description="Child notional edges: small|medium|large."
    )
    all_in_horizon_s: int = Field(_D.all_in_horizon_s, description="Markout horizon of all-in.")
    ci_level: float = Field(_D.ci_level, description="Confidence level of the intervals.")
    cluster: Cluster = Field(_D.cluster, description="Cluster unit: order or symbol_day.")
    ci_method: Method = Field(
        _D.ci_method,
        description="Interval method: conditional (CR2, effective-cluster t; default) or cr1.",
    )
    score_weights: dict[str, float] = Field(
        dict(_D.score_weights), description="Composite score weights per key metric."
    )
    min_fills: int = Field(_D.min_fills, description="Fills needed to rank or re-allocate.")
    capacity_multiple: float = Field(_D.capacity_multiple, description="Capacity bound multiple.")
    cost_uncertainty_penalty: float = Field(
        _D.cost_uncertainty_penalty, description="Standard errors added to costs by the optimizer."
    )
    switching_cost_bps: float = Field(
        _D.switching_cost_bps, description="Optimizer cost per unit of share moved, bps."
    )
    trading_days_per_month: float = Field(_D.trading_days_per_month)

    def settings(self) -> VenueSettings:
        low, high = self.size_edges_pct_adv
        liq_low, liq_high = self.liquidity_edges_usd
        return VenueSettings(
            window_days=self.window_days,
            size_edges_pct_adv=(low, high),
            liquidity_edges_usd=(liq_low, liq_high),
            controls=tuple(self.controls),
            spread_edges_bps=(self.spread_edges_bps[0], self.spread_edges_bps[1]),
            session_timezone=self.session_timezone,
            time_edges=(self.time_edges[0], self.time_edges[1]),
            child_size_edges=(self.child_size_edges[0], self.child_size_edges[1]),
            all_in_horizon_s=self.all_in_horizon_s,
            ci_level=self.ci_level,
            cluster=self.cluster,
            ci_method=self.ci_method,
            score_weights=dict(self.score_weights),
            min_fills=self.min_fills,
            capacity_multiple=self.capacity_multiple,
            cost_uncertainty_penalty=self.cost_uncertainty_penalty,
            switching_cost_bps=self.switching_cost_bps,
            trading_days_per_month=self.trading_days_per_month,
        )

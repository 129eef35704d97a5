"""Configuration of the algo assets: a `dg.Config` whose defaults come from
`eqs_pipeline.algos.settings.AlgoSettings` (one default, documented there and in
docs/ALGOS.md). Set it per run in the launchpad (`ops.algo_window.config`)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from eqs_pipeline.algos.settings import AlgoSettings, Cluster
from eqs_pipeline.stats import Method

_D = AlgoSettings()


class AlgoConfig(dg.Config):
    """Window, buckets, controls, intervals, score weights and selection of the algo analysis."""

    window_days: int = Field(_D.window_days, description="Trailing trade dates of the window.")
    size_edges_pct_adv: list[float] = Field(
        list(_D.size_edges_pct_adv), description="Order size / ADV (%) edges: small|medium|large."
    )
    volatility_edges_bps: list[float] = Field(
        list(_D.volatility_edges_bps),
        description="Daily volatility edges (bps): calm|normal|volatile.",
    )
    spread_edges_bps: list[float] = Field(
        list(_D.spread_edges_bps), description="Arrival spread edges (bps): tight|normal|wide."
    )
    session_timezone: str = Field(_D.session_timezone, description="Session clock (IANA zone).")
    time_edges: list[str] = Field(
        list(_D.time_edges), description="Arrival time edges (HH:MM): open|midday|close."
    )
    controls: list[str] = Field(
        list(_D.controls),
        description="Conditions held equal besides the size bucket (additive): volatility_bucket, "
        "spread_bucket, time_bucket, urgency.",
    )
    difficulty_edges_bps: list[float] = Field(
        list(_D.difficulty_edges_bps), description="Difficulty edges (bps): easy|medium|hard."
    )
    participation_edges: list[float] = Field(
        list(_D.participation_edges), description="Target participation edges: low|medium|high."
    )
    duration_edges_minutes: list[float] = Field(
        list(_D.duration_edges_minutes), description="Instructed duration edges (min)."
    )
    aggressive_limit_half_spreads: float = Field(
        _D.aggressive_limit_half_spreads,
        description="Half spreads beyond the arrival mid that make a limit aggressive.",
    )
    ci_level: float = Field(_D.ci_level, description="Confidence level of the intervals.")
    ci_method: Method = Field(_D.ci_method, description="Interval method: cr1 or conditional.")
    cluster: Cluster = Field(_D.cluster, description="Cluster unit: symbol_day or order.")
    score_weights: dict[str, float] = Field(
        dict(_D.score_weights), description="Score weights per key metric (higher is better)."
    )
    min_orders: int = Field(_D.min_orders, description="Orders an algo needs to be ranked.")
    min_pair_orders: int = Field(_D.min_pair_orders, description="Orders a broker x algo needs.")
    min_support_orders: int = Field(
        _D.min_support_orders, description="Training orders that make an algo a candidate."
    )
    min_saving_bps: float = Field(
        _D.min_saving_bps, description="Expected saving a different algo needs, bps."
    )
    wheel_power: float = Field(_D.wheel_power, description="Power of the wheel's sample size.")
    trading_days_per_month: float = Field(_D.trading_days_per_month)

    def settings(self) -> AlgoSettings:
        def pair(values: list) -> tuple:
            if len(values) != 2:
                raise ValueError(f"bucket edges take two values, not {values}")
            return (values[0], values[1])

        return AlgoSettings(
            window_days=self.window_days,
            size_edges_pct_adv=pair(self.size_edges_pct_adv),
            volatility_edges_bps=pair(self.volatility_edges_bps),
            spread_edges_bps=pair(self.spread_edges_bps),
            session_timezone=self.session_timezone,
            time_edges=pair(self.time_edges),
            controls=tuple(self.controls),  # type: ignore[arg-type]
            difficulty_edges_bps=pair(self.difficulty_edges_bps),
            participation_edges=pair(self.participation_edges),
            duration_edges_minutes=pair(self.duration_edges_minutes),
            aggressive_limit_half_spreads=self.aggressive_limit_half_spreads,
            ci_level=self.ci_level,
            ci_method=self.ci_method,
            cluster=self.cluster,
            score_weights=dict(self.score_weights),
            min_orders=self.min_orders,
            min_pair_orders=self.min_pair_orders,
            min_support_orders=self.min_support_orders,
            min_saving_bps=self.min_saving_bps,
            wheel_power=self.wheel_power,
            trading_days_per_month=self.trading_days_per_month,
        )

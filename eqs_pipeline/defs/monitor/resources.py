"""Configuration of the monitoring assets: a `dg.Config` whose defaults come from
`eqs_pipeline.monitor.settings.MonitorSettings` and `eqs_pipeline.monitor.alerts.AlertSettings`
(one default each, documented there and in docs/MONITORING.md). Set it per run in the
launchpad (`ops.monitor_alerts.config`). Where alerts are delivered is not run
configuration: it is the deployment's, read from the environment (`EQS_ALERT_*`,
`eqs_pipeline.monitor.delivery.ENV`)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from eqs_pipeline.monitor.alerts import AlertSettings
from eqs_pipeline.monitor.settings import MonitorSettings

_D = MonitorSettings()
_A = AlertSettings()


class MonitorConfig(dg.Config):
    """Baseline, detectors and alert lifecycle of the daily monitoring."""

    baseline_days: int = Field(_D.baseline_days, description="Dates in each subject's baseline.")
    baseline_gap_days: int = Field(
        _D.baseline_gap_days, description="Dates skipped between the baseline and the date."
    )
    min_baseline_days: int = Field(
        _D.min_baseline_days, description="Dates of history a subject needs to be scored."
    )
    min_weight: float = Field(_D.min_weight, description="Weight a date needs to be scored.")
    between_day_variance: bool = Field(
        _D.between_day_variance, description="Add the day-to-day variance to the residual's."
    )
    cusum_arl0: float = Field(
        _D.cusum_arl0, description="In-control average run length of the CUSUM (dates)."
    )
    cusum_shift_sd: float = Field(
        _D.cusum_shift_sd, description="Shift (sd) the CUSUM detects fastest."
    )
    ewma_lambda: float = Field(_D.ewma_lambda, description="Weight of the date in the EWMA.")
    ewma_limit_l: float = Field(_D.ewma_limit_l, description="EWMA control limit (sd).")
    static_absolute: dict[str, float] = Field(
        dict(_D.static_absolute), description="metric -> level not to cross."
    )
    static_relative: dict[str, float] = Field(
        dict(_D.static_relative), description="metric -> largest change from the baseline."
    )
    resolve_after_days: int = Field(
        _A.resolve_after_days, description="Scored dates in control that resolve an alert."
    )
    warning_shift_sd: float = Field(_A.warning_shift_sd, description="Shift (sd) of a warning.")
    critical_shift_sd: float = Field(
        _A.critical_shift_sd, description="Shift (sd) of a critical alert."
    )
    warning_cost_per_day: float = Field(
        _A.warning_cost_per_day, description="Cost per day (currency) of a warning."
    )
    critical_cost_per_day: float = Field(
        _A.critical_cost_per_day, description="Cost per day (currency) of a critical alert."
    )

    def settings(self) -> MonitorSettings:
        return MonitorSettings(
            baseline_days=self.baseline_days,
            baseline_gap_days=self.baseline_gap_days,
            min_baseline_days=self.min_baseline_days,
            min_weight=self.min_weight,
            between_day_variance=self.between_day_variance,
            cusum_arl0=self.cusum_arl0,
            cusum_shift_sd=self.cusum_shift_sd,
            ewma_lambda=self.ewma_lambda,
            ewma_limit_l=self.ewma_limit_l,
            static_absolute=dict(self.static_absolute),
            static_relative=dict(self.static_relative),
        )

    def alert_settings(self) -> AlertSettings:
        return AlertSettings(
            resolve_after_days=self.resolve_after_days,
            warning_shift_sd=self.warning_shift_sd,
            critical_shift_sd=self.critical_shift_sd,
            warning_cost_per_day=self.warning_cost_per_day,
            critical_cost_per_day=self.critical_cost_per_day,
        )

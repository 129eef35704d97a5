"""Documented defaults of the degradation detectors (baseline, static thresholds, EWMA and
CUSUM charts, direction of each metric). The Dagster layer exposes the fields through its
config, whose defaults come from here; docs/MONITORING.md explains each choice."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

# Which way a metric gets worse: higher cost is worse, a higher fill rate is better.
Direction = Literal["higher_is_worse", "lower_is_worse"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

# Metrics whose decline is the degradation; every other metric defaults to higher_is_worse
# (costs, cost_z, latency, reject, cancel and quarantine shares).
LOWER_IS_WORSE: tuple[str, ...] = (
    "fill_rate",
    "price_improvement_bps",
    # Markouts are positive when favourable to the trader: a venue turning toxic lowers them.
    "markout_5s_bps",
    "markout_60s_bps",
)


@dataclass(frozen=True)
class MonitorSettings:
    """Everything the detectors need.

    baseline_days: the trailing baseline is the subject's own mean over its last
        `baseline_days` observed dates before the current one (the current date is excluded,
        so a shift cannot hide in its own baseline).
    baseline_gap_days: the baseline skips this many dates just before the current one, so a
        shift that began a few dates ago is measured against its level before the shift, not
        half absorbed into its own baseline while the charts are still accumulating evidence.
    min_baseline_days: a date is scored only once the subject has this many dates of history:
        a subject seen on 3 dates has no baseline to depart from and raises nothing.
    min_weight: a date whose weight (fills, shares, orders) is below this is not scored.
    min_n_eff: a date whose effective number of independent units (`n_eff` of the series: the
        parent orders behind a fill or order metric) is below this is not scored: an algo that
        worked two orders that day says nothing about the algo (4, chosen on simulated desks:
        at 3 stable desks raised far more false alerts; at 5 a degraded venue's day dominated
        by one large order went unscored and its alert came a date later).
    z_cap: the charts read each date's standardized residual capped at +-z_cap (a robust,
        Huber-type chart), so that one absurd date weighs no more than a 5 sd one: it can raise
        an alarm (the CUSUM gains 4.5 from it, h is 4.38) but cannot hold the charts in alarm
        for days after it.
    between_day_variance: add the baseline dates' spread beyond their standard errors
        (day-to-day variation that no fill count removes) to each residual's variance; without
        it a subject whose level wanders from day to day alarms on that wandering.
    cusum_arl0: target in-control average run length of the CUSUM, in scored dates: about one
        false alarm per `cusum_arl0` dates per subject and metric.
    cusum_shift_sd: the shift the CUSUM is tuned to detect fastest, in standard deviations of
        the standardized residual (k = shift / 2).
    ewma_lambda: weight of the current date in the EWMA (0.2: about the last 9 dates count).
    ewma_limit_l: the EWMA's control limit in standard deviations of the EWMA statistic (3.5,
        chosen on simulated desks: at 3 the EWMA alone raised many of the false alerts).
    static_absolute: metric -> level; a date whose value is worse than the level (by the
        metric's direction) is in alarm, whatever its history.
    static_relative: metric -> fraction; a date whose value is worse than its baseline by more
        than this fraction of |baseline| is in alarm.
    directions: metric -> direction; metrics not named here are "higher_is_worse" unless in
        `LOWER_IS_WORSE`.
    """

    baseline_days: int = 20
    baseline_gap_days: int = 10
    min_baseline_days: int = 10
    min_weight: float = 1.0
    min_n_eff: float = 4.0
    z_cap: float = 5.0
    between_day_variance: bool = True
    cusum_arl0: float = 500.0
    cusum_shift_sd: float = 1.0
    ewma_lambda: float = 0.2
    ewma_limit_l: float = 3.5
    static_absolute: dict[str, float] = field(
        # Only the data's health has a level that holds for every desk. A reject share has
        # none: an IOC ping of a dark midpoint pool misses more often than not by design.
        default_factory=lambda: {"quarantine_share": 0.05}
    )
    static_relative: dict[str, float] = field(default_factory=dict)
    directions: dict[str, Direction] = field(
        default_factory=lambda: dict.fromkeys(LOWER_IS_WORSE, "lower_is_worse")
    )

    def __post_init__(self) -> None:
        if self.baseline_days < 2:
            raise ValueError(f"baseline_days must be at least 2, not {self.baseline_days}")
        if self.baseline_gap_days < 0:
            raise ValueError(f"baseline_gap_days must be >= 0, not {self.baseline_gap_days}")
        if not 2 <= self.min_baseline_days <= self.baseline_days:
            raise ValueError(
                f"min_baseline_days must be in [2, baseline_days={self.baseline_days}], "
                f"not {self.min_baseline_days}"
            )
        if not (math.isfinite(self.min_weight) and self.min_weight >= 0):
            raise ValueError(f"min_weight must be finite and >= 0, not {self.min_weight}")
        if not (math.isfinite(self.min_n_eff) and self.min_n_eff >= 0):
            raise ValueError(f"min_n_eff must be finite and >= 0, not {self.min_n_eff}")
        if not self.z_cap > 0:
            raise ValueError(f"z_cap must be > 0, not {self.z_cap}")
        if not (math.isfinite(self.cusum_arl0) and self.cusum_arl0 > 1):
            raise ValueError(f"cusum_arl0 must be finite and > 1, not {self.cusum_arl0}")
        if not (math.isfinite(self.cusum_shift_sd) and self.cusum_shift_sd > 0):
            raise ValueError(f"cusum_shift_sd must be > 0, not {self.cusum_shift_sd}")
        if not 0 < self.ewma_lambda <= 1:
            raise ValueError(f"ewma_lambda must be in (0, 1], not {self.ewma_lambda}")
        if not (math.isfinite(self.ewma_limit_l) and self.ewma_limit_l > 0):
            raise ValueError(f"ewma_limit_l must be > 0, not {self.ewma_limit_l}")
        for metric, level in self.static_absolute.items():
            if not math.isfinite(level):
                raise ValueError(f"static_absolute[{metric!r}] must be finite, not {level}")
        for metric, fraction in self.static_relative.items():
            if not (math.isfinite(fraction) and fraction > 0):
                raise ValueError(f"static_relative[{metric!r}] must be > 0, not {fraction}")
        for metric, direction in self.directions.items():
            if direction not in DIRECTIONS:
                raise ValueError(
                    f"directions[{metric!r}] must be one of {DIRECTIONS}, not {direction!r}"
                )

    def direction(self, metric: str) -> Direction:
        """The direction in which `metric` gets worse."""
        return self.directions.get(metric, "higher_is_worse")

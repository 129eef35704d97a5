"""The degradation detectors: the CUSUM and EWMA recursions and the residuals by hand, h from
the target ARL against published values, false-alarm rates and detection delays on simulated
series (many subjects at once), and the guards against alarming on noise."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.monitor.detectors import (
    cusum_parameters,
    cusum_path,
    detect,
    ewma_path,
    residuals,
    siegmund_arl,
)
from eqs_pipeline.monitor.settings import MonitorSettings

START = dt.date(2025, 1, 1)


def _panel(
    values: np.ndarray, se: float | np.ndarray = 1.0, metric: str = "cost_z"
) -> pl.DataFrame:
    """A subjects x dates matrix of values as a long series frame (weight 100 each)."""
    n_subjects, n_dates = values.shape
    dates = [START + dt.timedelta(days=i) for i in range(n_dates)]
    se_arr = np.broadcast_to(np.asarray(se, dtype=np.float64), values.shape)
    return pl.DataFrame(
        {
            "dimension": "venue",
            "subject": np.repeat([f"V{i:05d}" for i in range(n_subjects)], n_dates),
            "metric": metric,
            "trade_date": dates * n_subjects,
            "value": values.ravel(),
            "se": se_arr.ravel(),
            "weight": 100.0,
        }
    )


def test_cusum_path_by_hand() -> None:
    # k = 0.5, h = 2.5: S = 0, 1.0, 2.5 (not > h), 1.5, (NaN: carried), 4.0 -> alarm, reset,
    # then 0.5 from 0.
    z = np.array([[0.2, 1.5, 2.0, -0.5, np.nan, 3.0, 1.0]])
    stat, alarm = cusum_path(z, k=0.5, h=2.5)
    np.testing.assert_allclose(stat[0], [0.0, 1.0, 2.5, 1.5, np.nan, 4.0, 0.5])
    assert alarm[0].tolist() == [False, False, False, False, False, True, False]


def test_ewma_path_by_hand() -> None:
    # lam = 0.5, L = 2: E = 0.5, 1.25, (NaN), 0.125; sigma_n = sqrt(1/3 (1 - 0.25^n)) over the
    # scored dates n = 1, 2, 3: limits 1.0, 1.1180, 1.1456.
    z = np.array([[1.0, 2.0, np.nan, -1.0]])
    stat, limit, alarm = ewma_path(z, lam=0.5, limit_l=2.0)
    np.testing.assert_allclose(stat[0], [0.5, 1.25, np.nan, 0.125])
    expected = [2 * math.sqrt((1 - 0.25**n) / 3) for n in (1, 2)]
    np.testing.assert_allclose(limit[0], [*expected, np.nan, 2 * math.sqrt((1 - 0.25**3) / 3)])
    assert alarm[0].tolist() == [False, True, False, False]


@pytest.mark.parametrize(
    ("between_day", "metric", "expected_z"),
    [
        # baseline 2, s^2 = 1 over n = 3: baseline_var = 1/3; z = 3 / sqrt(0.25 + 1/3)
        (False, "cost_z", 3 / math.sqrt(0.25 + 1 / 3)),
        # plus the excess max(0, 1 - 0.25) = 0.75
        (True, "cost_z", 3 / math.sqrt(0.25 + 1 / 3 + 0.75)),
        # a higher fill rate is better: the same rise is a negative (better) residual
        (False, "fill_rate", -3 / math.sqrt(0.25 + 1 / 3)),
    ],
)
def test_residual_by_hand(between_day: bool, metric: str, expected_z: float) -> None:
    settings = MonitorSettings(
        baseline_days=3, min_baseline_days=3, baseline_gap_days=0, between_day_variance=between_day
    )
    frame = residuals(_panel(np.array([[1.0, 2.0, 3.0, 5.0]]), se=0.5, metric=metric), settings)
    assert frame["baseline"].to_list()[:3] == [None, None, None]
    assert frame["baseline"][3] == pytest.approx(2.0)
    assert frame["z"].to_list()[:3] == [None, None, None]
    # The ratio is Student's t with n - 1 = 2 degrees of freedom (the scale is estimated from
    # the 3 baseline dates): z is the normal score of its tail probability.
    assert frame["z"][3] == pytest.approx(_normal_score(expected_z, 2))


def _normal_score(t: float, df: float) -> float:
    from scipy import stats

    return float(stats.norm.isf(stats.t.sf(t, df)) if t > 0 else stats.norm.ppf(stats.t.cdf(t, df)))


def test_baseline_skips_the_gap_days() -> None:
    # gap 1: date 5's baseline is dates 1-3 (1, 2, 3), not 2-4.
    settings = MonitorSettings(baseline_days=3, min_baseline_days=3, baseline_gap_days=1)
    frame = residuals(_panel(np.array([[1.0, 2.0, 3.0, 10.0, 4.0]])), settings)
    assert frame["baseline"].to_list()[:4] == [None] * 4
    assert frame["baseline"][4] == pytest.approx(2.0)


def test_h_from_arl0_matches_published_values() -> None:
    # Montgomery, Introduction to Statistical Quality Control, table "ARL performance of the
    # tabular CUSUM with k = 1/2": the two-sided chart's in-control ARL is 168 at h = 4 and
    # 465 at h = 5; each one-sided side runs twice as long (1/ARL = 1/ARL+ + 1/ARL-).
    assert siegmund_arl(0.5, 4.0) == pytest.approx(2 * 168, rel=0.01)
    assert siegmund_arl(0.5, 5.0) == pytest.approx(2 * 465, rel=0.01)
    k, h = cusum_parameters(2 * 168, 1.0)
    assert (k, h) == (0.5, pytest.approx(4.0, abs=0.02))
    # The textbook k = 0.5, h = 4.77 chart: two-sided ARL0 370, so one side 740.
    assert cusum_parameters(740, 1.0)[1] == pytest.approx(4.77, abs=0.01)
    # And the root reproduces its target.
    for arl0, shift in ((500, 1.0), (200, 2.0), (1000, 0.5)):
        k, h = cusum_parameters(arl0, shift)
        assert k == shift / 2
        assert siegmund_arl(k, h) == pytest.approx(arl0, rel=1e-8)


def test_cusum_false_alarm_rate_is_one_over_arl0() -> None:
    # 2000 subjects x 250 dates of in-control N(0, 1) residuals: the alarms per subject-date
    # (the chart restarts after each) are 1 / ARL0 within 4 binomial standard deviations.
    arl0 = 500.0
    k, h = cusum_parameters(arl0, 1.0)
    z = np.random.default_rng(7).standard_normal((2000, 250))
    _, alarm = cusum_path(z, k, h)
    n, p = z.size, 1 / arl0
    bound = 4 * math.sqrt(n * p * (1 - p))
    assert abs(alarm.sum() - n * p) < bound, (alarm.sum(), n * p)


def test_cusum_delay_on_a_one_sd_shift_matches_siegmund() -> None:
    # From the first shifted date, the mean delay to the first alarm is the out-of-control
    # ARL, Siegmund's 9.1 dates at k = 0.5 and ARL0 = 500.
    k, h = cusum_parameters(500.0, 1.0)
    z = np.random.default_rng(8).standard_normal((2000, 60)) + 1.0
    _, alarm = cusum_path(z, k, h)
    assert alarm.any(axis=1).all()
    delay = alarm.argmax(axis=1) + 1
    assert delay.mean() == pytest.approx(siegmund_arl(k, h, shift=1.0), abs=0.6)


def test_detect_in_control_stays_under_the_false_alarm_target() -> None:
    # Through the whole path (estimated baselines, standard errors): the target is at
    # most 1 false alarm per 100 subject-dates. The baseline's own error is shared by the
    # dates it scores, so the CUSUM's rate sits near, not at, 1 / ARL0 (~1.3x, measured).
    values = np.random.default_rng(9).standard_normal((1000, 200))
    out = detect(_panel(values))
    rates = dict(out.group_by("detector").agg(pl.col("in_alarm").mean()).iter_rows())
    assert set(rates) == {"cusum", "ewma"}
    assert rates["cusum"] < 0.01 and rates["ewma"] < 0.01
    assert 0.5 / 500 < rates["cusum"] < 2 / 500


def test_detect_finds_a_one_sd_shift_against_the_trailing_baseline() -> None:
    onset = 40
    values = np.random.default_rng(10).standard_normal((1000, 70))
    values[:, onset:] += 1.0
    out = detect(_panel(values)).filter(pl.col("detector") == "cusum", pl.col("in_alarm"))
    before = out.filter(pl.col("trade_date") < START + dt.timedelta(days=onset))
    assert before.height < 0.01 * 1000 * (onset - 30)  # scored from date 31
    first = (
        out.filter(pl.col("trade_date") >= START + dt.timedelta(days=onset))
        .group_by("subject")
        .agg(pl.col("trade_date").min())
    )
    delay = (first["trade_date"] - (START + dt.timedelta(days=onset))).dt.total_days() + 1
    assert first.height >= 0.85 * 1000  # within the 30 dates after the onset
    assert delay.median() <= 10


def test_a_large_shift_with_a_worse_direction_alarms_at_once() -> None:
    # A fill rate that drops by 10 standard errors: the CUSUM alarms on the first dropped
    # date (it reads z capped at 5, and 5 - k = 4.5 > h), the EWMA by the second; the same
    # rise does not (a higher fill rate is better).
    rng = np.random.default_rng(11)
    drop = 0.9 + 0.01 * rng.standard_normal((2, 40))
    drop[0, 30:] -= 0.1
    drop[1, 30:] += 0.1
    out = detect(_panel(drop, se=0.01, metric="fill_rate")).filter(pl.col("in_alarm"))
    day = START + dt.timedelta(days=30)
    dropped = out.filter(pl.col("subject") == "V00000", pl.col("trade_date") >= day)
    first = dropped.group_by("detector").agg(pl.col("trade_date").min())
    first = dict(first.iter_rows())
    assert first["cusum"] == day and first["ewma"] <= day + dt.timedelta(1)
    assert out.filter(pl.col("subject") == "V00001", pl.col("trade_date") >= day).is_empty()


def test_a_thin_date_is_not_scored() -> None:
    # A date whose effective number of orders is below min_n_eff says nothing: no z, however
    # far its value lies.
    values = np.array([[0.0, 0.1] * 15 + [50.0, 50.0]])
    thin = _panel(values).with_columns(
        n_eff=pl.when(pl.col("value") > 10).then(2.0).otherwise(20.0)
    )
    assert not detect(thin)["in_alarm"].any()
    assert detect(thin.with_columns(n_eff=pl.lit(20.0)))["in_alarm"].any()


def test_no_alarm_on_noise_with_few_dates_or_a_huge_se() -> None:
    rng = np.random.default_rng(12)
    # 9 dates: below min_baseline_days of history, nothing is scored, a wild last date too.
    short = _panel(np.array([[0.0] * 8 + [50.0]]))
    assert detect(short).is_empty()
    # A venue with a handful of fills a day: its level swings by ~10 bps around a constant
    # truth, and its se says so (50 bps). With a tiny se the same series alarms.
    swings = 10.0 * rng.standard_normal((1, 120))
    settings = MonitorSettings(between_day_variance=False)
    assert not detect(_panel(swings, se=50.0), settings)["in_alarm"].any()
    assert detect(_panel(swings, se=0.01), settings)["in_alarm"].any()
    # A date below min_weight is not scored at all.
    light = _panel(np.array([[0.0, 0.1] * 15 + [50.0]])).with_columns(
        weight=pl.when(pl.col("value") > 10).then(0.5).otherwise(100.0)
    )
    out = detect(light)
    assert out["trade_date"].max() < START + dt.timedelta(days=30)


def test_static_thresholds_and_evidence() -> None:
    settings = MonitorSettings(
        baseline_days=3,
        min_baseline_days=3,
        baseline_gap_days=0,
        static_absolute={"quarantine_share": 0.05, "fill_rate": 0.8},
        static_relative={"quarantine_share": 0.5},
    )
    quarantine = _panel(np.array([[0.02, 0.02, 0.02, 0.04, 0.06]]), metric="quarantine_share")
    fills = _panel(np.array([[0.9, 0.7]]), metric="fill_rate")
    out = detect(pl.concat([quarantine, fills]), settings)
    static = out.filter(pl.col("detector").cast(pl.String).str.starts_with("static"))
    got = {
        (m, str(d), t.day): a
        for m, d, t, a in static.select("metric", "detector", "trade_date", "in_alarm").iter_rows()
    }
    assert got[("quarantine_share", "static_absolute", 4)] is False
    assert got[("quarantine_share", "static_absolute", 5)] is True
    # date 4: 0.04 against the baseline 0.02 is +100% > 50%
    assert got[("quarantine_share", "static_relative", 4)] is True
    assert got[("fill_rate", "static_absolute", 1)] is False
    assert got[("fill_rate", "static_absolute", 2)] is True
    row = out.filter(
        pl.col("detector") == "static_relative", pl.col("trade_date") == START + dt.timedelta(3)
    ).row(0, named=True)
    assert row["baseline"] == pytest.approx(0.02)
    assert row["statistic"] == pytest.approx(1.0)
    assert row["threshold"] == pytest.approx(0.5)
    assert row["recent_level"] == pytest.approx(0.04) and row["weight"] == 100.0


def test_cusum_evidence_quotes_the_run_level() -> None:
    # Baseline 0 (quiet dates, gap 3; scored from date 14): t = 0, 2, 10 at se 0.1, z their
    # normal scores under t with 9 degrees of freedom (z10 is under the cap of 5), so
    # S = 0, z2 - 0.5, z2 - 0.5 + z10 - 0.5 > h. The recent level is the mean over the CUSUM's
    # run since S last stood at 0: (0.2 + 1.0) / 2, not the quiet date's 0 too.
    settings = MonitorSettings(baseline_days=10, min_baseline_days=10, baseline_gap_days=3)
    values = np.array([[0.0] * 14 + [0.2, 1.0]])
    out = detect(_panel(values, se=0.1), settings).filter(pl.col("detector") == "cusum")
    z2, z10 = _normal_score(2.0, 9), _normal_score(10.0, 9)
    assert z10 < 5.0
    assert out["statistic"].to_list() == pytest.approx([0.0, z2 - 0.5, z2 + z10 - 1.0])
    assert out["in_alarm"].to_list() == [False, False, True]
    last = out.row(-1, named=True)
    assert last["threshold"] == pytest.approx(cusum_parameters(500, 1.0)[1])
    assert last["baseline"] == 0.0 and last["z"] == pytest.approx(_normal_score(10.0, 9))
    assert last["recent_level"] == pytest.approx(0.6)
    assert last["value"] == 1.0 and last["se"] == 0.1 and last["weight"] == 100.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("baseline_days", 1, "baseline_days must be at least 2"),
        ("min_baseline_days", 30, "min_baseline_days must be in"),
        ("baseline_gap_days", -1, "baseline_gap_days must be >= 0"),
        ("min_weight", -1.0, "min_weight must be finite"),
        ("min_n_eff", -1.0, "min_n_eff must be finite"),
        ("z_cap", 0.0, "z_cap must be > 0"),
        ("cusum_arl0", 1.0, "cusum_arl0 must be finite and > 1"),
        ("cusum_shift_sd", 0.0, "cusum_shift_sd must be > 0"),
        ("ewma_lambda", 1.5, "ewma_lambda must be in"),
        ("ewma_limit_l", 0.0, "ewma_limit_l must be > 0"),
        ("static_absolute", {"x": math.nan}, "static_absolute"),
        ("static_relative", {"x": 0.0}, "static_relative"),
        ("directions", {"x": "up"}, "directions"),
    ],
)
def test_settings_reject_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MonitorSettings(**{field: value})


def test_detectors_do_not_import_scipy_at_load() -> None:
    code = "import sys, eqs_pipeline.monitor.detectors; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_favourable_metrics_degrade_downwards() -> None:
    """Fill rate, price improvement and markouts are positive when good: their decline alarms;
    a cost's rise does."""
    directions = MonitorSettings().directions
    for metric in ("fill_rate", "price_improvement_bps", "markout_5s_bps", "markout_60s_bps"):
        assert directions[metric] == "lower_is_worse", metric
    assert "cost_vs_expected_bps" not in directions  # the default: higher is worse


@pytest.mark.parametrize(
    ("arl0", "shift_sd"), [(2.0, 0.1), (500.0, 1.0), (370.0, 2.0), (138_000.0, 2.0), (1e9, 1.0)]
)
def test_h_reaches_the_target_arl_on_both_sides_of_the_underflow(arl0, shift_sd) -> None:
    # Lambert's W where e^-(1 + c) is representable, the iteration where it underflows
    # (c = 2 k^2 arl0 > 700: the last two): both solve Siegmund's equation.
    k, h = cusum_parameters(arl0, shift_sd)
    assert k == shift_sd / 2 and h > 0
    assert siegmund_arl(k, h) == pytest.approx(arl0, rel=1e-9)

"""Daily quality series (weights, standard errors, the orders a series needs) and their
forecasts: the next trade dates, nested intervals, a level that moved."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.costmodel.trends import (
    TrendSettings,
    daily_series,
    forecast_trends,
    next_trade_dates,
)


def _orders(days: int = 30, per_day: int = 40, seed: int = 0) -> pl.DataFrame:
    """ALGO_A's cost_z drifts up by 0.05 a day; ALGO_B's stays at 0."""
    rng = np.random.default_rng(seed)
    rows = []
    d0 = date(2026, 1, 5)
    dates = [d for d in (d0 + timedelta(days=k) for k in range(2 * days)) if d.weekday() < 5]
    for k, d in enumerate(dates[:days]):
        for i in range(per_day):
            algo = "ALGO_A" if i % 2 == 0 else "ALGO_B"
            level = 0.05 * k if algo == "ALGO_A" else 0.0
            rows.append(
                {"trade_date": d, "order_id": f"O{k}-{i}", "algo": algo, "broker": "B1",
                 "cost_z": level + rng.normal(), "cost_vs_expected_bps": 10 * rng.normal()}
            )  # fmt: skip
    return pl.DataFrame(rows)


def test_daily_means_weights_and_thresholds() -> None:
    orders = pl.DataFrame({
        "trade_date": [date(2026, 1, 5)] * 3, "order_id": ["a", "b", "c"],
        "algo": ["X", "X", "Y"], "broker": ["B", "B", "B"],
        "cost_z": [1.0, 3.0, 10.0], "cost_vs_expected_bps": [None, 2.0, 4.0],
    })  # fmt: skip
    shares = pl.DataFrame({
        "trade_date": [date(2026, 1, 5)] * 3, "order_id": ["a", "b", "b"],
        "venue": ["V1", "V1", "V2"], "share": [1.0, 0.25, 0.75],
    })  # fmt: skip
    s = daily_series(orders, shares, TrendSettings(min_orders=1.0, min_daily_orders=1.0))

    def value(dimension: str, subject: str, metric: str = "cost_z") -> dict:
        return s.filter(
            (pl.col("dimension") == dimension) & (pl.col("subject") == subject)
            & (pl.col("metric") == metric)
        ).row(0, named=True)  # fmt: skip

    assert value("desk", "all")["value"] == pytest.approx(14 / 3)
    assert value("algo", "X")["value"] == pytest.approx(2.0)
    # Weighted sd 1 over an effective size of 2 orders.
    assert value("algo", "X")["std_error"] == pytest.approx(np.sqrt(1.0 / 2.0))
    assert value("venue", "V1")["value"] == pytest.approx((1.0 + 0.25 * 3.0) / 1.25)
    assert value("venue", "V1")["orders"] == pytest.approx(1.25)
    assert value("desk", "all", "cost_vs_expected_bps")["orders"] == 2.0  # the null left out
    few = daily_series(orders, shares, TrendSettings(min_orders=2.0, min_daily_orders=1.0))
    assert set(few.filter(pl.col("dimension") == "algo")["subject"]) == {"X"}


def test_forecasts_follow_the_level_on_the_next_trade_dates() -> None:
    orders = _orders()
    settings = TrendSettings(min_orders=50.0)
    series = daily_series(orders, pl.DataFrame(schema={"trade_date": pl.Date, "order_id": pl.String,
                          "venue": pl.String, "share": pl.Float64}), settings)  # fmt: skip
    out, coverage = forecast_trends(series, settings)
    last = orders["trade_date"].max()
    assert sorted(set(out["trade_date"])) == next_trade_dates(last, 5)
    assert (out["as_of"] == last).all() and set(out["horizon"]) == {1, 2, 3, 4, 5}
    nested = (out["lo_95"] <= out["lo_80"]) & (out["lo_80"] <= out["forecast"])
    assert nested.all() and (out["forecast"] <= out["hi_80"]).all()
    z = out.filter((pl.col("metric") == "cost_z") & (pl.col("horizon") == 1))
    a = z.filter(pl.col("subject") == "ALGO_A").row(0, named=True)
    b = z.filter(pl.col("subject") == "ALGO_B").row(0, named=True)
    assert a["forecast"] > 1.0 and abs(b["forecast"]) < 0.5  # A's level rose to about 1.45
    assert coverage["forecasts"] > 0 and 0.0 <= coverage["coverage_95"] <= 1.0


def test_next_trade_dates_skip_weekends() -> None:
    assert next_trade_dates(date(2026, 12, 4), 3) == [
        date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 9)
    ]  # fmt: skip

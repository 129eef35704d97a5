"""`monitor.series.metric_series`: hand-computed values and standard errors on a tiny desk (four
fills on two venues and two algos), the table's schema, the golden small desk's date with every
dimension, and the series fed to the detectors."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from eqs_pipeline.monitor.detectors import detect
from eqs_pipeline.monitor.series import DIMENSIONS, metric_series
from eqs_pipeline.tables.monitor import METRIC_SERIES
from eqs_pipeline.tables.schemas import schema, validate_frame

DAY = date(2026, 11, 2)
T0 = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SCHEMA = schema(METRIC_SERIES)


def _ms(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


@pytest.fixture(scope="module")
def tiny() -> pl.DataFrame:
    """Orders O1 (A1, 500 shares, arrival mid 100) and O2 (A2, 1000 shares, mid 50); children
    c1-c6; fills f1-f4 (f3 has no prior quote). A row of another date must be ignored."""
    fills = pl.DataFrame(
        {
            "exec_id": ["f1", "f2", "f3", "f4", "old"],
            "trade_date": [DAY] * 4 + [date(2026, 10, 30)],
            "order_id": ["O1", "O2", "O1", "O2", "O1"],
            "child_id": ["c1", "c2", "c3", "c4", "c1"],
            "symbol": ["XYZ"] * 5,
            "venue": ["V1", "V1", "V2", "V2", "V1"],
            "algo": ["A1", "A2", "A1", "A2", "A1"],
            "broker": ["B1"] * 5,
            "exec_ts": [_ms(1), _ms(3), _ms(60_000), _ms(0.5), _ms(1)],
            "qty": [100.0, 300.0, 200.0, 200.0, 9_999.0],
            "price": [100.0, 50.0, 100.0, 50.0, 1.0],
            "effective_spread_bps": [2.0, 4.0, None, 1.0, 99.0],
            "price_improvement_bps": [0.0, 1.0, None, 0.0, 9.0],
            "markout_5s_bps": [1.0, -1.0, 2.0, 0.0, 9.0],
            "markout_60s_bps": [1.0, -1.0, 2.0, 0.0, 9.0],
        }
    )
    orders = pl.DataFrame(
        {
            "order_id": ["O1", "O2"],
            "trade_date": [DAY, DAY],
            "symbol": ["XYZ", "XYZ"],
            "algo": ["A1", "A2"],
            "broker": ["B1", "B1"],
            "order_qty": [500.0, 1000.0],
            "filled_qty": [300.0, 500.0],
            "fill_rate": [0.6, 0.5],
            "arrival_mid": [100.0, 50.0],
            "cost_vs_expected_bps": [4.0, 1.0],
            "cost_z": [1.0, None],
            "expected_cost_source": ["cm-20261030-abc", "cm-20261030-abc"],
        }
    )
    children = pl.DataFrame(
        {
            "child_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "order_id": ["O1", "O2", "O1", "O2", "O2", "O2"],
            "venue": ["V1", "V1", "V2", "V2", "V2", "V1"],
            "sent_ts": [T0] * 6,
            "qty": [100.0, 400.0, 400.0, 200.0, 300.0, 100.0],
            "tif": ["IOC", "IOC", "DAY", "IOC", "IOC", "DAY"],
            "trade_date": [DAY] * 6,
        }
    )
    return metric_series(fills, orders, children, 3, 200, DAY)


def _row(series: pl.DataFrame, dimension: str, subject: str, metric: str) -> dict:
    rows = series.filter(
        (pl.col("dimension") == dimension)
        & (pl.col("subject") == subject)
        & (pl.col("metric") == metric)
    )
    assert rows.height == 1, (dimension, subject, metric)
    return rows.row(0, named=True)


# (dimension, subject, metric, value, se, weight, count), each computed by hand. se is the
# cluster-robust (CR1) one, clusters = parent orders: se^2 = G / (G - 1) x sum over orders of
# (S_g - mean W_g)^2 / W^2 (W_g, S_g: the order's weight and weighted sum); 0 for one order.
EXPECTED = [
    # V1: f1 (O1, 100 x 2) and f2 (O2, 300 x 4): mean 3.5; (100 x 1.5)^2 + (300 x 0.5)^2 =
    # 45,000; / 400^2 x 2 = 0.5625.
    ("venue", "V1", "effective_spread_bps", 3.5, 0.75, 400.0, 2),
    ("venue", "V2", "effective_spread_bps", 1.0, 0.0, 200.0, 1),  # f3 has no prior quote
    ("algo", "A1", "effective_spread_bps", 2.0, 0.0, 100.0, 1),
    # A2: f2 and f4, both of O2: (300 x 4 + 200 x 1) / 500 = 2.8; one order, se 0.
    ("algo", "A2", "effective_spread_bps", 2.8, 0.0, 500.0, 2),
    # markout: all four fills, (100 - 300 + 400 + 0) / 800 = 0.25.
    ("desk", "all", "markout_5s_bps", 0.25, None, 800.0, 4),
    # latency of IOC fills only: V1 fills 1 (O1) and 3 ms (O2) (f3's DAY child rests, not
    # counted): (1 + 1) / 2^2 x 2 = 1.
    ("venue", "V1", "latency_ms", 2.0, 1.0, 2.0, 2),
    ("venue", "V2", "latency_ms", 0.5, 0.0, 1.0, 1),
    # reject share: IOC quantity unfilled; V1: c1 (O1) 0 of 100, c2 (O2) 100 of 400: 0.2;
    # (0 - 20)^2 + (100 - 80)^2 = 800, / 500^2 x 2 = 0.0064.
    ("venue", "V1", "reject_share", 0.2, 0.08, 500.0, 2),
    ("venue", "V2", "reject_share", 0.6, 0.0, 500.0, 2),  # c4 and c5, both of O2
    # cancel share: DAY quantity unfilled; V2's c3 filled 200 of 400.
    ("venue", "V2", "cancel_share", 0.5, 0.0, 400.0, 1),
    ("venue", "V1", "cancel_share", 1.0, 0.0, 100.0, 1),
    # venue fill rate over its children: (100 + 300 + 0) / 600.
    ("venue", "V1", "fill_rate", 400 / 600, None, 600.0, 3),
    # desk fill rate over orders: 800 / 1500; O1 500 x (0.6 - 8/15) = 100/3, O2 -100/3:
    # 2 (100/3)^2 / 1500^2 x 2, se 2/45.
    ("desk", "all", "fill_rate", 0.8 / 1.5, 2 / 45, 1500.0, 2),
    # arrival-notional-weighted: 50,000 each, (4 + 1) / 2; 2 (50,000 x 1.5)^2 / 100,000^2 x 2.
    ("desk", "all", "cost_vs_expected_bps", 2.5, 1.5, 100_000.0, 2),
    ("desk", "all", "cost_z", 1.0, 0.0, 1.0, 1),  # O2 has no cost_z
    ("desk", "all", "quarantine_share", 3 / 200, math.sqrt(0.015 * 0.985 / 200), 200.0, 200),
]


@pytest.mark.parametrize(
    ("dimension", "subject", "metric", "value", "se", "weight", "count"), EXPECTED
)
def test_hand_computed(tiny, dimension, subject, metric, value, se, weight, count) -> None:
    row = _row(tiny, dimension, subject, metric)
    assert row["value"] == pytest.approx(value, abs=1e-12)
    if se is not None:
        assert row["se"] == pytest.approx(se, abs=1e-12)
    assert (row["weight"], row["count"]) == (pytest.approx(weight), count)


def test_pairs_and_weight_units(tiny) -> None:
    """Order metrics have no venue row (an order spans venues); quarantine is the desk's."""
    pairs = set(tiny.select("dimension", "metric").unique().iter_rows())
    assert ("venue", "cost_z") not in pairs and ("venue", "fill_rate") in pairs
    assert {d for d, m in pairs if m == "quarantine_share"} == {"desk"}
    units = dict(tiny.select("metric", "weight_unit").unique().iter_rows())
    assert units["cost_vs_expected_bps"] == "arrival_notional" and units["latency_ms"] == "fills"


def test_notional_is_the_subjects_traded_notional(tiny) -> None:
    """Each subject's fills of the date (the other
    date's fill left out), on every row of that subject, the desk's over all fills."""
    notional = dict(
        tiny.select(pl.concat_str("dimension", "subject", separator="/"), "notional")
        .unique()
        .iter_rows()
    )
    assert notional["venue/V1"] == pytest.approx(100 * 100 + 300 * 50)
    assert notional["venue/V2"] == pytest.approx(200 * 100 + 200 * 50)
    assert notional["algo/A1"] == pytest.approx(100 * 100 + 200 * 100)
    assert notional["desk/all"] == pytest.approx(10_000 + 15_000 + 20_000 + 10_000)


def test_cost_rows_only_where_a_trained_model_priced() -> None:
    """An order priced by the formula has no cost row (its expectation is not calibrated); its
    fill rate counts."""
    orders = pl.DataFrame(
        {
            "order_id": ["O1", "O2"],
            "trade_date": [DAY, DAY],
            "symbol": ["XYZ", "XYZ"],
            "algo": ["A1", "A1"],
            "broker": ["B1", "B1"],
            "order_qty": [100.0, 100.0],
            "fill_rate": [1.0, 0.5],
            "arrival_mid": [10.0, 10.0],
            "cost_vs_expected_bps": [2.0, 50.0],
            "cost_z": [0.5, 9.0],
            "expected_cost_source": ["cm-1", "formula:almgren"],
        }
    )
    fills = pl.DataFrame(
        schema={
            "trade_date": pl.Date, "order_id": pl.String, "child_id": pl.String, "venue": pl.String,
            "algo": pl.String, "broker": pl.String, "symbol": pl.String,
            "exec_ts": pl.Datetime("us", "UTC"), "qty": pl.Float64, "price": pl.Float64,
            "effective_spread_bps": pl.Float64, "price_improvement_bps": pl.Float64,
            "markout_5s_bps": pl.Float64, "markout_60s_bps": pl.Float64,
        }
    )  # fmt: skip
    children = pl.DataFrame(
        schema={
            "trade_date": pl.Date, "child_id": pl.String, "order_id": pl.String,
            "venue": pl.String, "sent_ts": pl.Datetime("us", "UTC"), "qty": pl.Float64,
            "tif": pl.String,
        }
    )  # fmt: skip
    desk = metric_series(fills, orders, children, 0, 0, DAY, ("desk",))
    value = dict(desk.select("metric", "value").iter_rows())
    assert value["cost_z"] == 0.5 and value["cost_vs_expected_bps"] == 2.0
    assert value["fill_rate"] == 0.75


def test_schema(tiny) -> None:
    """The frame is the table's; a negative standard error is not."""
    assert validate_frame(SCHEMA, tiny) == []
    broken = tiny.with_columns(se=pl.when(pl.int_range(pl.len()) == 0).then(-1.0).otherwise("se"))
    assert {c["check"] for c in validate_frame(SCHEMA, broken)} >= {"se_not_negative"}


@pytest.fixture(scope="module")
def golden() -> pl.DataFrame:
    """The golden small desk's first trade date."""
    read = {
        name: pl.read_parquet(GOLDEN / f"{name}.parquet")
        for name in ("quality.fill_quality", "quality.order_quality", "staging.child_orders")
    }
    day = read["quality.fill_quality"]["trade_date"].min()
    return metric_series(
        read["quality.fill_quality"],
        read["quality.order_quality"],
        read["staging.child_orders"],
        0,
        5_000,
        day,
    )


def test_golden_date_every_dimension(golden) -> None:
    assert set(golden["dimension"]) == set(DIMENSIONS)
    assert golden["trade_date"].n_unique() == 1
    assert validate_frame(SCHEMA, golden) == []


def test_detectors_read_the_series(golden) -> None:
    """Copies of the golden date, one a day, past the baseline gap and its minimum history: every
    dimension reaches the charts."""
    days = pl.concat(
        golden.with_columns(pl.col("trade_date") + timedelta(days=i)) for i in range(22)
    )
    alarms = detect(days)
    assert set(alarms.filter(pl.col("detector") == "cusum")["dimension"]) == set(DIMENSIONS)

"""The expected cost comes from a `CostModel`: another model replaces Almgren's without touching
scoring."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from eqs_pipeline.costmodel import FEATURES, AlmgrenCostModel
from eqs_pipeline.ingest import read_table, validate_instruments
from eqs_pipeline.quality.fills import fill_quality
from eqs_pipeline.quality.orders import order_quality
from eqs_pipeline_tests.ingest.builders import ingest_day


@dataclass(frozen=True)
class Flat:
    """Every order costs `bps`, or cannot be priced (None)."""

    bps: float | None
    name: str = "flat"

    def with_expected_cost(self, orders: pl.LazyFrame) -> pl.LazyFrame:
        assert set(FEATURES) <= set(orders.collect_schema().names())
        return orders.with_columns(expected_cost_bps=pl.lit(self.bps, pl.Float64))


def _orders(tmp_path, model) -> pl.DataFrame:
    staged = ingest_day(tmp_path).staged
    instruments = validate_instruments(
        read_table(tmp_path, "instruments", None), landing=tmp_path
    ).staged["instruments"]
    fq = fill_quality(staged["executions"], staged["quotes"], staged["orders"])
    return order_quality(
        staged["orders"], fq, staged["quotes"], staged["market_trades"], instruments,
        cost_model=model,
    ).collect()  # fmt: skip


def test_the_default_is_the_almgren_model(tmp_path) -> None:
    default = _orders(tmp_path / "a", None)
    explicit = _orders(tmp_path / "b", AlmgrenCostModel())
    assert default.equals(explicit)


def test_another_model_moves_the_expected_cost_and_the_score(tmp_path) -> None:
    cheap, dear = _orders(tmp_path / "a", Flat(1.0)), _orders(tmp_path / "b", Flat(50.0))
    assert cheap["expected_cost_bps"].to_list() == [1.0, 1.0]
    assert (cheap["cost_vs_expected_bps"] - dear["cost_vs_expected_bps"]).to_list() == [
        49.0,
        49.0,
    ]
    graded = cheap["quality_score"].is_not_null()
    assert graded.any()
    assert (dear["quality_score"] > cheap["quality_score"]).filter(graded).all()


def test_an_order_the_model_cannot_price_is_not_graded(tmp_path) -> None:
    orders = _orders(tmp_path, Flat(None))
    assert orders["quality_score"].is_null().all()
    assert orders["quality_grade"].is_null().all()
    assert orders["null_reason"].str.ends_with("not_graded").all()

"""The cost model through Dagster: `eqs_train` trains and registers a model with its check, the
quality step prices later trade dates with it (never earlier ones), and a damaged artifact
leaves the previous pricing in service."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from eqs_pipeline.defs.model.resources import ModelsInService
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.runtime.runner import run_pipeline, train_model
from eqs_pipeline.simulate import simulate_to_landing
from eqs_pipeline.simulate.config import cost_test_bed

pytestmark = pytest.mark.integration

DESK = cost_test_bed(days=7, orders_per_day=1000, seed=4, symbols=10)
FIRST_FIVE = date(2026, 11, 6)  # 2026-11-02 .. 11-06 are the first five trade dates
# The flow, not the accuracy (test_accuracy.py): 2,000 held-out orders measure an interval's
# coverage to about a point, so the tolerance is wider than the default 3 points.
QUICK = {"min_train_orders": 800, "holdout_days": 2, "steps": 150, "coverage_tolerance": 0.06}


def _orders(warehouse: Path) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select trade_date, order_id, expected_cost_source, cost_percentile, "
            "expected_cost_bps from quality.order_quality"
        ).pl()


def _table(warehouse: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(f"select * from {name}").pl()


def test_train_price_later_dates_and_survive_a_damaged_artifact(tmp_path) -> None:
    """One desk, in the order a desk lives it (the phases depend on each other)."""
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    simulate_to_landing(DESK, landing)
    run_pipeline(landing, warehouse, end=FIRST_FIVE)

    # Too few orders: no model, a clear message, and the registry stays empty.
    report = train_model(warehouse, config=QUICK | {"min_train_orders": 100_000})
    assert report.model is None
    assert "fewer than min_train_orders (100000)" in report.message
    assert _table(warehouse, "model.model_versions").height == 0

    # A model learned from the first five dates, promoted, registered with its artifact.
    report = train_model(warehouse, config=QUICK)
    model = report.model
    assert model is not None, report.message
    assert model["promoted"], model["promotion_reason"]
    assert model["holdout_end"] == FIRST_FIVE and model["as_of"] == date(2026, 11, 7)
    assert Path(model["artifact"]).is_file()
    assert model["model_nll"] < min(model[f"{b}_nll"] for b in ("sqrt", "almgren", "istar"))
    assert _table(warehouse, "model.model_versions")["model_version"].to_list() == [
        model["model_version"]
    ]

    # The dates it learned from keep the formula (a rerun finds them unchanged); the later
    # ones are priced by the model, and model.cost_predictions holds its figures.
    again = run_pipeline(landing, warehouse)
    assert again.unchanged == again.trade_dates[:5]
    orders = _orders(warehouse)
    early = orders.filter(pl.col("trade_date") <= FIRST_FIVE)
    late = orders.filter(pl.col("trade_date") > FIRST_FIVE)
    assert (early["expected_cost_source"] == "formula:almgren").all()
    priced = late.filter(pl.col("expected_cost_source") == model["model_version"])
    assert priced.height >= 0.99 * late.height
    predictions = _table(warehouse, "model.cost_predictions")
    assert predictions.height == priced.height
    assert set(predictions["model_version"]) == {model["model_version"]}
    joined = priced.join(predictions, on=["trade_date", "order_id"])
    assert (joined["expected_cost_bps"] == joined["expected_cost_bps_right"]).all()

    # A damaged artifact is passed over, with a warning, for the previous pricing (here the
    # formula); the quality step asks exactly this of `ModelsInService` for each date.
    artifact = Path(model["artifact"])
    artifact.write_bytes(artifact.read_bytes()[:100])
    paths = EqsPathsResource(home=str(tmp_path), lake=str(tmp_path / "lake"))
    warnings: list[str] = []
    assert ModelsInService.of(paths, warnings.append).for_date(date(2026, 11, 10)) is None
    assert len(warnings) == 1 and "cannot be read" in warnings[0]

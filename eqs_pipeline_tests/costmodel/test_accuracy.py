"""The expected-cost model against the designed truth (docs/SIMULATOR.md, "Designed costs").

80,000 orders over 20 trade dates whose true cost distribution is known and depends on the
algorithm, urgency, time of day, spread regime and broker, not only on the square-root law.
The model learns from the first 16 dates with the default settings; on the 4 held-out dates:

- R^2 of its expected cost against the true expected cost is at least 0.9, and above every
  fitted baseline's;
- the grade from its `cost_percentile` (cut at 0.4, 0.6, 0.8) equals the grade from the true
  distribution's percentile for at least 95% of the orders;
- its 90% intervals cover 87-93% of the realized shortfalls, and it is promoted.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.core.settings import CostTrainingSettings
from eqs_pipeline.costmodel import evaluate
from eqs_pipeline.costmodel.baselines import BASELINES
from eqs_pipeline.costmodel.features import TARGET
from eqs_pipeline.costmodel.train import MODEL, promotion, train_cost_model
from eqs_pipeline_tests.costmodel.conftest import designed_desk

pytestmark = pytest.mark.integration

SETTINGS = CostTrainingSettings(holdout_days=4)
CUTS = (0.4, 0.6, 0.8)


@pytest.fixture(scope="module")
def scored() -> tuple:
    features, truth = designed_desk(20, 4000, 11)
    outcome = train_cost_model(features, SETTINGS)
    assert outcome.artifact is not None, outcome.message
    held = outcome.holdout.join(truth, on=["trade_date", "order_id"], how="left")
    held = held.filter(pl.col("true_expected_cost_bps").is_not_null())
    predicted = outcome.artifact.predict(held)
    return outcome, held, predicted


def test_expected_cost_recovers_the_truth_better_than_every_baseline(scored) -> None:
    outcome, held, predicted = scored
    assert len(outcome.holdout_dates) == 4 and held.height > 15_000
    truth = held["true_expected_cost_bps"].to_numpy()
    r2 = evaluate.r2_against(truth, predicted.frame["expected_cost_bps"].to_numpy())
    assert r2 >= 0.9
    for name in BASELINES:
        baseline = predicted.frame[f"{name}_expected_cost_bps"].to_numpy()
        assert evaluate.r2_against(truth, baseline) < r2 - 0.1, name


def test_grades_agree_with_the_true_distribution(scored) -> None:
    _, held, predicted = scored
    y = held[TARGET].to_numpy()
    model = evaluate.percentile(
        y,
        predicted.frame["expected_cost_bps"].to_numpy(),
        predicted.frame["expected_cost_sd_bps"].to_numpy(),
        nu=predicted.nu,
    )
    true = evaluate.percentile(
        y, held["true_expected_cost_bps"].to_numpy(), held["true_cost_sd_bps"].to_numpy()
    )
    agreement = np.mean(np.digitize(model, CUTS) == np.digitize(true, CUTS))
    assert agreement >= 0.95


def test_intervals_cover_and_the_model_is_promoted(scored) -> None:
    outcome, _, _ = scored
    assert 0.87 <= outcome.scores[MODEL]["coverage_90"] <= 0.93
    promoted, why = promotion(outcome, None, SETTINGS)
    assert promoted, why

"""Walk-forward training and the promotion rule: a clear outcome for every case."""

from __future__ import annotations

import dataclasses

from eqs_pipeline.costmodel.train import MODEL, promotion, train_cost_model
from eqs_pipeline_tests.costmodel.conftest import QUICK


def test_too_few_orders_trains_nothing_and_says_so(small_desk) -> None:
    features, _ = small_desk
    settings = dataclasses.replace(QUICK, min_train_orders=10_000)
    outcome = train_cost_model(features, settings)
    assert outcome.artifact is None
    assert "fewer than min_train_orders (10000)" in outcome.message
    assert promotion(outcome, None, settings) == (False, outcome.message)


def test_too_few_dates_trains_nothing(small_desk) -> None:
    features, _ = small_desk
    one_day = features.filter(features["trade_date"] == features["trade_date"].min())
    outcome = train_cost_model(one_day, dataclasses.replace(QUICK, min_train_orders=100))
    assert outcome.artifact is None and "more than holdout_days" in outcome.message


def test_window_split_and_scores(small_outcome) -> None:
    outcome = small_outcome
    assert len(outcome.holdout_dates) == 2 and max(outcome.train_dates) < min(outcome.holdout_dates)
    assert set(outcome.scores) == {MODEL, "sqrt", "almgren", "istar"}
    assert outcome.scores[MODEL]["n"] == outcome.holdout.height
    assert outcome.calibration.height == 10


def _with(outcome, **model_scores):
    scores = {k: dict(v) for k, v in outcome.scores.items()}
    scores[MODEL].update(model_scores)
    return dataclasses.replace(outcome, scores=scores)


def test_promotion_rules(small_outcome) -> None:
    outcome = small_outcome
    best = min(outcome.scores[b]["nll"] for b in ("sqrt", "almgren", "istar"))
    ok = _with(outcome, nll=best - 0.01, coverage_50=0.5, coverage_90=0.9)
    assert promotion(ok, None, QUICK)[0]
    promoted, why = promotion(_with(ok, nll=best + 0.01), None, QUICK)
    assert not promoted and "best baseline" in why
    promoted, why = promotion(_with(ok, coverage_90=0.86), None, QUICK)
    assert not promoted and "90% intervals cover 86.0%" in why
    # The model in service is this one's own artifact: the new one must do strictly better on
    # the same held-out orders, and it does not.
    promoted, why = promotion(_with(ok, nll=outcome.scores[MODEL]["nll"]), outcome.artifact, QUICK)
    assert not promoted and "model in service" in why

"""The cost model's speed (docs/MODEL.md): training on 1M orders, inference, and what pricing
adds to the daily quality step.

The orders are the designed test bed's (`eqs_pipeline.simulate.costs`): 80,000 simulated and
scored, then repeated over 13 times as many trade dates (each copy's dates moved past the
previous copy's) to make 1,040,000 training rows; training time depends on the rows and the
steps, not on their values. Targets: training <= 60 s on two cores (JAX's import and the
first compile included), inference >= 1M orders/s (the network's forward pass on encoded
orders; `predict` also encodes the features and prices the three baselines), pricing <= 1 s
per 100k orders.
"""

from __future__ import annotations

import time
from datetime import timedelta

import polars as pl

TITLE = "Cost model: training, inference and daily pricing"
COPIES = 13


def run_model() -> dict:
    from eqs_pipeline.core.settings import CostTrainingSettings
    from eqs_pipeline.costmodel.features import arrival_features
    from eqs_pipeline.quality.fills import fill_quality
    from eqs_pipeline.quality.orders import order_quality
    from eqs_pipeline.simulate import simulate
    from eqs_pipeline.simulate.config import cost_test_bed

    data = simulate(cost_test_bed(days=20, orders_per_day=4000, seed=11))
    t = data.tables
    fq = fill_quality(t["executions"], t["quotes"], t["orders"])
    orders = order_quality(
        t["orders"], fq, t["quotes"], t["market_trades"], data.instruments
    ).collect()
    features = arrival_features(orders, data.instruments)
    span = (features["trade_date"].max() - features["trade_date"].min()).days + 1
    tiled = pl.concat(
        features.with_columns(pl.col("trade_date") + timedelta(days=k * span))
        for k in range(COPIES)
    )
    from eqs_pipeline.costmodel.train import train_cost_model

    start = time.perf_counter()
    # JAX, Flax and optax: timed with the training, which pays for them.
    import eqs_pipeline.costmodel.net  # noqa: F401

    jax_import_s = time.perf_counter() - start
    outcome = train_cost_model(
        tiled, CostTrainingSettings(window_days=10_000, holdout_days=3 * COPIES // 2)
    )
    train_s = time.perf_counter() - start
    artifact = outcome.artifact
    start = time.perf_counter()
    artifact.predict(tiled)
    predict_s = time.perf_counter() - start
    from eqs_pipeline.costmodel.weights import forward

    x, scales = artifact.spec.matrix(tiled), artifact.spec.scales(tiled)
    start = time.perf_counter()
    forward(artifact.weights, x, scales)
    forward_s = time.perf_counter() - start

    from eqs_pipeline.core.settings import ScoreSettings
    from eqs_pipeline.costmodel.scoring import score_orders

    start = time.perf_counter()
    score_orders(orders, data.instruments, artifact, ScoreSettings())
    score_s = time.perf_counter() - start
    return {
        "train_orders": int(artifact.record["train_orders"]),
        "window_orders": tiled.height,
        "jax_import_s": jax_import_s,
        "train_s": train_s,
        "predict_orders": tiled.height,
        "predict_s": predict_s,
        "orders_per_s": tiled.height / predict_s,
        "forward_orders_per_s": tiled.height / forward_s,
        "score_orders": orders.height,
        "score_s_per_100k": score_s * 100_000 / orders.height,
    }

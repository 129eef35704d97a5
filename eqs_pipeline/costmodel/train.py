"""Walk-forward training of the expected-cost model, and the rule that promotes it.

`train_cost_model` learns from the usable orders of a window of trade dates (rows of
`features.arrival_features` with their realized shortfall): the network and the three
baselines learn from all but the window's last `holdout_days` dates and are scored on those,
out of sample; the network's scale and degrees of freedom are calibrated on the last
`calibration_days` of the dates it could learn from, which it leaves to that. The artifact is
exactly the model that was scored. `promotion` decides whether it may price orders
(docs/MODEL.md, "Promotion"). JAX is imported only when a model is trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import gammaln

from eqs_pipeline.core.settings import CostTrainingSettings
from eqs_pipeline.costmodel import evaluate
from eqs_pipeline.costmodel.artifact import (
    CostModelArtifact,
    cost_inputs,
    participation_defaults,
)
from eqs_pipeline.costmodel.baselines import BASELINES, fit_baselines
from eqs_pipeline.costmodel.features import NUMERIC, TARGET, FeatureSpec
from eqs_pipeline.costmodel.weights import CALIBRATION, LOG_NU_RANGE, Weights, forward, nu_of

MODEL = "model"


@dataclass(frozen=True)
class TrainingOutcome:
    """What a training run produced.

    artifact: the trained model, None when none could be trained (`message` says why).
    scores: out-of-sample `evaluate.scores` of the model ("model") and of each baseline.
    calibration: the model's `evaluate.calibration_table` on the held-out orders.
    train_dates / holdout_dates: the trade dates learned from and scored on.
    orders: usable orders in the window; dropped: orders left out and why (count by reason).
    holdout: the held-out feature rows (to score another model on the same orders).
    """

    artifact: CostModelArtifact | None
    message: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    calibration: pl.DataFrame | None = None
    train_dates: tuple[date, ...] = ()
    holdout_dates: tuple[date, ...] = ()
    orders: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    holdout: pl.DataFrame | None = None


def usable_orders(features: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """The rows the model can learn from (features known, shortfall known and finite), and
    the count of the others by reason."""
    reason = (
        pl.when(pl.col("model_null_reason").is_not_null())
        .then(pl.col("model_null_reason"))
        .when(pl.col(TARGET).is_null() | ~pl.col(TARGET).is_finite())
        .then(pl.lit("no_shortfall"))
    )
    tagged = features.with_columns(_why=reason)
    dropped = {
        str(k): int(v)
        for k, v in tagged.filter(pl.col("_why").is_not_null())["_why"].value_counts().iter_rows()
    }
    return tagged.filter(pl.col("_why").is_null()).drop("_why"), dropped


def _finite(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in d.items()}


def train_cost_model(
    features: pl.DataFrame,
    settings: CostTrainingSettings | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainingOutcome:
    """Train on the window in `features` (every trade date in it) and score out of sample."""
    settings = settings or CostTrainingSettings()
    rows, dropped = usable_orders(features)
    dates = tuple(sorted(rows["trade_date"].unique().to_list()))
    if rows.height < settings.min_train_orders:
        return TrainingOutcome(
            None,
            f"{rows.height} usable orders in the window, fewer than min_train_orders "
            f"({settings.min_train_orders}): no model trained; orders keep the fallback cost",
            orders=rows.height,
            dropped=dropped,
        )
    reserved = settings.holdout_days + settings.calibration_days
    if len(dates) <= reserved:
        return TrainingOutcome(
            None,
            f"the window has {len(dates)} trade dates with orders; training needs more than "
            f"holdout_days + calibration_days ({reserved}): no model trained",
            orders=rows.height,
            dropped=dropped,
        )
    train_dates, holdout_dates = dates[: -settings.holdout_days], dates[-settings.holdout_days :]
    fit_dates = train_dates[: len(train_dates) - settings.calibration_days]
    learn = rows.filter(pl.col("trade_date").is_in(train_dates))
    fit = rows.filter(pl.col("trade_date").is_in(fit_dates))
    holdout = rows.filter(pl.col("trade_date").is_in(holdout_dates))
    spec = FeatureSpec.fit(fit)
    pov = participation_defaults(learn)
    baselines = fit_baselines(cost_inputs(learn, pov), learn[TARGET].to_numpy())
    from eqs_pipeline.costmodel import net  # JAX, Flax and optax: only when training

    result = net.train(
        settings.net,
        len(NUMERIC),
        spec.matrix(fit),
        spec.scales(fit),
        (fit[TARGET].to_numpy() / spec.target_scale).astype(np.float32),
        progress,
    )
    weights = result.weights
    calibration_rows = rows.filter(pl.col("trade_date").is_in(train_dates[len(fit_dates) :]))
    if calibration_rows.height:
        weights = calibrate(weights, spec, calibration_rows)
    artifact = CostModelArtifact(spec, weights, baselines, pov)
    predicted = artifact.predict(holdout)
    yh = holdout[TARGET].to_numpy()
    frame = predicted.frame
    scores = {
        MODEL: evaluate.scores(
            yh,
            frame["expected_cost_bps"].to_numpy(),
            frame["expected_cost_sd_bps"].to_numpy(),
            nu=predicted.nu,
        )
    }
    for name in BASELINES:
        scores[name] = evaluate.scores(
            yh,
            frame[f"{name}_expected_cost_bps"].to_numpy(),
            frame[f"{name}_expected_cost_sd_bps"].to_numpy(),
        )
    calibration = evaluate.calibration_table(
        yh,
        frame["expected_cost_bps"].to_numpy(),
        frame["expected_cost_sd_bps"].to_numpy(),
        nu=predicted.nu,
    )
    record = {
        "train_start": train_dates[0].isoformat(),
        "train_end": train_dates[-1].isoformat(),
        "holdout_start": holdout_dates[0].isoformat(),
        "holdout_end": holdout_dates[-1].isoformat(),
        "train_orders": learn.height,
        "calibration_orders": calibration_rows.height,
        "scale_calibration": float(np.exp(weights.arrays.get(CALIBRATION, 0.0))),
        "holdout_orders": holdout.height,
        "nu": predicted.nu,
        "train_nll": result.train_nll,
        "settings": {
            "window_days": settings.window_days,
            "holdout_days": settings.holdout_days,
            "calibration_days": settings.calibration_days,
            "min_train_orders": settings.min_train_orders,
            "net": {k: getattr(settings.net, k) for k in settings.net.__dataclass_fields__},
        },
        "scores": {k: _finite(v) for k, v in scores.items()},
    }
    artifact = CostModelArtifact(spec, weights, baselines, pov, record)
    return TrainingOutcome(
        artifact,
        f"trained on {learn.height} orders of {len(train_dates)} trade dates, scored on "
        f"{holdout.height} held-out orders of {len(holdout_dates)}",
        scores,
        calibration,
        train_dates,
        holdout_dates,
        rows.height,
        dropped,
        holdout,
    )


def calibrate(weights: Weights, spec: FeatureSpec, rows: pl.DataFrame) -> Weights:
    """The weights with the log-scale shift and the degrees of freedom that maximize the
    Student-t likelihood of `rows` (orders the network did not learn from): the network's
    training orders, which it learned, understate both how wide and how heavy-tailed the
    costs of new orders are."""
    location, log_scale = forward(weights, spec.matrix(rows), spec.scales(rows))
    r = (rows[TARGET].to_numpy() / spec.target_scale - location) * np.exp(-log_scale)

    def nll(p: np.ndarray) -> float:
        shift, nu = p[0], nu_of(p[1])
        const = gammaln(nu / 2.0) - gammaln((nu + 1.0) / 2.0) + 0.5 * np.log(nu)
        z2 = (r * np.exp(-shift)) ** 2
        return float(const + shift + 0.5 * (nu + 1.0) * np.mean(np.log1p(z2 / nu)))

    start = np.array([0.0, float(weights.arrays["log_nu_minus_2"])])
    best = minimize(nll, start, method="L-BFGS-B", bounds=[(-2.0, 2.0), LOG_NU_RANGE])
    return Weights(
        weights.arrays
        | {
            CALIBRATION: np.asarray(best.x[0], dtype=np.float32),
            "log_nu_minus_2": np.asarray(best.x[1], dtype=np.float32),
        }
    )


def promotion(
    outcome: TrainingOutcome,
    in_service: CostModelArtifact | None = None,
    settings: CostTrainingSettings | None = None,
) -> tuple[bool, str]:
    """(promoted, reason). A model is promoted when its weights are finite, its held-out NLL
    is below every baseline's and below the in-service model's on the same held-out orders,
    and its 50% and 90% intervals cover within `coverage_tolerance` of nominal."""
    settings = settings or CostTrainingSettings()
    if outcome.artifact is None:
        return False, outcome.message
    if not outcome.artifact.weights.finite():
        return False, "the trained weights are not all finite"
    model = outcome.scores[MODEL]
    best = min(BASELINES, key=lambda b: outcome.scores[b]["nll"])
    if not model["nll"] < outcome.scores[best]["nll"]:
        return False, (
            f"held-out NLL {model['nll']:.4f} is not below the best baseline's "
            f"({best}: {outcome.scores[best]['nll']:.4f})"
        )
    for level in (50, 90):
        cover = model[f"coverage_{level}"]
        if abs(cover - level / 100) > settings.coverage_tolerance:
            return False, (
                f"the {level}% intervals cover {cover:.1%} of held-out orders, more than "
                f"{settings.coverage_tolerance:.0%} from nominal"
            )
    if in_service is not None and outcome.holdout is not None:
        rows = outcome.holdout
        old = in_service.predict(rows)
        old_nll = evaluate.scores(
            rows[TARGET].to_numpy(),
            old.frame["expected_cost_bps"].to_numpy(),
            old.frame["expected_cost_sd_bps"].to_numpy(),
            nu=old.nu,
        )["nll"]
        if not model["nll"] < old_nll:
            return False, (
                f"held-out NLL {model['nll']:.4f} is not below the model in service's "
                f"({in_service.version}: {old_nll:.4f})"
            )
    return True, (
        f"held-out NLL {model['nll']:.4f} below the best baseline's ({best}: "
        f"{outcome.scores[best]['nll']:.4f}); 50%/90% coverage {model['coverage_50']:.1%} / "
        f"{model['coverage_90']:.1%}"
    )

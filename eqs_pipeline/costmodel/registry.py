"""The registry of trained cost models (`model.model_versions`) and the walk-forward rule.

Every training adds one row, promoted or not, with the reason. The model that prices trade
date d is the newest promoted model whose whole window (learned and held-out dates) ended
before d: never one that saw d or a later date. Where none did, orders keep the formula
(`quality.scoring.formula_distribution`).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import TYPE_CHECKING

import polars as pl

from eqs_pipeline.tables.model import FIGURES, MODEL_VERSIONS, SCORED

if TYPE_CHECKING:
    from eqs_pipeline.costmodel.train import TrainingOutcome

_FIGURE_KEYS = {
    "rmse_bps": "rmse",
    "mae_bps": "mae",
    "nll": "nll",
    "r2": "r2",
    "coverage_50": "coverage_50",
    "coverage_90": "coverage_90",
}


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=MODEL_VERSIONS.polars_schema)


def entry(
    outcome: TrainingOutcome,
    *,
    trained_at: datetime,
    as_of: date,
    promoted: bool,
    reason: str,
    hyperparameters: dict,
    artifact: str,
) -> pl.DataFrame:
    """The registry row of a trained model (`outcome.artifact` is not None)."""
    if outcome.artifact is None:
        raise ValueError("only a trained model has a registry row")
    record = outcome.artifact.record
    row: dict[str, object] = {
        "model_version": outcome.artifact.version,
        "trained_at": trained_at,
        "as_of": as_of,
        "train_start": outcome.train_dates[0],
        "train_end": outcome.train_dates[-1],
        "holdout_start": outcome.holdout_dates[0],
        "holdout_end": outcome.holdout_dates[-1],
        "train_orders": int(record["train_orders"]),
        "holdout_orders": int(record["holdout_orders"]),
        "nu": float(record["nu"]),
    }
    for who in SCORED:
        for name, _, _ in FIGURES:
            value = outcome.scores[who][_FIGURE_KEYS[name]]
            row[f"{who}_{name}"] = value if math.isfinite(value) else None
    row |= {
        "promoted": promoted,
        "promotion_reason": reason,
        "hyperparameters": json.dumps(hyperparameters, sort_keys=True),
        "artifact": artifact,
    }
    return pl.DataFrame([row], schema=MODEL_VERSIONS.polars_schema)


def add(registry: pl.DataFrame, row: pl.DataFrame) -> pl.DataFrame:
    """The registry with `row` (a model trained again replaces its earlier row)."""
    version = row["model_version"][0]
    kept = registry.filter(pl.col("model_version") != version)
    return pl.concat([kept, row]).sort("trained_at", "model_version")


def candidates(registry: pl.DataFrame, trade_date: date) -> list[tuple[str, str]]:
    """(version, artifact location) of the promoted models that may price `trade_date`, the
    one in service first: newest window end, then newest training."""
    rows = registry.filter(pl.col("promoted") & (pl.col("holdout_end") < trade_date)).sort(
        ["holdout_end", "trained_at"], descending=True
    )
    return list(zip(rows["model_version"].to_list(), rows["artifact"].to_list(), strict=True))


def in_service_tag(registry: pl.DataFrame, trade_date: date) -> str:
    """What prices `trade_date` by the registry, for its inputs fingerprint: a date scored by
    the formula is scored again once a model that may price it is promoted."""
    found = candidates(registry, trade_date)
    return f"cost_model={found[0][0] if found else 'formula'}"

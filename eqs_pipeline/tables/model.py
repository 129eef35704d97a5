"""The cost model's tables (docs/MODEL.md): the registry of trained models and the per-order
predictions of the model that priced each order, with each baseline's."""

from __future__ import annotations

import polars as pl

from eqs_pipeline.core.contract import TS
from eqs_pipeline.tables.spec import Column, RowCheck, Table

VERSION_PATTERN = r"^cm-[0-9a-f]{16}$"
# Whose out-of-sample figures model_versions holds: the model's and each baseline's.
SCORED = ("model", "sqrt", "almgren", "istar")
FIGURES = (
    ("rmse_bps", "bps", "root mean squared error of the expected cost"),
    ("mae_bps", "bps", "mean absolute error"),
    ("nll", None, "mean negative log-likelihood per order (lower is better)"),
    ("r2", None, "R2 of the expected cost against the realized shortfall"),
    ("coverage_50", "ratio", "share of realized shortfalls inside the central 50% interval"),
    ("coverage_90", "ratio", "share inside the central 90% interval"),
)
BASELINE_PREDICTIONS = ("sqrt", "almgren", "istar")


def _figures() -> list[Column]:
    return [
        Column(f"{who}_{name}", pl.Float64, f"Held-out {what}: {who}.", unit)
        for who in SCORED
        for name, unit, what in FIGURES
    ]


def _date(name: str, what: str) -> Column:
    return Column(name, pl.Date, what, nullable=False)


MODEL_VERSIONS = Table(
    "model.model_versions",
    "One row per trained expected-cost model: the trade dates it learned from and was scored "
    "on, its hyper-parameters, its and each fitted baseline's out-of-sample figures, and "
    "whether it was promoted to price orders (with the reason).",
    (
        Column(
            "model_version",
            pl.String,
            "cm- and 16 hex digits of the artifact's content hash.",
            nullable=False,
            pattern=VERSION_PATTERN,
            unique=True,
        ),
        Column("trained_at", TS, "When it was trained (UTC).", nullable=False),
        Column("as_of", pl.Date, "The training's date: the window ends before it.", nullable=False),
        _date("train_start", "First trade date it learned from."),
        _date("train_end", "Last trade date it learned from."),
        _date("holdout_start", "First held-out trade date it was scored on."),
        _date("holdout_end", "Last held-out trade date: it prices trade dates after this one."),
        Column("train_orders", pl.Int64, "Orders it learned from.", "count", nullable=False),
        Column("holdout_orders", pl.Int64, "Held-out orders scored.", "count", nullable=False),
        Column("nu", pl.Float64, "Degrees of freedom of its Student-t cost distribution.", gt=2.0),
        *_figures(),
        Column(
            "promoted", pl.Boolean, "Whether it prices orders of later trade dates.", nullable=False
        ),
        Column("promotion_reason", pl.String, "Why it was, or was not, promoted.", nullable=False),
        Column("hyperparameters", pl.String, "The training settings, as JSON.", nullable=False),
        Column("artifact", pl.String, "Where the artifact is stored.", nullable=False),
    ),
    unique=("model_version",),
    row_checks=(
        RowCheck(
            "window_in_order",
            "train_start <= train_end < holdout_start <= holdout_end < as_of",
            (pl.col("train_start") <= pl.col("train_end"))
            & (pl.col("train_end") < pl.col("holdout_start"))
            & (pl.col("holdout_start") <= pl.col("holdout_end"))
            & (pl.col("holdout_end") < pl.col("as_of")),
        ),
    ),
)

COST_PREDICTIONS = Table(
    "model.cost_predictions",
    "One row per order priced by a trained cost model: the model's expected cost and its sd, "
    "and each fitted baseline's expected cost for the same order.",
    (
        Column("order_id", pl.String, "Parent order id.", nullable=False),
        Column("trade_date", pl.Date, "Trade date.", nullable=False),
        Column(
            "model_version",
            pl.String,
            "The model that priced the order.",
            nullable=False,
            pattern=VERSION_PATTERN,
        ),
        Column(
            "expected_cost_bps", pl.Float64, "The model's expected cost.", "bps", nullable=False
        ),
        Column(
            "expected_cost_sd_bps",
            pl.Float64,
            "Its standard deviation.",
            "bps",
            nullable=False,
            gt=0.0,
        ),
        *[
            Column(
                f"{b}_expected_cost_bps",
                pl.Float64,
                f"The fitted {b} baseline's expected cost.",
                "bps",
            )
            for b in BASELINE_PREDICTIONS
        ],
    ),
    unique=("trade_date", "order_id"),
)

QUALITY_FORECAST = Table(
    "model.quality_forecast",
    "Trend forecasts of the daily mean cost_z and cost_vs_expected_bps for the desk and for "
    "each algo, broker and venue with enough orders: one row per series and forecast trade "
    "date, from a local-level model fitted by maximum likelihood (docs/MODEL.md).",
    (
        Column(
            "dimension",
            pl.String,
            "desk, algo, broker or venue.",
            nullable=False,
            allowed=("desk", "algo", "broker", "venue"),
        ),
        Column("subject", pl.String, "The algo, broker or venue (all: the desk).", nullable=False),
        Column(
            "metric",
            pl.String,
            "The forecast daily mean.",
            nullable=False,
            allowed=("cost_z", "cost_vs_expected_bps"),
        ),
        Column("as_of", pl.Date, "Last trade date of the history.", nullable=False),
        Column("trade_date", pl.Date, "The forecast trade date.", nullable=False),
        Column("horizon", pl.Int64, "Trade dates after as_of.", "count", nullable=False, ge=1),
        Column("forecast", pl.Float64, "Forecast daily mean (the filtered level).", nullable=False),
        Column("lo_80", pl.Float64, "Lower end of the 80% interval.", nullable=False),
        Column("hi_80", pl.Float64, "Upper end of the 80% interval.", nullable=False),
        Column("lo_95", pl.Float64, "Lower end of the 95% interval.", nullable=False),
        Column("hi_95", pl.Float64, "Upper end of the 95% interval.", nullable=False),
        Column("last_value", pl.Float64, "The last observed daily mean."),
        Column("history_days", pl.Int64, "Observed days of the series.", "days", nullable=False),
        Column("sigma_obs", pl.Float64, "Fitted day-to-day noise.", nullable=False, ge=0.0),
        Column(
            "sigma_level", pl.Float64, "Fitted drift of the level per day.", nullable=False, ge=0.0
        ),
    ),
    unique=("dimension", "subject", "metric", "horizon"),
    row_checks=(
        RowCheck(
            "intervals_nested",
            "lo_95 <= lo_80 <= forecast <= hi_80 <= hi_95",
            (pl.col("lo_95") <= pl.col("lo_80"))
            & (pl.col("lo_80") <= pl.col("forecast"))
            & (pl.col("forecast") <= pl.col("hi_80"))
            & (pl.col("hi_80") <= pl.col("hi_95")),
        ),
    ),
)

TABLES: tuple[Table, ...] = (MODEL_VERSIONS, COST_PREDICTIONS, QUALITY_FORECAST)

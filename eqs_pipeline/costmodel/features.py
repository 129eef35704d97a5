"""The cost model's inputs: what is known when an order arrives, and the order's instructions.

`arrival_features(orders, instruments)` turns rows of `quality.order_quality` (which carry the
arrival quote and the pre-arrival market, computed from quotes and tape before `arrival_ts`)
into the model's raw feature columns; `FeatureSpec.fit` freezes, on the training window, how
they are scaled and which categories exist; `FeatureSpec.matrix` builds the float32 matrix.
docs/MODEL.md lists every feature with its formula. Nothing here reads an outcome of the order
(fills, end time, participation, duration): the target is the only outcome column kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from eqs_pipeline.core.settings import IngestSettings

# The numeric features, after the transforms of `arrival_features` (docs/MODEL.md).
NUMERIC: tuple[str, ...] = (
    "log_size_adv",
    "log_sigma_bps",
    "log_spread_bps",
    "log_pre_volatility_bps",
    "pre_volatility_known",
    "log_pre_volume_adv",
    "signed_imbalance",
    "log_size_far_touch",
    "local_hour",
    "target_participation",
    "target_participation_known",
    "limit_distance_sigma",
)
# The categorical instructions and descriptors, one-hot encoded with the training window's
# categories; a category the model never saw sets no column (it is scored as "none of these").
CATEGORICAL: tuple[str, ...] = (
    "side",
    "order_type",
    "algo",
    "urgency",
    "broker",
    "market",
    "currency",
)
# The two textbook scales the network's coefficients multiply (`net.py`): half the arrival
# spread, and the square-root law's sigma * sqrt(size / ADV), both in bps.
SCALES: tuple[str, ...] = ("half_spread_bps", "sqrt_law_bps")
TARGET = "implementation_shortfall_bps"
# The columns of `quality.order_quality` that `arrival_features` reads (the target included):
# a training reads only these of its window's orders.
ORDER_INPUTS: tuple[str, ...] = (
    "order_id",
    "trade_date",
    "symbol",
    "side",
    "side_sign",
    "order_type",
    "limit_price",
    "algo",
    "urgency",
    "target_participation",
    "broker",
    "arrival_ts",
    "order_qty",
    "arrival_mid",
    "arrival_spread_bps",
    "arrival_bid_size",
    "arrival_ask_size",
    "arrival_imbalance",
    "pre_arrival_volatility_bps",
    "pre_arrival_volume_pct_adv",
    "size_pct_adv",
    "daily_volatility",
    TARGET,
)
# Below this size / ADV or spread the logarithms are floored (a locked quote has spread 0).
_FLOOR = 1e-6
_SPREAD_FLOOR_BPS = 0.01
_VOLUME_FLOOR = 1e-5


def local_hours(ts: pl.Expr, market: pl.Expr, settings: IngestSettings) -> pl.Expr:
    """Hours since local midnight on the clock of the instrument's market (a market without a
    clock of its own, or none, uses `settings.default_timezone`)."""
    zones = dict(settings.market_timezones)
    out = pl.lit(None, dtype=pl.Float64)

    def hours(zone: str) -> pl.Expr:
        local = ts.dt.convert_time_zone(zone)
        return (
            local.dt.hour().cast(pl.Float64)
            + local.dt.minute() / 60.0
            + (local.dt.second() + local.dt.microsecond() / 1e6) / 3600.0
        )

    out = hours(settings.default_timezone)
    for zone in sorted(set(zones.values()) - {settings.default_timezone}):
        markets = [m for m, z in zones.items() if z == zone]
        out = pl.when(market.is_in(markets)).then(hours(zone)).otherwise(out)
    return out


def unusable_reason() -> pl.Expr:
    """Why an order cannot be priced by the model (null when it can): the features need the
    arrival quote and the instrument's ADV."""
    return (
        pl.when(pl.col("arrival_mid").is_null() | pl.col("arrival_spread_bps").is_null())
        .then(pl.lit("no_arrival_quote"))
        .when(pl.col("size_pct_adv").is_null())
        .then(pl.lit("unknown_instrument"))
    )


def arrival_features(
    orders: pl.DataFrame | pl.LazyFrame,
    instruments: pl.DataFrame | pl.LazyFrame,
    settings: IngestSettings | None = None,
) -> pl.DataFrame:
    """order_id, trade_date, `model_null_reason` (why the model cannot price the order, or
    null), the `NUMERIC` and `CATEGORICAL` features, the `SCALES` and, when the rows have it,
    the `TARGET`, in the rows' order. `orders` are rows of `quality.order_quality`."""
    settings = settings or IngestSettings()
    inst = instruments.lazy().select(
        "symbol",
        pl.col("market").cast(pl.String)
        if "market" in instruments.collect_schema()
        else pl.lit(None, pl.String).alias("market"),
        pl.col("currency").cast(pl.String),
    )
    rows = orders.lazy().join(inst, on="symbol", how="left", maintain_order="left")
    d = pl.col("side_sign").cast(pl.Float64)
    sigma_bps = pl.col("daily_volatility") * 1e4
    far_touch = (
        pl.when(d > 0).then(pl.col("arrival_ask_size")).otherwise(pl.col("arrival_bid_size"))
    )
    limit_distance = (
        d * (pl.col("limit_price") - pl.col("arrival_mid")) / pl.col("arrival_mid") * 1e4
    )
    size_adv = pl.col("size_pct_adv").clip(lower_bound=_FLOOR)
    pre_vol = pl.col("pre_arrival_volatility_bps")
    target = [TARGET] if TARGET in orders.collect_schema() else []
    return rows.select(
        "order_id",
        "trade_date",
        *target,
        model_null_reason=unusable_reason(),
        log_size_adv=size_adv.log(),
        log_sigma_bps=sigma_bps.clip(lower_bound=_SPREAD_FLOOR_BPS).log(),
        log_spread_bps=pl.col("arrival_spread_bps").clip(lower_bound=_SPREAD_FLOOR_BPS).log(),
        # Unknown pre-arrival volatility (the first minutes of the day) reads as the daily one.
        log_pre_volatility_bps=pl.coalesce(pre_vol, sigma_bps)
        .clip(lower_bound=_SPREAD_FLOOR_BPS)
        .log(),
        pre_volatility_known=pre_vol.is_not_null().cast(pl.Float64),
        log_pre_volume_adv=(
            pl.col("pre_arrival_volume_pct_adv").fill_null(0.0) + _VOLUME_FLOOR
        ).log(),
        signed_imbalance=(d * pl.col("arrival_imbalance")).fill_null(0.0).fill_nan(0.0),
        log_size_far_touch=(pl.col("order_qty") / far_touch.clip(lower_bound=1.0))
        .log()
        .fill_null(0.0),
        local_hour=local_hours(pl.col("arrival_ts"), pl.col("market"), settings),
        target_participation=pl.col("target_participation").fill_null(0.0),
        target_participation_known=pl.col("target_participation").is_not_null().cast(pl.Float64),
        # How far the limit lets the order go, in daily sigmas: positive = room to pay up.
        limit_distance_sigma=(limit_distance / sigma_bps).fill_null(0.0).fill_nan(0.0),
        **{c: pl.col(c).cast(pl.String) for c in CATEGORICAL},
        half_spread_bps=pl.col("arrival_spread_bps") / 2.0,
        sqrt_law_bps=sigma_bps * size_adv.sqrt(),
    ).collect()


@dataclass(frozen=True)
class FeatureSpec:
    """How the training window's features are encoded: each numeric feature's mean and
    standard deviation, each categorical's known categories, and the scale of the target."""

    means: tuple[float, ...]
    stds: tuple[float, ...]
    categories: tuple[tuple[str, tuple[str, ...]], ...]
    target_scale: float

    @staticmethod
    def fit(frame: pl.DataFrame) -> FeatureSpec:
        """From usable training rows (no `model_null_reason`) with a target."""
        x = frame.select(NUMERIC).to_numpy().astype(np.float64)
        means = np.nanmean(x, axis=0)
        stds = np.nanstd(x, axis=0)
        cats = tuple(
            (c, tuple(sorted(v for v in frame[c].unique().to_list() if v is not None)))
            for c in CATEGORICAL
        )
        y = frame[TARGET].to_numpy()
        return FeatureSpec(
            means=tuple(float(m) for m in means),
            stds=tuple(float(s) if s > 1e-12 else 1.0 for s in stds),
            categories=cats,
            target_scale=float(np.std(y)) if np.std(y) > 0 else 1.0,
        )

    @property
    def width(self) -> int:
        return len(NUMERIC) + sum(len(v) for _, v in self.categories)

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """The (rows, width) float32 design matrix: standardized numerics, then the one-hots."""
        x = (frame.select(NUMERIC).to_numpy().astype(np.float64) - np.asarray(self.means)) / (
            np.asarray(self.stds)
        )
        out = np.zeros((frame.height, self.width), dtype=np.float32)
        out[:, : len(NUMERIC)] = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        offset, rows = len(NUMERIC), np.arange(frame.height)
        for column, values in self.categories:
            if values:
                # Each row's category as its position among the known ones (null: unknown).
                codes = frame[column].replace_strict(
                    {v: i for i, v in enumerate(values)}, default=None, return_dtype=pl.Int64
                )
                known = codes.is_not_null().to_numpy()
                out[rows[known], offset + codes.drop_nulls().to_numpy()] = 1.0
            offset += len(values)
        return out

    def scales(self, frame: pl.DataFrame) -> np.ndarray:
        """The (rows, 2) float32 textbook scales, in units of the target scale."""
        return (frame.select(SCALES).to_numpy() / self.target_scale).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "numeric": list(NUMERIC),
            "means": list(self.means),
            "stds": list(self.stds),
            "categories": {c: list(v) for c, v in self.categories},
            "target_scale": self.target_scale,
        }

    @staticmethod
    def from_dict(d: dict) -> FeatureSpec:
        if list(d["numeric"]) != list(NUMERIC):
            raise ValueError(
                "the model's numeric features differ from this version's: "
                f"{d['numeric']} != {list(NUMERIC)}; retrain it"
            )
        return FeatureSpec(
            means=tuple(d["means"]),
            stds=tuple(d["stds"]),
            categories=tuple((c, tuple(d["categories"][c])) for c in CATEGORICAL),
            target_scale=float(d["target_scale"]),
        )

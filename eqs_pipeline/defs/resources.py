"""Resources shared by every domain: where data lives, and the metric settings.

Every path derives from one configured root, `EQS_HOME` (landing files, the Parquet lake, the
warehouse file, the event exports and the trained models sit under it unless configured one by
one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from eqs_pipeline.core.settings import (
    CostModelSettings,
    IngestSettings,
    QualitySettings,
    ScoreSettings,
)
from eqs_pipeline.storage import warehouse
from eqs_pipeline.storage.warehouse import LOCK_WAIT_S

# DuckDB allows one process to open the file read-write, and then no other process can open it
# at all: every step that opens the warehouse (load steps, window assets, instruments, checks
# that read it) takes this pool, whose limit of 1 is set in dagster.yaml. Daily compute steps
# read and write the Parquet lake instead and take no pool.
WAREHOUSE_POOL = "duckdb_warehouse"


class EqsPathsResource(dg.ConfigurableResource):
    """Locations of the landing directory, the Parquet lake, the DuckDB warehouse and the event
    exports."""

    home: str = Field(description="Root folder (EQS_HOME); the defaults below live under it.")
    landing: str | None = Field(
        None,
        description="Landing directory (a folder, or an object-store URL such as "
        "s3://bucket/eqs/landing); default EQS_LANDING when set, else <home>/landing.",
    )
    warehouse: str | None = Field(None, description="DuckDB file; default <home>/warehouse.duckdb.")
    lock_wait_s: float = Field(
        LOCK_WAIT_S,
        description="Seconds to wait for another process to release the DuckDB file before "
        "the step fails, naming that process.",
    )
    exports: str | None = Field(
        None,
        description="Event exports (a folder, or an object-store URL such as "
        "s3://bucket/eqs/exports); default <home>/exports.",
    )
    lake: str | None = Field(
        None,
        description="Parquet lake of the daily partitions (a folder, or an object-store URL "
        "such as s3://bucket/eqs/lake); default EQS_LAKE when set, else <home>/lake.",
    )
    models: str | None = Field(
        None,
        description="Trained cost model artifacts (a folder, or an object-store URL such as "
        "s3://bucket/eqs/models); default <home>/models.",
    )

    @property
    def landing_root(self) -> str:
        """Where the desk lands its files, a local folder or an object-store URL (see
        `eqs_pipeline.storage.store`): `landing` when configured, else the environment's
        `EQS_LANDING` (read when a step or the sensor asks, as `EQS_LAKE` is), else
        `<home>/landing`."""
        return self.landing or os.environ.get("EQS_LANDING") or str(Path(self.home) / "landing")

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse) if self.warehouse else Path(self.home) / "warehouse.duckdb"

    @property
    def exports_root(self) -> str:
        """Where the JSON Lines event exports go: a folder or an object-store URL."""
        return self.exports or str(Path(self.home) / "exports")

    @property
    def lake_root(self) -> str:
        """The lake's root, a local folder or an object-store URL (see `eqs_pipeline.storage.lake`):
        `lake` when configured, else the environment's `EQS_LAKE` (read when the step runs,
        as `EQS_HOME` is, so it moves the lake of every run, scheduled runs and backfills
        included), else `<home>/lake`."""
        return self.lake or os.environ.get("EQS_LAKE") or str(Path(self.home) / "lake")

    @property
    def models_root(self) -> str:
        """Where trained cost models are stored (`eqs_pipeline.storage.artifacts`)."""
        return self.models or str(Path(self.home) / "models")

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = warehouse.connect(
            self.warehouse_path, read_only=read_only, lock_wait_s=self.lock_wait_s
        )
        try:
            with warehouse.naming_damage(self.warehouse_path):
                yield con
        finally:
            con.close()


class MetricSettingsResource(dg.ConfigurableResource):
    """Thresholds, weights and model coefficients; defaults and meaning in `eqs_pipeline.core.settings`."""

    max_price_deviation: float = IngestSettings.max_price_deviation
    max_identifier_chars: int = IngestSettings.max_identifier_chars
    max_adv_multiple: float = IngestSettings.max_adv_multiple
    min_lot_fraction: float = IngestSettings.min_lot_fraction
    price_band_factor: float = IngestSettings.price_band_factor
    max_fee_bps: float = IngestSettings.max_fee_bps
    max_daily_volatility: float = IngestSettings.max_daily_volatility
    off_date_tolerance_hours: float = IngestSettings.off_date_tolerance_hours
    default_timezone: str = IngestSettings.default_timezone
    market_timezones: dict[str, str] = Field(
        default_factory=lambda: dict(IngestSettings.market_timezones),
        description="Market (instruments.market) -> IANA zone of its trade date.",
    )
    reversion_horizon_s: int = QualitySettings.reversion_horizon_s
    chunk_fills: int = QualitySettings.chunk_fills
    max_no_market_data_share: float = QualitySettings.max_no_market_data_share
    w_cost: float = ScoreSettings.w_cost
    w_fill: float = ScoreSettings.w_fill
    w_speed: float = ScoreSettings.w_speed
    cost_scale_floor_bps: float = ScoreSettings.cost_scale_floor_bps
    speed_tau_s: float = ScoreSettings.speed_tau_s
    grade_excellent: float = ScoreSettings.excellent
    grade_good: float = ScoreSettings.good
    grade_average: float = ScoreSettings.average
    eta: float = CostModelSettings.eta
    gamma: float = CostModelSettings.gamma
    beta: float = CostModelSettings.beta
    default_daily_volatility: float = CostModelSettings.default_daily_volatility

    def fingerprint(self) -> str:
        """Every setting as sorted JSON: part of a trade date's inputs fingerprint
        (`eqs_pipeline.ingest.fingerprint`), so a changed setting stages the date again."""
        return json.dumps(self.model_dump(), sort_keys=True, default=str)

    def ingest(self) -> IngestSettings:
        return IngestSettings(
            max_price_deviation=self.max_price_deviation,
            chunk_fills=self.chunk_fills,
            max_identifier_chars=self.max_identifier_chars,
            max_adv_multiple=self.max_adv_multiple,
            min_lot_fraction=self.min_lot_fraction,
            price_band_factor=self.price_band_factor,
            max_fee_bps=self.max_fee_bps,
            max_daily_volatility=self.max_daily_volatility,
            off_date_tolerance_hours=self.off_date_tolerance_hours,
            default_timezone=self.default_timezone,
            market_timezones=tuple(self.market_timezones.items()),
        )

    def quality(self) -> QualitySettings:
        return QualitySettings(
            reversion_horizon_s=self.reversion_horizon_s,
            chunk_fills=self.chunk_fills,
            max_no_market_data_share=self.max_no_market_data_share,
            cost_model=CostModelSettings(
                eta=self.eta,
                gamma=self.gamma,
                beta=self.beta,
                default_daily_volatility=self.default_daily_volatility,
            ),
            score=ScoreSettings(
                w_cost=self.w_cost,
                w_fill=self.w_fill,
                w_speed=self.w_speed,
                cost_scale_floor_bps=self.cost_scale_floor_bps,
                speed_tau_s=self.speed_tau_s,
                excellent=self.grade_excellent,
                good=self.grade_good,
                average=self.grade_average,
            ),
        )


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "paths": EqsPathsResource(home=dg.EnvVar("EQS_HOME")),
            "settings": MetricSettingsResource(),
        }
    )

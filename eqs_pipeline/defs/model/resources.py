"""The cost model's configuration (`CostTrainingConfig`, a `dg.Config` whose defaults come
from `eqs_pipeline.core.settings.CostTrainingSettings`) and its store: the registry
(`model.model_versions`, kept in the lake for the daily steps and in the warehouse for
analysts) and the artifacts under `EqsPathsResource.models_root` (docs/MODEL.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl
from pydantic import Field

from eqs_pipeline.core.settings import CostNetSettings, CostTrainingSettings
from eqs_pipeline.costmodel import registry
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.storage import artifacts, lake

if TYPE_CHECKING:
    from eqs_pipeline.costmodel.artifact import CostModelArtifact

REGISTRY_TABLE = "model.model_versions"
_T = CostTrainingSettings()
_N = CostNetSettings()


class CostTrainingConfig(dg.Config):
    """The training window, the promotion rule and the network's hyper-parameters."""

    as_of: str | None = Field(
        None,
        description="Train as of this date (YYYY-MM-DD): the window ends before it; default "
        "the day after the latest trade date of the lake.",
    )
    window_days: int = Field(_T.window_days, description="Trade dates of the window.")
    holdout_days: int = Field(_T.holdout_days, description="Latest window dates held out.")
    calibration_days: int = Field(
        _T.calibration_days, description="Dates before those: the scale's calibration."
    )
    min_train_orders: int = Field(_T.min_train_orders, description="Fewer: no model.")
    coverage_tolerance: float = Field(
        _T.coverage_tolerance, description="Promotion: 50%/90% coverage within this of nominal."
    )
    shape_width: int = Field(_N.shape_width, description="Units of each shape function.")
    hidden: list[int] = Field(list(_N.hidden), description="Interaction MLP widths ([]: none).")
    learning_rate: float = Field(_N.learning_rate, description="AdamW's initial step size.")
    weight_decay: float = Field(_N.weight_decay, description="AdamW's decoupled weight decay.")
    final_lr_fraction: float = Field(_N.final_lr_fraction, description="Cosine decay's floor.")
    steps: int = Field(_N.steps, description="Optimizer steps.")
    batch_size: int = Field(_N.batch_size, description="Orders per step.")
    seed: int = Field(_N.seed, description="Initial weights and batch order.")

    def settings(self) -> CostTrainingSettings:
        return CostTrainingSettings(
            window_days=self.window_days,
            holdout_days=self.holdout_days,
            calibration_days=self.calibration_days,
            min_train_orders=self.min_train_orders,
            coverage_tolerance=self.coverage_tolerance,
            net=CostNetSettings(
                shape_width=self.shape_width,
                hidden=tuple(self.hidden),
                learning_rate=self.learning_rate,
                weight_decay=self.weight_decay,
                final_lr_fraction=self.final_lr_fraction,
                steps=self.steps,
                batch_size=self.batch_size,
                seed=self.seed,
            ),
        )


def read_registry(paths: EqsPathsResource) -> pl.DataFrame:
    """Every trained model's row (none yet: an empty registry)."""
    if not lake.exists(paths.lake_root, REGISTRY_TABLE, None):
        return registry.empty()
    return lake.read(paths.lake_root, REGISTRY_TABLE, None)


def load_artifact(where: str, version: str) -> CostModelArtifact:
    """The artifact of `version` stored at `where`; ArtifactError when it is missing or its
    content is not that version's."""
    # Imported here: the artifact's baselines use SciPy, which the definitions do not need.
    from eqs_pipeline.costmodel.artifact import ArtifactError, CostModelArtifact

    try:
        data = artifacts.read(where)
    except FileNotFoundError as exc:
        raise ArtifactError(f"the cost model {version} is missing: no file at {where}") from exc
    return CostModelArtifact.from_bytes(data, expected_version=version)


class ModelsInService:
    """The promoted model that prices each trade date (`registry.candidates`): the newest whose
    window ended before it. One whose artifact is missing or damaged is passed over, with a
    warning, for the next one (so the previous model stays in service). Loaded once per run."""

    def __init__(self, models: pl.DataFrame, warn: Callable[[str], None]) -> None:
        self.registry = models
        self.warn = warn
        self._loaded: dict[str, CostModelArtifact | None] = {}

    @staticmethod
    def of(paths: EqsPathsResource, warn: Callable[[str], None]) -> ModelsInService:
        """The models of the lake's registry."""
        return ModelsInService(read_registry(paths), warn)

    def for_date(self, trade_date: date) -> CostModelArtifact | None:
        found = registry.candidates(self.registry, trade_date)
        if not found:
            return None
        # Imported here: the artifact's baselines use SciPy, which a date that no model prices
        # does not need.
        from eqs_pipeline.costmodel.artifact import ArtifactError

        for version, where in found:
            if version not in self._loaded:
                try:
                    self._loaded[version] = load_artifact(where, version)
                except ArtifactError as exc:
                    self.warn(f"{exc}; passing over it for the previous promoted model")
                    self._loaded[version] = None
            if self._loaded[version] is not None:
                return self._loaded[version]
        return None

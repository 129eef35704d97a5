"""A trained expected-cost model as one artifact: what scoring needs, named by its content.

The artifact holds the feature encoding (`FeatureSpec`), the network's weights, the fitted
baselines and the training record (window, settings, out-of-sample figures). Its version is
`cm-` and the first 16 hex digits of a SHA-256 over the arrays and the canonical JSON of the
rest, so the same model always has the same name, and a file whose content no longer matches
its name is refused (`ArtifactError`). Files are .npz archives of plain arrays (no pickle).

`predict` scores orders in numpy and scipy: no JAX import.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from eqs_pipeline.costmodel.baselines import BASELINES, CostInputs, FittedBaseline
from eqs_pipeline.costmodel.features import FeatureSpec
from eqs_pipeline.costmodel.weights import Weights, forward

META = "__meta__"
# The planned participation of an order without a target, when the training window has no
# order with one either (the baselines' POV input).
DEFAULT_POV = 0.1
PREDICT_BLOCK = 65_536


class ArtifactError(ValueError):
    """A model file that is missing, unreadable or whose content does not match its name."""


def planned_participation(frame: pl.DataFrame, defaults: dict[str, float]) -> np.ndarray:
    """The baselines' POV: the order's target participation, else the training window's
    median target of its urgency (`defaults`, key "" for all urgencies), clipped to (0, 1]."""
    fallback = defaults.get("", DEFAULT_POV)
    by_urgency = pl.col("urgency").replace_strict(
        defaults, default=fallback, return_dtype=pl.Float64
    )
    known = pl.col("target_participation_known") > 0
    pov = frame.select(
        pl.when(known).then(pl.col("target_participation")).otherwise(by_urgency)
    ).to_series()
    return np.clip(pov.fill_null(fallback).to_numpy().astype(np.float64), 1e-4, 1.0)


def participation_defaults(frame: pl.DataFrame) -> dict[str, float]:
    """Median target participation per urgency of the orders that have one ("" = all)."""
    with_target = frame.filter(pl.col("target_participation_known") > 0)
    if with_target.height == 0:
        return {"": DEFAULT_POV}
    out = {"": float(with_target["target_participation"].median())}
    for row in (
        with_target.group_by("urgency").agg(pl.col("target_participation").median()).iter_rows()
    ):
        if row[0] is not None:
            out[str(row[0])] = float(row[1])
    return out


def cost_inputs(frame: pl.DataFrame, pov_defaults: dict[str, float]) -> CostInputs:
    """The baselines' inputs of usable feature rows (`features.arrival_features`)."""
    return CostInputs(
        half_spread_bps=frame["half_spread_bps"].to_numpy(),
        sigma_bps=np.exp(frame["log_sigma_bps"].to_numpy()),
        size_adv=np.exp(frame["log_size_adv"].to_numpy()),
        pov=planned_participation(frame, pov_defaults),
    )


@dataclass(frozen=True)
class Prediction:
    """Per row: the model's expected cost and sd (bps) and each baseline's (null where the
    row cannot be priced), and the t's degrees of freedom."""

    frame: pl.DataFrame
    nu: float


@dataclass(frozen=True)
class CostModelArtifact:
    spec: FeatureSpec
    weights: Weights
    baselines: dict[str, FittedBaseline]
    pov_defaults: dict[str, float]
    record: dict = field(default_factory=dict)

    def _meta(self) -> dict:
        return {
            "format": 1,
            "spec": self.spec.to_dict(),
            "baselines": {k: v.to_dict() for k, v in sorted(self.baselines.items())},
            "pov_defaults": dict(sorted(self.pov_defaults.items())),
            "record": self.record,
        }

    @property
    def version(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.weights.arrays):
            a = np.ascontiguousarray(self.weights.arrays[name])
            digest.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
            digest.update(a.tobytes())
        digest.update(json.dumps(self._meta(), sort_keys=True, allow_nan=False).encode())
        return "cm-" + digest.hexdigest()[:16]

    def to_bytes(self) -> bytes:
        meta = json.dumps(self._meta(), sort_keys=True, allow_nan=False).encode()
        buffer = io.BytesIO()
        np.savez(buffer, **self.weights.arrays, **{META: np.frombuffer(meta, dtype=np.uint8)})
        return buffer.getvalue()

    @staticmethod
    def from_bytes(data: bytes, expected_version: str | None = None) -> CostModelArtifact:
        """The artifact in `data`; ArtifactError when it cannot be read or (with
        `expected_version`) its content is not that version's."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: np.array(npz[k]) for k in npz.files}
            meta = json.loads(arrays.pop(META).tobytes())
            artifact = CostModelArtifact(
                spec=FeatureSpec.from_dict(meta["spec"]),
                weights=Weights(arrays),
                baselines={k: FittedBaseline.from_dict(v) for k, v in meta["baselines"].items()},
                pov_defaults={k: float(v) for k, v in meta["pov_defaults"].items()},
                record=meta["record"],
            )
        except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"the cost model file cannot be read: {exc}") from exc
        if expected_version is not None and artifact.version != expected_version:
            raise ArtifactError(
                f"the cost model file named {expected_version} holds {artifact.version}: it "
                "was changed or damaged after it was written"
            )
        return artifact

    def predict(self, features: pl.DataFrame) -> Prediction:
        """Score rows of `features.arrival_features`: `expected_cost_bps`,
        `expected_cost_sd_bps` and `<baseline>_expected_cost_bps` / `_sd_bps`, null for rows
        with a `model_null_reason`."""
        usable = features["model_null_reason"].is_null().to_numpy()
        rows = features.filter(pl.Series(usable))
        n = features.height
        nu = self.weights.nu
        out: dict[str, np.ndarray] = {}
        # In blocks of rows: a block's design matrix is built, used and dropped while it is in
        # the CPU's cache (1M orders: 1.2 s to build the whole matrix, 0.5 s in blocks).
        parts = [
            forward(self.weights, self.spec.matrix(block), self.spec.scales(block))
            for block in rows.iter_slices(PREDICT_BLOCK)
        ] or [(np.zeros(0), np.zeros(0))]
        location = np.concatenate([p[0] for p in parts])
        log_scale = np.concatenate([p[1] for p in parts])
        out["expected_cost_bps"] = location * self.spec.target_scale
        out["expected_cost_sd_bps"] = (
            np.exp(log_scale) * self.spec.target_scale * np.sqrt(nu / (nu - 2.0))
        )
        if rows.height:
            inputs = cost_inputs(rows, self.pov_defaults)
            for name in BASELINES:
                mean, sd = self.baselines[name].predict(inputs)
                out[f"{name}_expected_cost_bps"], out[f"{name}_expected_cost_sd_bps"] = mean, sd
        else:
            for name in BASELINES:
                out[f"{name}_expected_cost_bps"] = out[f"{name}_expected_cost_sd_bps"] = np.zeros(0)
        where = np.flatnonzero(usable)
        columns = {}
        for name, values in out.items():
            full = np.full(n, np.nan)
            full[where] = values
            columns[name] = pl.Series(name, full).fill_nan(None)
        return Prediction(pl.DataFrame(columns), nu)

"""The cost model's blocking `promotable` check, returned with each training's
materialization: the trained model may price orders of later trade dates (docs/MODEL.md,
"Promotion"). It fails, with the reason, when no model could be trained, when the promotion
rule refuses the model, or when its stored artifact does not read back as the same model."""

from __future__ import annotations

import dagster as dg

PROMOTABLE = "promotable"


def promotable_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        PROMOTABLE,
        asset=key,
        blocking=True,
        description="The trained model's weights are finite, its held-out NLL is below every "
        "fitted baseline's and the model in service's, its 50% and 90% intervals cover within "
        "the tolerance of nominal, and its stored artifact reads back as the same model.",
    )


def promotable_result(
    key: dg.AssetKey, promoted: bool, reason: str, version: str | None
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=PROMOTABLE,
        asset_key=key,
        passed=promoted,
        metadata={
            "reason": dg.MetadataValue.text(reason),
            "model_version": dg.MetadataValue.text(version or "none"),
        },
    )

"""A trained model is one artifact named by its content: it round-trips, a damaged file is
refused, and it prices exactly the orders whose features are known."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.costmodel.artifact import ArtifactError, CostModelArtifact


@pytest.fixture(scope="module")
def trained(small_outcome) -> CostModelArtifact:
    assert small_outcome.artifact is not None, small_outcome.message
    return small_outcome.artifact


def test_round_trip_keeps_the_version_and_the_predictions(trained, small_desk) -> None:
    features, _ = small_desk
    again = CostModelArtifact.from_bytes(trained.to_bytes(), expected_version=trained.version)
    assert again.version == trained.version
    assert trained.version.startswith("cm-") and len(trained.version) == 19
    a, b = trained.predict(features), again.predict(features)
    assert a.frame.equals(b.frame) and a.nu == b.nu
    assert trained.record["train_end"] < trained.record["holdout_start"]


def test_a_damaged_or_renamed_file_is_refused(trained) -> None:
    data = bytearray(trained.to_bytes())
    with pytest.raises(ArtifactError, match="cannot be read"):
        CostModelArtifact.from_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ArtifactError, match="holds"):
        CostModelArtifact.from_bytes(bytes(data), expected_version="cm-0000000000000000")
    # One weight changed: the content is no longer the version it claims.
    arrays = dict(trained.weights.arrays)
    arrays["bias"] = arrays["bias"] + np.float32(1e-3)
    changed = CostModelArtifact(
        trained.spec, type(trained.weights)(arrays), trained.baselines, trained.pov_defaults,
        trained.record,
    )  # fmt: skip
    with pytest.raises(ArtifactError, match="changed or damaged"):
        CostModelArtifact.from_bytes(changed.to_bytes(), expected_version=trained.version)


def test_orders_without_features_get_no_price(trained, small_desk) -> None:
    features, _ = small_desk
    rows = features.head(5).with_columns(
        model_null_reason=pl.when(pl.int_range(5) < 2).then(pl.lit("no_arrival_quote"))
    )
    p = trained.predict(rows).frame
    assert p["expected_cost_bps"].is_null().to_list() == [True, True, False, False, False]
    assert p["sqrt_expected_cost_bps"].is_null().to_list() == [True, True, False, False, False]
    assert (p["expected_cost_sd_bps"].drop_nulls() > 0).all()

"""The algo assets' run config: every setting exposed, with the documented defaults."""

from __future__ import annotations

import dataclasses

import pytest

from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.defs.algos.resources import AlgoConfig


def test_the_config_exposes_every_setting_with_its_default() -> None:
    fields = {f.name for f in dataclasses.fields(AlgoSettings)}
    assert fields <= set(AlgoConfig.model_fields)
    assert AlgoConfig().settings() == AlgoSettings()


def test_the_config_carries_a_changed_setting_and_refuses_bad_edges() -> None:
    config = AlgoConfig(window_days=5, difficulty_edges_bps=[3.0, 30.0], controls=["urgency"])
    settings = config.settings()
    assert settings.window_days == 5
    assert settings.difficulty_edges_bps == (3.0, 30.0)
    assert settings.controls == ("urgency",)
    with pytest.raises(ValueError, match="two values"):
        AlgoConfig(spread_edges_bps=[1.0, 2.0, 3.0]).settings()
    with pytest.raises(ValueError, match="increasing"):
        AlgoConfig(volatility_edges_bps=[300.0, 100.0]).settings()

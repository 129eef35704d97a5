"""Fixtures shared across the test tree: small simulated landing directories and warehouses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings

from eqs_pipeline.runtime.runner import RunReport, run_pipeline
from eqs_pipeline.simulate import SimulationConfig, simulate_to_landing

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default "ci"):
# - "ci": few examples, the same ones on every run (derandomized, no example database), so the
#   suite stays quick and reproducible. It does not shrink: a failure shows the example as it
#   was generated, at once (shrinking a landing of files takes minutes).
# - "ci-shrink": the same examples, a failure shrunk to a minimal one (to debug a "ci" failure).
# - "deep" (`make test-deep`): many more examples, drawn afresh each run and shrunk; a failure
#   prints the `@reproduce_failure` blob that replays it.
# None runs the "explain" phase (it reruns a failing example a hundred times to annotate it).
# A test that sets its own `max_examples` takes the larger of its own and the profile's
# (eqs_pipeline_tests/quality/test_properties.py).
_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}
_NO_EXPLAIN = [p for p in Phase if p != Phase.explain]
hypothesis_settings.register_profile(
    "ci",
    max_examples=12,
    derandomize=True,
    phases=[p for p in _NO_EXPLAIN if p != Phase.shrink],
    **_COMMON,
)
hypothesis_settings.register_profile(
    "ci-shrink", hypothesis_settings.get_profile("ci"), phases=_NO_EXPLAIN
)
hypothesis_settings.register_profile(
    "deep", max_examples=300, print_blob=True, phases=_NO_EXPLAIN, **_COMMON
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SMALL = SimulationConfig(days=2, symbols=4, orders_per_day=40, seed=3)


def simulate_small(out: Path, cfg: SimulationConfig = SMALL) -> Path:
    simulate_to_landing(cfg, out)
    return out


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, RunReport]:
    """A small simulated landing directory run through the whole pipeline once (read-only use)."""
    root = tmp_path_factory.mktemp("built")
    landing = simulate_small(root / "landing")
    report = run_pipeline(landing, root / "warehouse.duckdb")
    return landing, root / "warehouse.duckdb", report

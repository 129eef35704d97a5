"""Fixtures shared across the test tree: small simulated landing directories and warehouses."""

from __future__ import annotations

from pathlib import Path

import pytest

from eqs_pipeline.runner import RunReport, run_pipeline
from eqs_pipeline.simulate import SimulationConfig, simulate_to_landing

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

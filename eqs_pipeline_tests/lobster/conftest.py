"""Session fixtures: the two real LOBSTER samples, parsed once and imported once."""

from __future__ import annotations

from pathlib import Path

import pytest

from eqs_pipeline.lobster import LobsterDay, import_lobster, read_lobster
from eqs_pipeline_tests.lobster.samples import ZIPS


def _require_data() -> None:
    missing = [str(p) for p in ZIPS.values() if not p.is_file()]
    if missing:
        pytest.skip(f"LOBSTER sample archives not found: {', '.join(missing)}")


@pytest.fixture(scope="session")
def lobster_days() -> dict[str, LobsterDay]:
    _require_data()
    return {sym: read_lobster(path) for sym, path in ZIPS.items()}


@pytest.fixture(scope="session")
def lobster_landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The landing folder written by `import_lobster` for both archives, and its row counts."""
    _require_data()
    out = tmp_path_factory.mktemp("lobster_landing")
    return out, import_lobster(list(ZIPS.values()), out)

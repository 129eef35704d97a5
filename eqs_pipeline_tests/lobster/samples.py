"""Where the real LOBSTER samples are and how the tests read the landed files back.

The archives are not copied into the repository; they are read from `../shared/data/lobster/`
next to the repository root, and every test that needs them is skipped when they are absent.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
ZIPS = {
    "AMZN": DATA_DIR / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip",
    "GOOG": DATA_DIR / "LOBSTER_SampleFile_GOOG_2012-06-21_1.zip",
}
DATE = "2012-06-21"


def read_landed(landing: Path, table: str) -> pl.DataFrame:
    """All landed Parquet files of one table (every symbol), as written."""
    folder = landing / table if table == "instruments" else landing / table / f"date={DATE}"
    return pl.concat([pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))])

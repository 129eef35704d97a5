"""The landing directory's layout: where a table's files are, which dates landed, raw row counts.

Layout (DESIGN.md): `<landing>/<table>/date=YYYY-MM-DD/<any-name>.{parquet,csv,jsonl}` for dated
tables and `<landing>/instruments/<any-name>.{parquet,csv,jsonl}`. Entries whose names start with
`.` or `_` (editor files, `_SUCCESS` markers) are ignored; anything else that does not fit the
layout is a `LandingError`, because a row in a misplaced file would otherwise be silently lost.

`count_landed_rows` recounts the raw files by a different route from the reader (Parquet
metadata, a CSV row scan, non-blank JSON lines) for the conservation check.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from eqs_pipeline.contract import CONTRACT, DATED_TABLES, FILE_SUFFIXES

DATE_PREFIX = "date="

EXPECTED_LAYOUT = (
    "expected <landing>/<table>/date=YYYY-MM-DD/<name>.{parquet,csv,jsonl} for the dated tables "
    f"({', '.join(DATED_TABLES)}) and <landing>/instruments/<name>.{{parquet,csv,jsonl}}"
)


class LandingError(Exception):
    """The landing directory or one of its files cannot be ingested; the message says where and why."""


def _is_hidden(path: Path) -> bool:
    return path.name.startswith((".", "_"))


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not _is_hidden(p))


def _contract(table: str):
    if table not in CONTRACT:
        raise ValueError(f"unknown table {table!r}; the contract tables are {sorted(CONTRACT)}")
    return CONTRACT[table]


def _parse_date_folder(folder: Path) -> date:
    text = folder.name.removeprefix(DATE_PREFIX)
    if not folder.name.startswith(DATE_PREFIX) or not folder.is_dir():
        raise LandingError(f"{folder}: not a date=YYYY-MM-DD folder; {EXPECTED_LAYOUT}")
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise LandingError(
            f"{folder}: {text!r} is not a valid YYYY-MM-DD date; {EXPECTED_LAYOUT}"
        ) from e


def discover_trade_dates(landing: Path) -> list[date]:
    """The trade dates with a `date=YYYY-MM-DD` folder in any dated table folder, ascending.

    Raises `LandingError` when `landing` does not exist, holds no contract table folder, holds a
    folder that is not a contract table, or a dated table folder holds anything but date folders.
    """
    landing = Path(landing)
    if not landing.is_dir():
        raise LandingError(f"landing directory {landing} does not exist; {EXPECTED_LAYOUT}")
    entries = _visible(landing)
    unknown = [p.name for p in entries if p.name not in CONTRACT]
    if unknown:
        raise LandingError(
            f"{landing}: unexpected entries {unknown}; only the contract table folders "
            f"{sorted(CONTRACT)} may be there; {EXPECTED_LAYOUT}"
        )
    tables = [p for p in entries if p.is_dir()]
    if not tables:
        raise LandingError(f"{landing} holds no contract table folder; {EXPECTED_LAYOUT}")
    dates: set[date] = set()
    for folder in tables:
        if folder.name in DATED_TABLES:
            dates.update(_parse_date_folder(sub) for sub in _visible(folder))
    return sorted(dates)


def table_folder(landing: Path, table: str, trade_date: date | None) -> Path:
    """The folder that holds `table`'s files for `trade_date` (None for the undated instruments)."""
    contract = _contract(table)
    if contract.dated and trade_date is None:
        raise ValueError(f"{table} is dated: pass a trade_date")
    if not contract.dated and trade_date is not None:
        raise ValueError(f"{table} is not dated: pass trade_date=None")
    folder = Path(landing) / table
    if trade_date is not None:
        folder = folder / f"{DATE_PREFIX}{trade_date.isoformat()}"
    return folder


def landed_files(landing: Path, table: str, trade_date: date | None) -> list[Path]:
    """The data files of one table and date, sorted by name; [] when the folder does not exist.

    Raises `LandingError` for anything in the folder that is not a Parquet, CSV or JSON Lines file.
    """
    folder = table_folder(landing, table, trade_date)
    if not folder.is_dir():
        return []
    files = _visible(folder)
    stray = [p.name for p in files if not p.is_file() or p.suffix.lower() not in FILE_SUFFIXES]
    if stray:
        raise LandingError(
            f"{folder}: {stray} are not {'/'.join(FILE_SUFFIXES)} files; move them out of the "
            f"landing folder (or prefix them with '_' to have them ignored); {EXPECTED_LAYOUT}"
        )
    return files


def _count_file(path: Path) -> int:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.ParquetFile(path).metadata.num_rows
        if suffix == ".csv":
            return pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    except (OSError, pl.exceptions.PolarsError, ValueError) as e:
        raise LandingError(f"{path}: cannot count its rows ({e})") from e


def count_landed_rows(landing: Path, table: str, trade_date: date | None) -> int:
    """Data rows in the landed files of one table and date, counted without the reader."""
    return sum(_count_file(p) for p in landed_files(landing, table, trade_date))

"""The landing directory's layout: where a table's files are, which dates landed, raw row counts.

Layout (DESIGN.md): `<landing>/<table>/date=YYYY-MM-DD/<any-name>.{parquet,csv,jsonl}` for dated
tables and `<landing>/instruments/<any-name>.{parquet,csv,jsonl}`. Entries whose names start with
`.` or `_` (editor files, `_SUCCESS` markers) are ignored; anything else that does not fit the
layout is a `LandingError`, because a row in a misplaced file would otherwise be silently lost.

The landing is a local folder or an object-store URL (`s3://bucket/eqs/landing`); every function
here takes either and lists it through `eqs_pipeline.ingest.store`.

`count_landed_rows` recounts the raw files by a different route from the reader (Parquet
metadata, pyarrow's CSV tokenizer, non-blank JSON lines) for the conservation check.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from eqs_pipeline.contract import CONTRACT, DATED_TABLES, FILE_SUFFIXES
from eqs_pipeline.ingest import store
from eqs_pipeline.ingest.store import Entry
from eqs_pipeline.lake import join

DATE_PREFIX = "date="

EXPECTED_LAYOUT = (
    "expected <landing>/<table>/date=YYYY-MM-DD/<name>.{parquet,csv,jsonl} for the dated tables "
    f"({', '.join(DATED_TABLES)}) and <landing>/instruments/<name>.{{parquet,csv,jsonl}}"
)

T = TypeVar("T")


class LandingError(Exception):
    """The landing directory or one of its files cannot be ingested; the message says where and why."""


def is_hidden(name: str) -> bool:
    """Whether the layout ignores an entry of this name (`.` or `_` first: editor files,
    `_SUCCESS` markers)."""
    return name.startswith((".", "_"))


def _store(location: str | Path, call: Callable[[], T]) -> T:
    """`call()`, with the store's own errors (a missing bucket, a refused credential, an
    unreadable folder) raised as `LandingError` naming the location."""
    try:
        return call()
    except OSError as e:
        raise LandingError(f"{location}: cannot list or read it ({e})") from e


def _visible(folder: str | Path) -> list[Entry]:
    return [e for e in _store(folder, lambda: store.list_folder(folder)) if not is_hidden(e.name)]


def _contract(table: str):
    if table not in CONTRACT:
        raise ValueError(f"unknown table {table!r}; the contract tables are {sorted(CONTRACT)}")
    return CONTRACT[table]


def _parse_date_folder(folder: Entry) -> date:
    text = folder.name.removeprefix(DATE_PREFIX)
    if not folder.name.startswith(DATE_PREFIX) or not folder.is_dir:
        raise LandingError(f"{folder.location}: not a date=YYYY-MM-DD folder; {EXPECTED_LAYOUT}")
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise LandingError(
            f"{folder.location}: {text!r} is not a valid YYYY-MM-DD date; {EXPECTED_LAYOUT}"
        ) from e


def landing_exists(landing: str | Path) -> bool:
    """Whether the landing folder exists (on object storage: whether objects are under it)."""
    return _store(landing, lambda: store.is_dir(landing))


def discover_trade_dates(landing: str | Path) -> list[date]:
    """The trade dates with a `date=YYYY-MM-DD` folder in any dated table folder, ascending.

    Raises `LandingError` when `landing` does not exist, holds no contract table folder, holds a
    folder that is not a contract table, or a dated table folder holds anything but date folders.
    """
    if not landing_exists(landing):
        raise LandingError(f"landing directory {landing} does not exist; {EXPECTED_LAYOUT}")
    entries = _visible(landing)
    unknown = [e.name for e in entries if e.name not in CONTRACT]
    if unknown:
        raise LandingError(
            f"{landing}: unexpected entries {unknown}; only the contract table folders "
            f"{sorted(CONTRACT)} may be there; {EXPECTED_LAYOUT}"
        )
    tables = [e for e in entries if e.is_dir]
    if not tables:
        raise LandingError(f"{landing} holds no contract table folder; {EXPECTED_LAYOUT}")
    dates: set[date] = set()
    for folder in tables:
        if folder.name in DATED_TABLES:
            dates.update(_parse_date_folder(sub) for sub in _visible(folder.location))
    return sorted(dates)


def table_folder(landing: str | Path, table: str, trade_date: date | None) -> str:
    """The folder that holds `table`'s files for `trade_date` (None for the undated instruments)."""
    contract = _contract(table)
    if contract.dated and trade_date is None:
        raise ValueError(f"{table} is dated: pass a trade_date")
    if not contract.dated and trade_date is not None:
        raise ValueError(f"{table} is not dated: pass trade_date=None")
    if trade_date is None:
        return join(landing, table)
    return join(landing, table, f"{DATE_PREFIX}{trade_date.isoformat()}")


def landed_files(landing: str | Path, table: str, trade_date: date | None) -> list[Entry]:
    """The data files of one table and date, sorted by name; [] when the folder does not exist.

    Raises `LandingError` for anything in the folder that is not a Parquet, CSV or JSON Lines file.
    """
    folder = table_folder(landing, table, trade_date)
    files = _visible(folder)
    stray = [e.name for e in files if e.is_dir or e.suffix not in FILE_SUFFIXES]
    if stray:
        raise LandingError(
            f"{folder}: {stray} are not {'/'.join(FILE_SUFFIXES)} files; move them out of the "
            f"landing folder (or prefix them with '_' to have them ignored); {EXPECTED_LAYOUT}"
        )
    return files


# One row that does not have a field per header column: its 1-based record number counting the
# header (None when pyarrow cannot tell), its number of fields, the header's, and its text.
InvalidRow = tuple[int | None, int, int, str]


def csv_records(source: str | bytes, numbered: bool = False) -> tuple[int, list[InvalidRow]]:
    """Data rows of a CSV (header excluded, empty lines skipped) and its rows of the wrong width.

    pyarrow's tokenizer with the reader's dialect (',', '"' doubled inside quotes, line breaks
    allowed in quoted values) and only the first column converted (as bytes: no UTF-8 check, no
    type inference). A file with no header at all (0 bytes, blank lines only) has 0 rows.
    `numbered` tokenizes on one thread, which pyarrow needs to number the invalid rows.
    """
    invalid: list[InvalidRow] = []

    def keep(row) -> str:
        invalid.append((row.number, row.actual_columns, row.expected_columns, row.text))
        return "skip"

    data = store.readable(source)
    try:
        table = pa_csv.read_csv(
            data,
            read_options=pa_csv.ReadOptions(
                autogenerate_column_names=True, use_threads=not numbered
            ),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=keep
            ),
            convert_options=pa_csv.ConvertOptions(
                include_columns=["f0"], column_types={"f0": pa.binary()}
            ),
        )
    except pa.ArrowInvalid:
        if _blank(source):
            return 0, []
        raise
    return max(table.num_rows - 1, 0), invalid


def _blank(source: str | bytes) -> bool:
    """Whether the file holds nothing but white space (pyarrow: 'Empty CSV file')."""
    if isinstance(source, str):
        with open(source, "rb") as f:
            head = f.read(4097)
    else:
        head = source[:4097]
    return len(head) <= 4096 and not head.strip()


def _count_file(file: Entry) -> int:
    try:
        if file.suffix == ".parquet":
            with store.open_input(file.location) as f:
                return pq.ParquetFile(f).metadata.num_rows
        if file.suffix == ".csv":
            rows, invalid = csv_records(store.source(file.location))
            if invalid:
                raise LandingError(
                    f"{file.location}: cannot count its rows ({len(invalid)} row(s) do not have "
                    "one field per header column)"
                )
            return rows
        with store.open_binary(file.location) as lines:
            return sum(1 for line in lines if line.strip())
    except (OSError, pl.exceptions.PolarsError, ValueError, pa.ArrowException) as e:
        raise LandingError(f"{file.location}: cannot count its rows ({e})") from e


def count_landed_rows(landing: str | Path, table: str, trade_date: date | None) -> int:
    """Data rows in the landed files of one table and date, counted without the reader."""
    return sum(_count_file(f) for f in landed_files(landing, table, trade_date))

"""The landing directory's layout: where a table's files are, which dates landed, raw row counts.

Layout (docs/INGESTION.md): `<landing>/<table>/date=YYYY-MM-DD/<any-name>.{parquet,csv,jsonl}` for dated
tables and `<landing>/instruments/<any-name>.{parquet,csv,jsonl}`. Entries whose names start with
`.` or `_` (editor files, `_SUCCESS` markers) are ignored; anything else that does not fit the
layout is a `LandingError`, because a row in a misplaced file would otherwise be silently lost.

The landing is a local folder or an object-store URL (`s3://bucket/eqs/landing`); every function
here takes either and lists it through `eqs_pipeline.storage.store`.

`count_landed_rows` recounts the raw files by a different route from the reader (Parquet
metadata, pyarrow's CSV tokenizer, non-blank JSON lines) for the conservation check.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from eqs_pipeline.core.contract import CONTRACT, DATED_TABLES, FILE_SUFFIXES
from eqs_pipeline.storage import store
from eqs_pipeline.storage.lake import join
from eqs_pipeline.storage.store import Entry

DATE_PREFIX = "date="

EXPECTED_LAYOUT = (
    "expected <landing>/<table>/date=YYYY-MM-DD/<name>.{parquet,csv,jsonl} for the dated tables "
    f"({', '.join(DATED_TABLES)}) and <landing>/instruments/<name>.{{parquet,csv,jsonl}}"
)

T = TypeVar("T")

# A file listed, then gone when read: what a LandingError says about it.
GONE = (
    "listed, then gone before it was read (moved or deleted while the run read the landing "
    "directory); run again once the files have landed"
)


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


@dataclass(frozen=True)
class CsvProblem:
    """The first place a CSV breaks its structure (`first_csv_problem`).

    line: its 1-based line number in the file, as an editor counts (blank lines and the lines
        of a quoted value that spans lines included); for a row of the wrong width, the line
        the row starts on.
    problem: what is wrong there, in words ("has text after the closing quote ...").
    text: that line's text.
    advice: how to fix it.
    wrong_width: for a row of the wrong width, (its data row number, its fields, the header's
        fields) and the count of such rows; None for the other problems.
    """

    line: int
    problem: str
    text: str
    advice: str
    wrong_width: tuple[int, int, int, int] | None = None


# The rest of a quoted value from just after its opening quote: anything, '""' for a quote, up to
# its closing quote. Possessive, so that '"a""' is an unclosed value, not 'a' and a stray '"'.
_QUOTED_REST = re.compile(r'[^"]*+(?:""[^"]*+)*+"')
_QUOTED = r'"[^"]*+(?:""[^"]*+)*+"'
# A whole line of complete values, quoted or free of quotes; and its quoted values.
_PLAIN_RECORD = re.compile(rf'(?:{_QUOTED}|[^,"]*+)(?:,(?:{_QUOTED}|[^,"]*+))*+')
_QUOTED_VALUE = re.compile(_QUOTED)
_QUOTE_ADVICE = "quote a value that holds '\"' and double each '\"' inside it"


def _lines(source: str | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield from io.BytesIO(source)
        return
    with open(source, "rb") as f:
        yield from f


def first_csv_problem(source: str | bytes) -> CsvProblem | None:
    """Where a CSV that a reader refused breaks the reader's dialect (',', '"' around a value,
    '""' inside one, line breaks allowed in quoted values), by line: a line that is not UTF-8, a
    '"' inside an unquoted value (an odd number of them: Polars pairs them up), text after a
    value's closing quote, a quoted value never closed, else the first row with more or fewer
    fields than the header (and how many such rows there are). None if there is none of these.

    For error messages only (the readers name a byte offset or a row, not a line): the file is
    read once more, line by line, in Python."""
    expected = None  # the header's fields
    rows = wrong = 0
    first_wrong: tuple[int, int, int, str] | None = None  # line, data row, fields, text
    in_quote = False
    fields = start = quote_line = 0
    start_text = quote_text = ""
    for number, raw in enumerate(_lines(source), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = raw.decode("utf-8", "replace").rstrip("\r\n")
            problem = f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})"
            return CsvProblem(number, problem, shown, "write the file as UTF-8")
        body = text.rstrip("\r\n")
        if not in_quote:
            if not body:
                continue  # a blank line is not a row
            start, start_text, fields = number, body, 1
        pos = 0
        if not in_quote and '"' not in body:  # the usual line: its values are its commas
            fields, pos = body.count(",") + 1, len(body)
        elif not in_quote and _PLAIN_RECORD.fullmatch(body):
            fields, pos = _QUOTED_VALUE.sub("", body).count(",") + 1, len(body)
        while pos < len(body) or in_quote:
            if in_quote:
                closing = _QUOTED_REST.match(body, pos)
                if closing is None:
                    break  # the value goes on on the next line
                in_quote, pos = False, closing.end()
                if pos < len(body) and body[pos] != ",":
                    problem = f"has text after the closing quote of a value (character {pos + 1})"
                    return CsvProblem(number, problem, body, _QUOTE_ADVICE)
            elif body.startswith('"', pos):
                in_quote, quote_line, quote_text, pos = True, number, body, pos + 1
                continue
            else:
                end = body.find(",", pos)
                end = len(body) if end < 0 else end
                if body.count('"', pos, end) % 2:
                    at = body.index('"', pos) + 1
                    problem = (
                        f"has a '\"' inside a value that does not start with one (character {at})"
                    )
                    return CsvProblem(number, problem, body, _QUOTE_ADVICE)
                pos = end
            if pos >= len(body):
                break
            pos, fields = pos + 1, fields + 1  # a ',': the next value
        if in_quote:
            continue
        if expected is None:
            expected = fields
            continue
        rows += 1
        if fields != expected:
            wrong += 1
            first_wrong = first_wrong or (start, rows, fields, start_text)
    if in_quote:
        problem = "opens a quoted value that is never closed"
        advice = "close it with '\"'; a '\"' inside a quoted value is written twice"
        return CsvProblem(quote_line, problem, quote_text, advice)
    if first_wrong is None:
        return None
    line, row, got, text = first_wrong
    problem = f"(data row {row}) has {got} field(s), the header {expected}"
    advice = "write every field, empty ones too"
    return CsvProblem(line, problem, text, advice, (row, got, expected or 0, wrong))


def _head(source: str | bytes, size: int) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as f:
            return f.read(size)
    return source[:size]


def _blank(source: str | bytes) -> bool:
    """Whether the file holds nothing but white space (pyarrow: 'Empty CSV file')."""
    head = _head(source, 4097)
    return len(head) <= 4096 and not head.strip()


def blank_csv(source: str | bytes) -> bool:
    """Whether a CSV holds nothing but white space: no header, no rows."""
    return _blank(source)


def lone_cr_lines(source: str | bytes) -> bool:
    """Whether a CSV's header line ends in a carriage return alone (classic Mac line ends).
    Polars would read the whole file as one header line and lose its rows, while pyarrow's
    count splits them: such a file is refused rather than read wrong."""
    head = _head(source, 65536)
    cr, lf = head.find(b"\r"), head.find(b"\n")
    return cr >= 0 and (lf < 0 or lf > cr + 1)


def _count_file(file: Entry) -> int:
    try:
        if file.suffix == ".parquet":
            with store.open_input(file.location) as f:
                return pq.ParquetFile(f).metadata.num_rows
        if file.suffix == ".csv":
            source = store.source(file.location)
            if _blank(source):
                return 0
            rows, invalid = csv_records(source)
            if invalid:
                found = first_csv_problem(source)
                where = "" if found is None else f"; see line {found.line}"
                raise LandingError(
                    f"{file.location}: cannot count its rows ({len(invalid)} row(s) do not have "
                    f"one field per header column{where})"
                )
            return rows
        with store.open_binary(file.location) as lines:
            return sum(1 for line in lines if line.strip())
    except FileNotFoundError as e:
        raise LandingError(f"{file.location}: {GONE} ({e})") from e
    except (OSError, pl.exceptions.PolarsError, ValueError, pa.ArrowException) as e:
        raise LandingError(f"{file.location}: cannot count its rows ({e})") from e


def count_landed_rows(landing: str | Path, table: str, trade_date: date | None) -> int:
    """Data rows in the landed files of one table and date, counted without the reader."""
    return sum(_count_file(f) for f in landed_files(landing, table, trade_date))

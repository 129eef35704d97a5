"""Reading one landed table and date into a frame of contract-typed columns plus provenance.

Every file is read whole (Parquet natively, CSV with every value as a string, JSON Lines as
JSON), checked for file-level problems, then coerced column by column to the contract types
with Polars expressions. A value that is present but cannot be coerced becomes null and the row
gets `bad_value:<column>` in `_reasons`; the validation rules decide later where the row goes.
File-level problems (unreadable file, missing required column, timestamps without a UTC offset)
raise `LandingError` and nothing of the table and date is returned.

The original text of a row is needed only if the row ends in quarantine. `original_rows`
re-reads just the files that hold quarantined rows and encodes just those rows, so a clean day
of tens of millions of quotes costs no JSON encoding (about 0.2 s and 100 bytes per thousand
rows otherwise).
"""

from __future__ import annotations

import json
import math
import re
import zoneinfo
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from eqs_pipeline.core.contract import CONTRACT, TS, TableContract
from eqs_pipeline.ingest import kernels
from eqs_pipeline.ingest.layout import (
    GONE,
    LandingError,
    blank_csv,
    csv_records,
    first_csv_problem,
    landed_files,
    lone_cr_lines,
)
from eqs_pipeline.storage import store
from eqs_pipeline.storage.lake import join

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
REASONS = "_reasons"
PROVENANCE_SCHEMA: dict[str, pl.DataType] = {
    SOURCE_FILE: pl.String(),
    SOURCE_ROW: pl.Int64(),
    REASONS: pl.List(pl.String()),
}

# ISO-8601 date and time, 'T' or space separator, optional seconds and fraction.
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
_NAIVE = rf"^{_ISO_DATETIME}$"
# A Polars panic (a Rust `unwrap` on input it did not expect) is a BaseException, not an
# Exception: it is caught by name so that it too becomes a LandingError naming the file.
_POLARS_FAILURES = (pl.exceptions.PolarsError, pl.exceptions.PanicException)
_READ_ERRORS = (OSError, ValueError, UnicodeDecodeError, pa.ArrowException, *_POLARS_FAILURES)
# A JSON Lines value of a text column that may be a nested object or array (see `_read_jsonl`).
_NESTED = "__nested__:"


def raw_schema(table: str) -> dict[str, pl.DataType]:
    """The schema `read_table` returns for `table`: contract columns, then provenance columns."""
    return {**CONTRACT[table].polars_schema, **PROVENANCE_SCHEMA}


# A reader gets a file's path (local) or its bytes (object storage, one GET: see `store.source`)
# and opens it with `store.readable` for each read.
Source = str | bytes


def _empty(contract: TableContract) -> pl.DataFrame:
    """A file with no rows at all: every contract column present, as text, zero rows."""
    return pl.DataFrame(schema=dict.fromkeys(contract.names, pl.String))


def _read_csv(
    source: Source, contract: TableContract, where: str
) -> tuple[pl.DataFrame, pl.Series | None]:
    """CSV with a header, every value as text.

    A 0-byte file (or one of blank lines only) has no rows, like an empty JSON Lines file. A
    contract column named twice in the header is a file error (Polars would silently rename the
    second). Polars pads a row with fewer fields than the header with nulls and reads an empty
    line as a row of nulls; neither can be told from real empty values in the frame, so when
    the last column has a null at all (never the case in a file of full rows whose last value is
    given, so the usual file costs nothing more) the file is tokenized once more by pyarrow
    (`layout.csv_records`): a short row is a file error naming the row, and as many all-null
    rows as pyarrow saw empty lines are dropped (they are not rows; `count_landed_rows` skips
    them too). A line of separators only (`,,,`) is a row, quarantined for its missing values.
    A row with more fields than the header stops Polars' reader; the same tokenizing names it.
    Any file error of the CSV's structure names its line (`layout.first_csv_problem`).
    """
    if blank_csv(source):
        return _empty(contract), None
    if lone_cr_lines(source):
        raise LandingError(
            f"{where}: its lines end in a carriage return alone (classic Mac line ends), which "
            "would read as one line; save it with LF or CRLF line ends"
        )
    try:
        df = pl.read_csv(store.readable(source), infer_schema=False, raise_if_empty=False)
    except pl.exceptions.ComputeError:
        _raise_for_broken_csv(source, where)
        _raise_for_wrong_widths(source, where)
        raise
    if df.width == 0:
        return _empty(contract), None
    repeated = sorted(
        {
            c
            for c in contract.names
            for name in df.columns
            if re.fullmatch(rf"{re.escape(c)}_duplicated_\d+", name)
        }
    )
    if repeated:
        raise LandingError(
            f"{where}: column(s) {repeated} appear more than once in the header; keep one of each"
        )
    if df.height == 0 or df.get_column(df.columns[-1]).null_count() == 0:
        return df, None
    rows = _raise_for_wrong_widths(source, where)
    empty = pl.all_horizontal(pl.all().is_null())
    blank_lines = df.height - rows
    all_null = df.select(empty.sum()).item()
    if not 0 <= blank_lines <= all_null:
        _raise_for_broken_csv(source, where)
        raise LandingError(
            f"{where}: cannot tell its rows apart: {df.height} rows read by Polars, {rows} by "
            "pyarrow; check the quoting of the file"
        )
    if blank_lines == 0:
        return df, None
    # Empty lines are all-null rows and all-null rows are alike, so which ones are dropped does
    # not matter; the last ones are (the usual case: blank lines at the end of the file).
    from_end = empty.cast(pl.Int64).reverse().cum_sum().reverse()
    return df.filter(~(empty & (from_end <= blank_lines))), None


def _raise_for_broken_csv(source: Source, where: str) -> None:
    """A `LandingError` naming the line where the CSV breaks its dialect, if it does
    (`layout.first_csv_problem`): an unreadable byte, a stray or unclosed quote, a row of the
    wrong width. Only on the error path: the file is read once more, line by line."""
    found = first_csv_problem(source)
    if found is None:
        return
    shown = found.text if len(found.text) <= 80 else found.text[:77] + "..."
    if found.wrong_width is None:
        raise LandingError(f"{where}: line {found.line} {found.problem}: {shown!r}; {found.advice}")
    row, got, expected, wrong = found.wrong_width
    raise LandingError(
        f"{where}: {wrong} row(s) do not have one field per header column (first: data row "
        f"{row} has {got} field(s), the header {expected}, on line {found.line}: {shown!r}); "
        f"{found.advice}"
    )


def _raise_for_wrong_widths(source: Source, where: str) -> int:
    """The CSV's data rows (`layout.csv_records`); a `LandingError` naming the first row with
    fewer or more fields than the header, and its line, if there is one."""
    rows, invalid = csv_records(source, numbered=True)
    if invalid:
        _raise_for_broken_csv(source, where)
        number, got, expected, text = invalid[0]
        row = "?" if number is None else number - 1
        raise LandingError(
            f"{where}: {len(invalid)} row(s) do not have one field per header column (first: "
            f"data row {row} has {got} field(s), the header {expected}: {text[:80]!r}); "
            "write every field, empty ones too"
        )
    return rows


def _polars_time_zone(tz: str) -> bool:
    """Whether Polars reads an Arrow timestamp of this zone (it panics on 'Z' or '+05:30')."""
    return (
        tz.upper() == "UTC"
        or tz in _zone_names()
        or re.fullmatch(r"[+-]\d{2}(:?00)?", tz) is not None
    )


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _read_parquet(
    source: Source, contract: TableContract, where: str
) -> tuple[pl.DataFrame, pl.Series | None]:
    """Parquet with its own types.

    An Arrow timestamp holds UTC instants whatever its zone label, so a column labelled with a
    zone Polars cannot parse ('Z', what Java writes for UTC, or an offset like '+05:30') is
    relabelled UTC by pyarrow before Polars sees it; the footer read that tells costs well under
    a millisecond, and only such files take the pyarrow path.
    """
    schema = pq.read_schema(store.readable(source))
    odd = [
        i
        for i, field in enumerate(schema)
        if pa.types.is_timestamp(field.type)
        and field.type.tz is not None
        and not _polars_time_zone(field.type.tz)
    ]
    if not odd:
        return pl.read_parquet(store.readable(source)), None
    table = pq.read_table(store.readable(source))
    for i in odd:
        field = table.schema.field(i)
        utc = pa.timestamp(field.type.unit, "UTC")
        table = table.set_column(i, field.with_type(utc), table.column(i).cast(utc))
    return pl.from_arrow(table), None


def _read_jsonl(
    source: Source, contract: TableContract, where: str
) -> tuple[pl.DataFrame, pl.Series | None]:
    """JSON Lines; contract values read as text; also returns the non-blank lines (the rows'
    original JSON).

    Only the contract keys are read, each as text, so a key whose JSON type differs from line
    to line (a number here, a list there), in the contract or not, cannot fail the file. A key
    is present when it has a value on some line or appears as a key in the text (a key that is
    null on every line); one absent from every line is an absent column.
    """
    every_line = pl.read_lines(store.readable(source)).to_series().str.strip_chars()
    lines = every_line.filter(every_line != "")
    if lines.len() == 0:
        return _empty(contract), lines
    try:
        df = pl.read_ndjson(store.readable(source), schema=dict.fromkeys(contract.names, pl.String))
    except pl.exceptions.ComputeError:
        _raise_for_broken_line(every_line, where)
        raise
    if df.height != lines.len():
        raise LandingError(
            f"{where}: {lines.len()} non-blank lines but {df.height} JSON rows were parsed; "
            "write one JSON object per line"
        )
    present = [
        c
        for c in contract.names
        if df.get_column(c).null_count() < df.height
        or lines.str.contains(rf'"{re.escape(c)}"\s*:').any()
    ]
    if not present:
        return pl.DataFrame(), lines
    return df.select(present).with_columns(_nested_text(df, lines, contract)), lines


def _raise_for_broken_line(lines: pl.Series, where: str) -> None:
    """The first line of a JSON Lines file that is not a JSON object, by its line number in the
    file (Polars' parser names a character, not a line). Only on the error path: the lines are
    parsed once more, one by one."""
    for number, line in enumerate(lines.to_list(), start=1):
        if not line:
            continue
        try:
            value = json.loads(line)
            json.dumps(value, ensure_ascii=False).encode()
        except json.JSONDecodeError as exc:
            problem = f"not JSON ({exc.msg} at character {exc.pos + 1})"
        except UnicodeEncodeError:
            problem = (
                "JSON with a lone surrogate escape (a \\udXXX without its pair is no character)"
            )
        else:
            if isinstance(value, dict):
                continue
            problem = f"a JSON {type(value).__name__}, not an object"
        shown = line if len(line) <= 80 else line[:77] + "..."
        raise LandingError(
            f"{where}: line {number} is {problem}: {shown!r}; write one JSON object per line"
        )


def _nested_text(df: pl.DataFrame, lines: pl.Series, contract: TableContract) -> list[pl.Series]:
    """`_NESTED<col>` flags for the text columns whose value on a line is a JSON object or array.

    Polars reads a nested value into a text column as its JSON text, which cannot be told from a
    string that looks like JSON; only the lines whose text starts with '{' or '[' (usually none)
    are parsed again, in Python, to tell which.
    """
    flags = []
    for col in contract.columns:
        if col.dtype != pl.String or col.name not in df.columns:
            continue
        text = df.get_column(col.name).str.strip_chars_start()
        maybe = (text.str.starts_with("{") | text.str.starts_with("[")).fill_null(False)
        if not maybe.any():
            continue
        rows = maybe.arg_true()
        nested = [
            isinstance(json.loads(line).get(col.name), dict | list)
            for line in lines.gather(rows).to_list()
        ]
        flag = pl.Series(f"{_NESTED}{col.name}", [False] * df.height, pl.Boolean)
        flag = flag.scatter(rows, nested)
        flags.append(flag)
    return flags


def _encode_rows(df: pl.DataFrame) -> pl.Series:
    """Every row of `df`, all its columns, as a JSON object; for quarantined rows only.

    Each column is encoded on its own as `"name":value` and the pieces are joined, so that a
    column's encoding can depend on its type (and fall back, see `_encode_column`) without
    touching the others. Types JSON lacks become text: binary as hex, durations as ISO-8601
    (`PT0.003S`), decimals, times and categories as their text; NaN and infinities as "NaN",
    "Infinity" and "-Infinity" (JSON has no such numbers, and null would read as absent).
    """
    if not df.columns:
        return pl.Series("row_json", [None] * df.height, pl.String)
    pieces = [_encode_column(df.get_column(name)) for name in df.columns]
    joined = pl.DataFrame(pieces).select(
        pl.concat_str([pl.lit("{"), pl.concat_str(pl.all(), separator=","), pl.lit("}")])
    )
    return joined.to_series().alias("row_json")


_JSON_NATIVE = (pl.Boolean, pl.String, pl.Null, pl.Datetime, pl.Date)


def _json_native(dtype: pl.DataType) -> bool:
    """Whether Polars' JSON encoder writes the type faithfully (floats and binary: no)."""
    if isinstance(dtype, pl.List | pl.Array):
        return _json_native(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return all(_json_native(f.dtype) for f in dtype.fields)
    return dtype.is_integer() or isinstance(dtype, _JSON_NATIVE)


def _encode_column(series: pl.Series) -> pl.Series:
    """`"name":value` for every value of the column (see `_encode_rows`).

    Top-level types Polars can render are encoded by Polars; anything else (nested values
    holding floats, binary or durations, objects, a conversion Polars refuses) goes through
    Python, value by value, which is affordable because only quarantined rows are encoded.
    """
    name, dtype = series.name, series.dtype
    value = pl.col(name)
    if _json_native(dtype):
        encoded = value
    elif dtype.is_float():
        special = value.is_nan() | value.is_infinite()
        text = pl.when(value.is_nan()).then(pl.lit("NaN"))
        text = text.when(value > 0).then(pl.lit("Infinity")).otherwise(pl.lit("-Infinity"))
        as_json = pl.struct(value).struct.json_encode()
        as_text = pl.struct(text.alias(name)).struct.json_encode()
        piece = pl.when(special.fill_null(False)).then(as_text).otherwise(as_json)
        return _strip_braces(series, piece)
    elif dtype == pl.Binary:
        encoded = value.bin.encode("hex")
    elif isinstance(dtype, pl.Duration):
        encoded = value.dt.to_string("iso")
    elif not dtype.is_nested() and dtype != pl.Object:
        encoded = value.cast(pl.String)
    else:
        return _encode_in_python(series)
    try:
        return _strip_braces(series, pl.struct(encoded.alias(name)).struct.json_encode())
    except _POLARS_FAILURES:
        return _encode_in_python(series)


def _strip_braces(series: pl.Series, encoded: pl.Expr) -> pl.Series:
    """The one-field JSON object `encoded` gives for the column, without its braces."""
    frame = series.to_frame()
    return frame.select(encoded.str.strip_prefix("{").str.strip_suffix("}")).to_series()


def _encode_in_python(series: pl.Series) -> pl.Series:
    name = series.name
    pieces = [
        json.dumps({name: _jsonable(v)}, ensure_ascii=False, separators=(",", ":"))[1:-1]
        for v in series.to_list()
    ]
    return pl.Series(name, pieces, pl.String)


def _jsonable(value: Any) -> Any:
    """A Python value as JSON can hold it (the types JSON lacks as text, as in `_encode_rows`)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return pl.Series([value]).dt.to_string("iso").item()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


_READERS = {".csv": _read_csv, ".parquet": _read_parquet, ".jsonl": _read_jsonl}


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column as stripped text, empty text as null."""
    text = pl.col(name) if dtype == pl.String else pl.col(name).cast(pl.String, strict=False)
    text = text.str.strip_chars()
    return pl.when(text != "").then(text)


def _parse_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO-8601 with 'Z' or a +hh:mm / +hhmm offset -> UTC microseconds; anything else null."""
    normal = (
        text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        .str.replace(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})([Zz+-])", "${1}:00${2}")
        .str.replace(r"[Zz]$", "+00:00")
    )
    parsed = normal.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_unit="us", strict=False)
    return parsed.dt.convert_time_zone("UTC")


def _check_timestamps(df: pl.DataFrame, contract: TableContract, where: str) -> None:
    """Naive timestamps are a file-level error: the instant they denote is unknown."""
    for name in contract.timestamp_columns:
        if name not in df.columns:
            continue
        dtype = df.schema[name]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            raise LandingError(
                f"{where}: column {name!r} is a timestamp without time zone; write it as a "
                "timestamp with time zone (UTC)"
            )
        if dtype == pl.String:
            naive = df.select(
                row=pl.int_range(1, pl.len() + 1), value=pl.col(name).str.strip_chars()
            ).filter(pl.col("value").str.contains(_NAIVE))
            if naive.height:
                row, value = naive.row(0)
                raise LandingError(
                    f"{where}: column {name!r} has {naive.height} timestamp(s) without a UTC "
                    f"offset (first: data row {row}, {value!r}); write ISO-8601 with 'Z' or "
                    "+hh:mm, e.g. 2024-01-02T14:30:00.123456Z"
                )


def _coerce_column(name: str, source: pl.DataType, target: pl.DataType, where: str) -> pl.Expr:
    if isinstance(source, pl.List | pl.Struct | pl.Array | pl.Object):
        raise LandingError(
            f"{where}: column {name!r} holds nested values ({source}); expected {target}"
        )
    if target == TS:
        if isinstance(source, pl.Datetime):
            return pl.col(name).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return _parse_timestamp(_as_text(name, source))
    if target == pl.String:
        if source.is_float():
            return _float_as_text(pl.col(name))
        return _as_text(name, source)
    numeric_source = source.is_numeric() or source == pl.Null
    number = (
        pl.col(name).cast(pl.Float64)
        if numeric_source
        else _as_text(name, source).cast(pl.Float64, strict=False)
    )
    number = pl.when(number.is_finite()).then(number)
    if target == pl.Float64:
        return number
    if target == pl.Int64:
        return pl.when(number == number.floor()).then(number).cast(pl.Int64, strict=False)
    raise NotImplementedError(f"no coercion to {target} (column {name!r})")


def _float_as_text(value: pl.Expr) -> pl.Expr:
    """A float in a text column, a whole number without '.0': pandas writes an integer id column
    with a missing value as float64, and id 7 must match the "7" landed elsewhere."""
    whole = value.is_finite() & (value == value.floor()) & (value.abs() < 2.0**63)
    return (
        pl.when(whole)
        .then(value.cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(value.cast(pl.String))
    )


def _clean_columns(df: pl.DataFrame, contract: TableContract) -> set[str]:
    """The contract columns `df` holds already coerced: text in a text column with no value to
    strip and none empty, floats in a float column all finite (nulls aside). Coercion would
    copy each of them (a landed date of 26M quotes: 3.4 GiB at the read's peak for 1.3 GiB
    read); they pass through instead, and cannot fail."""
    checks, clean = [], set()
    for col in contract.columns:
        if col.name not in df.columns or f"{_NESTED}{col.name}" in df.columns:
            continue
        source = df.schema[col.name]
        if source == pl.String and col.dtype == pl.String:
            if kernels.stripped_text(df.get_column(col.name)):  # from the bytes, no regex
                clean.add(col.name)
                continue
            # `\s` is Unicode's White_Space, what `str.strip_chars()` strips.
            needs = pl.col(col.name).str.contains(r"^\s|\s$|^$")
            checks.append((~needs).all().alias(col.name))
        elif source == pl.Float64 and col.dtype == pl.Float64:
            checks.append(pl.col(col.name).is_finite().all().alias(col.name))
    if not checks:
        return clean
    return clean | {name for name, ok in df.select(checks).row(0, named=True).items() if ok}


def _coerce(df: pl.DataFrame, contract: TableContract, where: str) -> pl.DataFrame:
    """Contract columns in contract types plus `_reasons` (bad_value:<col> where coercion failed)."""
    missing = [c for c in contract.required if c not in df.columns]
    if missing:
        raise LandingError(
            f"{where}: required column(s) {missing} missing; the file has {df.columns}. "
            f"{contract.name} needs {contract.required}"
        )
    _check_timestamps(df, contract, where)
    clean = _clean_columns(df, contract)
    coerced, bad = [], []
    for col in contract.columns:
        if col.name not in df.columns:
            coerced.append(pl.lit(None, col.dtype).alias(col.name))
            continue
        if col.name in clean:  # already what coercion would make of it: no copy, no check
            coerced.append(pl.col(col.name))
            continue
        source = df.schema[col.name]
        value = _coerce_column(col.name, source, col.dtype, where)
        nested = f"{_NESTED}{col.name}"
        if nested in df.columns:
            # A JSON object or array in a text column: present, but not text.
            value = pl.when(~pl.col(nested)).then(value)
        value = value.alias(col.name)
        coerced.append(value)
        if source == pl.String and col.dtype == pl.String and nested not in df.columns:
            # The value is the stripped text itself: it cannot fail to coerce, and checking it
            # anyway stripped every string twice (a day of 200k fills: 54 ms -> 20 ms).
            continue
        present = (
            _as_text(col.name, source) if source == pl.String else pl.col(col.name)
        ).is_not_null()
        bad.append((present & value.is_null()).alias(f"bad_value:{col.name}"))
    flags = df.select(*coerced, *bad)
    bad_cols = [c for c in flags.columns[len(contract.columns) :] if flags[c].any()]
    if bad_cols:
        reasons = pl.concat_list(
            [pl.when(pl.col(c)).then(pl.lit(c)) for c in bad_cols]
        ).list.drop_nulls()
    else:
        reasons = pl.lit([], pl.List(pl.String))
    return flags.select(*contract.names, reasons.alias(REASONS))


def _read_raw(landing: str | Path, location: str, contract: TableContract):
    where = store.relative(location, landing)
    suffix = PurePosixPath(location).suffix.lower()
    try:
        return where, *_READERS[suffix](store.source(location), contract, where)
    except FileNotFoundError as e:
        raise LandingError(f"{where}: {GONE} ({e})") from e
    except _READ_ERRORS as e:
        raise LandingError(
            f"{where}: cannot read it as {suffix.lstrip('.')} ({type(e).__name__}: {e})"
        ) from e


def _read_file(landing: str | Path, location: str, contract: TableContract) -> pl.DataFrame:
    where, df, _ = _read_raw(landing, location, contract)
    try:
        out = _coerce(df, contract, where)
    except _POLARS_FAILURES as e:
        raise LandingError(
            f"{where}: cannot coerce it to the contract types ({type(e).__name__}: {e})"
        ) from e
    return out.with_columns(
        pl.lit(where, pl.String).alias(SOURCE_FILE),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(SOURCE_ROW),
    ).select(list(raw_schema(contract.name)))


def original_rows(landing: str | Path, table: str, rows: pl.DataFrame) -> pl.Series:
    """The original rows, as JSON text, of `rows` (`source_file`, `source_row`), in their order.

    Each file is re-read once and only the requested rows are encoded: every original column
    is kept, extra ones included; a JSON Lines row is its original line.
    """
    if rows.height == 0:
        return pl.Series("row_json", [], pl.String)
    contract = CONTRACT[table]
    order = rows.select("source_file", "source_row").with_row_index("_order")
    parts = []
    for (source_file,), wanted in order.group_by("source_file", maintain_order=True):
        where, df, lines = _read_raw(landing, join(landing, source_file), contract)
        index = wanted["source_row"] - 1
        try:
            encoded = lines.gather(index) if lines is not None else _encode_rows(df[index])
        except (Exception, pl.exceptions.PanicException) as e:
            raise LandingError(
                f"{where}: cannot write its quarantined rows as JSON ({type(e).__name__}: {e})"
            ) from e
        parts.append(wanted.select("_order").with_columns(row_json=encoded))
    return pl.concat(parts).sort("_order")["row_json"]


def read_table(landing: str | Path, table: str, trade_date: date | None) -> pl.DataFrame:
    """All landed rows of one table and date, coerced to the contract, with provenance.

    Columns: the contract columns in contract types, `_source_file` (path relative to the
    landing directory), `_source_row` (1-based data row within its file) and `_reasons`
    (coercion problems as `bad_value:<column>`); `original_rows` gives a row's original text.
    A table or date that did not land gives zero rows.

    Raises `LandingError` naming the file (and column, row or line) for an unreadable file (a
    CSV line the reader cannot parse, a file listed but gone before it was read), a CSV row
    with more or fewer fields than the header or a contract column twice in its header, a
    missing required column, a nested Parquet value in a contract column, or timestamps without
    time zone.
    """
    contract = CONTRACT[table]
    files = landed_files(landing, table, trade_date)
    frames = [_read_file(landing, f.location, contract) for f in files]
    if not frames:
        return pl.DataFrame(schema=raw_schema(table))
    return pl.concat(frames, how="vertical")
